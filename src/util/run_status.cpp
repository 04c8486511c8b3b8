#include "util/run_status.h"

#include <cstdio>
#include <optional>
#include <set>

#include "util/hash.h"
#include "util/manifest.h"

namespace lookbook {
namespace {

std::string ShardRecordName(int shard) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%05d.json", shard);
  return name;
}

// Empty when every input still has its recorded checksum (inputs that no longer exist count
// as changed); otherwise the first that changed.
std::string ChangedInput(const std::filesystem::path& run, const StageManifest& manifest) {
  for (const auto& input : manifest.inputs) {
    const std::filesystem::path path =
        std::filesystem::path(input.path).is_absolute() ? std::filesystem::path(input.path) : run / input.path;
    std::error_code error;
    if (!std::filesystem::is_regular_file(path, error)) return input.path + " is gone";
    try {
      if (ChecksumFile(path).checksum != input.checksum) return input.path + " changed";
    } catch (const std::exception& read_error) {
      return input.path + ": " + read_error.what();
    }
  }
  return {};
}

std::string Counts(const StageManifest& manifest) {
  std::string out;
  for (const auto& [key, value] : manifest.counts) out += (out.empty() ? "" : " ") + key + "=" + std::to_string(value);
  return out;
}

}  // namespace

const std::vector<std::string>& StageNames() {
  static const std::vector<std::string> kStages = {"ingest", "embed", "index", "dedup", "recs", "report"};
  return kStages;
}

std::vector<StageState> InspectRun(const std::filesystem::path& run) {
  std::vector<StageState> out;
  std::int64_t ingest_shards = -1;
  for (const auto& stage : StageNames()) {
    StageState state;
    state.stage = stage;
    const std::filesystem::path dir = run / stage;
    std::string why;
    const auto manifest = ReadManifest(dir, &why);
    if (stage == "embed" && ingest_shards > 0) {
      // Per shard, from the shard records, whether or not the stage manifest exists yet.
      for (int k = 0; k < ingest_shards; ++k) {
        ShardState shard{k, "valid", ""};
        std::string shard_why;
        const auto record = ReadManifestFile(dir / ShardRecordName(k), &shard_why);
        if (!record) {
          shard.state = std::filesystem::exists(dir / ShardRecordName(k)) ? "damaged" : "absent";
          shard.detail = shard_why;
        } else if (const std::string damaged = VerifyOutputs(dir, *record); !damaged.empty()) {
          shard = ShardState{k, "damaged", damaged};
        } else if (const std::string changed = ChangedInput(run, *record); !changed.empty()) {
          shard = ShardState{k, "stale", changed};
        } else {
          shard.detail = Counts(*record);
        }
        state.shards.push_back(shard);
      }
    }
    if (!manifest) {
      state.state = std::filesystem::exists(dir / "manifest.json") ? "damaged" : "absent";
      state.detail = why;
    } else if (const std::string damaged = VerifyOutputs(dir, *manifest); !damaged.empty()) {
      state.state = "damaged";
      state.detail = damaged;
    } else if (const std::string changed = ChangedInput(run, *manifest); !changed.empty()) {
      state.state = "stale";
      state.detail = changed;
    } else {
      state.state = "valid";
      state.detail = Counts(*manifest);
      if (stage == "ingest") {
        ingest_shards = 0;
        for (const auto& output : manifest->outputs) ingest_shards += output.path.rfind("shard-", 0) == 0 ? 1 : 0;
      }
      if (stage == "embed") {
        const auto total = manifest->counts.find("shards"), valid = manifest->counts.find("shards_valid");
        if (total != manifest->counts.end() && valid != manifest->counts.end() && valid->second < total->second) {
          state.state = "partial";
          state.detail = std::to_string(valid->second) + " of " + std::to_string(total->second) + " shards valid";
        }
      }
    }
    if (stage == "embed") {
      for (const auto& shard : state.shards) {
        if (shard.state != "valid" && state.state == "valid") {
          state.state = "partial";
          state.detail = "shard " + std::to_string(shard.shard) + " is " + shard.state;
        }
      }
    }
    out.push_back(std::move(state));
  }
  return out;
}

RunVerification VerifyRun(const std::filesystem::path& run) {
  RunVerification out;
  std::set<std::string> checked;
  auto check = [&](const std::filesystem::path& dir, const std::string& stage, const StageManifest& manifest) {
    for (const auto& entry : manifest.outputs) {
      const std::filesystem::path path = dir / entry.path;
      const std::string name = stage + "/" + entry.path;
      if (!checked.insert(name + "\n" + entry.checksum).second) continue;
      std::error_code error;
      const auto size = std::filesystem::file_size(path, error);
      if (error) {
        out.problems.push_back(name + ": missing");
        continue;
      }
      ++out.files;
      out.bytes += size;
      if (size != entry.size) {
        out.problems.push_back(name + ": size " + std::to_string(size) + ", manifest says " +
                               std::to_string(entry.size));
        continue;
      }
      try {
        if (ChecksumFile(path).checksum != entry.checksum) out.problems.push_back(name + ": checksum mismatch");
      } catch (const std::exception& read_error) {
        out.problems.push_back(name + ": " + read_error.what());
      }
    }
  };
  for (const auto& stage : StageNames()) {
    const std::filesystem::path dir = run / stage;
    if (!std::filesystem::exists(dir / "manifest.json")) continue;
    std::string why;
    const auto manifest = ReadManifest(dir, &why);
    if (!manifest) {
      out.problems.push_back(stage + "/manifest.json: " + why);
      continue;
    }
    check(dir, stage, *manifest);
  }
  // Embed shard records: shards published since (or without) the last stage manifest.
  const std::filesystem::path embed = run / "embed";
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(embed, error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("shard-", 0) != 0 || entry.path().extension() != ".json") continue;
    std::string why;
    const auto record = ReadManifestFile(entry.path(), &why);
    if (!record)
      out.problems.push_back("embed/" + name + ": " + why);
    else
      check(embed, "embed", *record);
  }
  return out;
}

}  // namespace lookbook
