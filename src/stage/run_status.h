// What a run folder holds, stage by stage, from its manifests and the files they name, never a
// file outside the run: `lookbook status` and `lookbook verify` (docs/operations.md#checking-a-run).
//
// A stage is
//   absent   no manifest (embed: none published and no shard waiting in RUN/.work/embed)
//   damaged  its manifest is unreadable, names a path outside the run, or an output is missing
//            or fails its size or checksum
//   stale    an input it records (another stage's output, inside the run) has changed since
//   partial  (embed) shards are computed and waiting in RUN/.work/embed, the stage is not
//            published with them yet (or at all)
//   valid    otherwise
// The embed stage is also reported per shard.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lookbook {

// Every stage, in pipeline order.
const std::vector<std::string>& StageNames();

struct ShardState {
  int shard = 0;
  std::string state;  // valid, pending (computed, waiting to be published), absent, damaged
  std::string detail;
};

struct StageState {
  std::string stage;
  std::string state;
  std::string detail;              // why it is not valid, or its counts
  std::vector<ShardState> shards;  // embed only
};

// The one staleness rule (stages reading an upstream stage, `status`, the report, eval, query):
// "" when every input `stage`'s published manifest records (other stages' outputs) is still what
// those stages publish now; else the first that changed ("embed/shard-00002.h5 changed", "...
// is gone", "ingest/shard-00001.csv lists other images"). Reads manifests; an input recorded by
// what the stage took of it ("rows:" checksums of ingest rows) is read again when its upstream
// file is another, to compare what it lists. Throws InputError when `stage` has no readable
// manifest.
std::string StaleInputs(const std::filesystem::path& run, const std::string& stage);

// Throws InputError when `run` is not a folder.
std::vector<StageState> InspectRun(const std::filesystem::path& run);

struct RunVerification {
  std::int64_t manifests = 0;  // stage manifests found
  std::int64_t files = 0;      // outputs whose checksum was recomputed
  std::uint64_t bytes = 0;
  std::vector<std::string> problems;  // "embed/shard-00002.h5: checksum mismatch", ...
};

// Recomputes the checksum of every output every stage manifest lists.
RunVerification VerifyRun(const std::filesystem::path& run);

}  // namespace lookbook
