// A stage's manifest: RUN/<stage>/manifest.json, written last into the stage's staging folder
// and published with it (stage/stage.h). It says what the stage read, with which options and
// code, its validity key, what it published (every file with size and xxh3 checksum) and its
// counts. Schema and field meanings: docs/outputs.md#manifests. Every path in `inputs` is
// relative to RUN and every path in `outputs` relative to the stage folder; `sources` name
// things outside the run (the catalog, model bundles) for the record only: no reader opens them
// because a manifest says so.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lookbook {

inline constexpr int kManifestSchemaVersion = 1;

struct ManifestEntry {
  std::string path;
  std::uint64_t size = 0;
  std::string checksum;
  std::int64_t rows = -1;
  std::string key;  // optional: the content key the file was made for (embed shards)
};

struct StageManifest {
  int schema_version = kManifestSchemaVersion;
  std::string stage;
  std::string code_version;
  std::map<std::string, std::string> options;
  std::string options_hash;  // OptionsHash(options)
  std::vector<ManifestEntry> inputs;
  std::vector<ManifestEntry> outputs;
  std::map<std::string, std::int64_t> counts;
  std::string key;                     // the validity key (stage/stage.h); "" in old manifests
  std::vector<ManifestEntry> sources;  // outside the run, for the record (absolute paths)
};

std::string OptionsHash(const std::map<std::string, std::string>& options);

// Checksums `path` into an entry named `name`.
ManifestEntry DescribeFile(const std::filesystem::path& path, const std::string& name, std::int64_t rows);

std::string ManifestToJson(const StageManifest& manifest);
void WriteManifest(const std::filesystem::path& stage_dir, const StageManifest& manifest);
// The same format in any file (per-shard records such as RUN/embed/shard-00003.json).
void WriteManifestFile(const std::filesystem::path& path, const StageManifest& manifest);
std::optional<StageManifest> ReadManifestFile(const std::filesystem::path& path, std::string* why_not);

// What a rerun does with outputs whose manifest entry is still valid.
enum class RerunPolicy { kReuseValid, kForce };

// The manifest in `stage_dir`, or nullopt with the reason in *why_not (absent, unreadable,
// malformed, other schema version).
std::optional<StageManifest> ReadManifest(const std::filesystem::path& stage_dir, std::string* why_not);

// The value of option `key` in a manifest, "" when it has none.
std::string ManifestOption(const StageManifest& manifest, const std::string& key);

// Empty when every output listed in `manifest` exists in `stage_dir` with its recorded size
// and checksum; otherwise the first problem found ("shard-00003.csv: checksum mismatch").
std::string VerifyOutputs(const std::filesystem::path& stage_dir, const StageManifest& manifest);

// Whether `bytes` (a file already read) are what `entry` records: its size and checksum. The one
// comparison of content with a manifest entry; VerifyEntry below reads the file for it.
bool MatchesEntry(std::string_view bytes, const ManifestEntry& entry);
// One entry the same way: its path inside `stage_dir` when the file has the recorded size and
// checksum, else nullopt and *why_not (as VerifyOutputs words it).
std::optional<std::filesystem::path> VerifyEntry(const std::filesystem::path& stage_dir, const ManifestEntry& entry,
                                                 std::string* why_not);
// Output `name` of `manifest`, verified by VerifyEntry (a name the manifest does not list fails).
std::optional<std::filesystem::path> VerifiedOutput(const std::filesystem::path& stage_dir,
                                                    const StageManifest& manifest, const std::string& name,
                                                    std::string* why_not);

}  // namespace lookbook
