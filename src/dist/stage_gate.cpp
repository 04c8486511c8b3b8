#include "dist/stage_gate.h"

#include "util/publish.h"

namespace lookbook {

std::string WhyRunStage(const MpiWorld& world, const std::filesystem::path& stage_dir,
                        const std::vector<ManifestEntry>& inputs, const std::string& options_hash,
                        const std::string& code_version, RerunPolicy rerun) {
  std::string why;
  if (world.is_root()) {
    std::filesystem::create_directories(stage_dir);
    RemoveStaleTemporaries(stage_dir);
    why = rerun == RerunPolicy::kForce ? "--force" : WhyRedoStage(stage_dir, inputs, options_hash, code_version);
  }
  const std::vector<std::uint8_t> bytes =
      world.BroadcastBytesFromRoot(std::vector<std::uint8_t>(why.begin(), why.end()));
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace lookbook
