// Paths that a run folder's own files name (manifests, shard records) must stay inside the run:
// relative, without `..`, and not leading out through a symlink. Whatever a manifest says, no
// reader opens a file outside RUN because of it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace lookbook {

// `run / relative` when `relative` is a plain relative path that stays inside `run` once every
// existing symlink on the way is resolved; nullopt otherwise, with the reason in *why.
std::optional<std::filesystem::path> InsideRun(const std::filesystem::path& run, const std::string& relative,
                                               std::string* why);

// The same for a file named relative to a stage folder (RUN/<stage>/<relative>).
std::optional<std::filesystem::path> InsideStage(const std::filesystem::path& run, const std::string& stage,
                                                 const std::string& relative, std::string* why);

}  // namespace lookbook
