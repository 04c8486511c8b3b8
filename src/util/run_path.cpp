#include "util/run_path.h"

#include <algorithm>

namespace lookbook {

std::optional<std::filesystem::path> InsideRun(const std::filesystem::path& run, const std::string& relative,
                                               std::string* why) {
  const std::filesystem::path path(relative);
  if (relative.empty() || path.is_absolute() || relative.find('\0') != std::string::npos) {
    *why = "'" + relative + "' is not a relative path inside the run";
    return std::nullopt;
  }
  for (const auto& part : path) {
    if (part == "..") {
      *why = "'" + relative + "' climbs out of the run ('..')";
      return std::nullopt;
    }
  }
  std::error_code error;
  const std::filesystem::path root = std::filesystem::weakly_canonical(run, error);
  if (error) {
    *why = "cannot resolve the run folder " + run.string() + ": " + error.message();
    return std::nullopt;
  }
  const std::filesystem::path resolved = std::filesystem::weakly_canonical(root / path, error);
  if (error) {
    *why = "cannot resolve '" + relative + "': " + error.message();
    return std::nullopt;
  }
  const auto mismatch = std::mismatch(root.begin(), root.end(), resolved.begin(), resolved.end());
  if (mismatch.first != root.end()) {
    *why = "'" + relative + "' leads out of the run (to " + resolved.string() + ")";
    return std::nullopt;
  }
  return run / path;
}

std::optional<std::filesystem::path> InsideStage(const std::filesystem::path& run, const std::string& stage,
                                                 const std::string& relative, std::string* why) {
  if (relative.empty() || std::filesystem::path(relative).is_absolute()) {
    *why = "'" + relative + "' is not a relative path inside the run";
    return std::nullopt;
  }
  return InsideRun(run, stage + "/" + relative, why);
}

}  // namespace lookbook
