// What a run folder holds, stage by stage, from the manifests alone: `lookbook status` and
// `lookbook verify`.
//
// A stage is
//   absent   no manifest
//   damaged  its manifest is unreadable, or an output is missing or fails its size/checksum
//   stale    an input it names (a file under RUN, or an absolute path) now has another checksum
//   partial  (embed) some shards are published and valid, not all
//   valid    otherwise
// The embed stage is also reported per shard (its RUN/embed/shard-K.json records).
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
  std::string state;  // valid, absent, damaged, stale
  std::string detail;
};

struct StageState {
  std::string stage;
  std::string state;
  std::string detail;              // why it is not valid, or its counts
  std::vector<ShardState> shards;  // embed only
};

std::vector<StageState> InspectRun(const std::filesystem::path& run);

struct RunVerification {
  std::int64_t files = 0;  // outputs whose checksum was recomputed
  std::uint64_t bytes = 0;
  std::vector<std::string> problems;  // "embed/shard-00002.h5: checksum mismatch", ...
};

// Recomputes the checksum of every output every manifest (and embed shard record) lists.
RunVerification VerifyRun(const std::filesystem::path& run);

}  // namespace lookbook
