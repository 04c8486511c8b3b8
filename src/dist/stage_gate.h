// Whether a whole-catalog stage (index, dedup, recs) must run: one decision on rank 0 from
// the stage's manifest (util/manifest.h WhyRedoStage), shared with every rank.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "dist/world.h"
#include "util/manifest.h"

namespace lookbook {

// Collective. Rank 0 creates `stage_dir`, removes temporaries killed writers left there, and
// returns why the stage must run ("--force", "options changed", ...) or "" when its outputs
// are valid for these inputs, options and code version; every rank gets rank 0's answer.
std::string WhyRunStage(const MpiWorld& world, const std::filesystem::path& stage_dir,
                        const std::vector<ManifestEntry>& inputs, const std::string& options_hash,
                        const std::string& code_version, RerunPolicy rerun);

}  // namespace lookbook
