#include "stage/run_status.h"

#include <algorithm>
#include <map>
#include <optional>

#include "catalog/ingest.h"
#include "catalog/sharding.h"
#include "stage/stage.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/manifest.h"
#include "util/run_path.h"

namespace lookbook {
namespace {

std::string Counts(const StageManifest& manifest) {
  std::string out;
  for (const auto& [key, value] : manifest.counts) out += (out.empty() ? "" : " ") + key + "=" + std::to_string(value);
  return out;
}

// Shards computed into RUN/.work/embed and waiting to be published: shard -> record.
std::map<int, StageManifest> WaitingShards(const std::filesystem::path& run) {
  std::map<int, StageManifest> out;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(run / ".work" / "embed", error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("shard-", 0) != 0 || entry.path().extension() != ".json") continue;
    std::string why;
    const auto record = ReadManifestFile(entry.path(), &why);
    if (!record) continue;
    try {
      out[std::stoi(name.substr(6, name.size() - 11))] = *record;
    } catch (const std::exception&) {
    }
  }
  return out;
}

}  // namespace

std::string StaleInputs(const std::filesystem::path& run, const std::string& stage) {
  std::string read_why;
  const auto manifest = ReadManifest(run / stage, &read_why);
  if (!manifest) throw InputError("run " + run.string() + " has no " + stage + " stage (" + read_why + ")");
  std::map<std::string, std::optional<StageManifest>> upstreams;  // read once each
  for (const auto& input : manifest->inputs) {
    std::string why;
    const auto path = InsideRun(run, input.path, &why);
    if (!path) return why;
    const auto slash = input.path.find('/');
    const std::string upstream = input.path.substr(0, slash), file = input.path.substr(slash + 1);
    // A stage output: what its stage's manifest records now (no file is read).
    const ManifestEntry* published = nullptr;
    if (slash != std::string::npos) {
      auto current = upstreams.find(upstream);
      if (current == upstreams.end()) current = upstreams.emplace(upstream, ReadManifest(run / upstream, &why)).first;
      if (current->second) {
        for (const auto& output : current->second->outputs) {
          if (output.path == file) published = &output;
        }
      }
    }
    try {
      if (input.checksum.rfind("rows:", 0) == 0) {
        // Recorded by what the stage took of the file (image keys, references, files): stale
        // only when the file now lists other images.
        std::error_code error;
        if (!std::filesystem::is_regular_file(*path, error)) return input.path + " is gone";
        if (IngestRowsChecksum(ReadFileBytes(*path)) != input.checksum) return input.path + " lists other images";
      } else if (published != nullptr) {
        if (published->checksum != input.checksum) return input.path + " changed";
      } else {
        // Not a stage output (a manifest, a summary, an evaluation): the file itself.
        std::error_code error;
        if (!std::filesystem::is_regular_file(*path, error)) return input.path + " is gone";
        if (ChecksumFile(*path).checksum != input.checksum) return input.path + " changed";
      }
    } catch (const std::exception& read_error) {
      return input.path + ": " + read_error.what();
    }
  }
  return {};
}

const std::vector<std::string>& StageNames() {
  static const std::vector<std::string> kStages = {"ingest", "embed", "index", "dedup", "recs", "report"};
  return kStages;
}

std::vector<StageState> InspectRun(const std::filesystem::path& run) {
  if (!std::filesystem::is_directory(run)) throw InputError(run.string() + " is not a run folder");
  std::vector<StageState> out;
  for (const auto& stage : StageNames()) {
    StageState state;
    state.stage = stage;
    const std::filesystem::path dir = run / stage;
    std::string why;
    const auto manifest = ReadManifest(dir, &why);
    if (!manifest) {
      state.state = std::filesystem::exists(dir / "manifest.json") ? "damaged" : "absent";
      state.detail = why;
    } else if (const std::string bad = CheckManifestPaths(run, stage, *manifest); !bad.empty()) {
      state.state = "damaged";
      state.detail = "the manifest names " + bad;
    } else if (const std::string damaged = VerifyOutputs(dir, *manifest); !damaged.empty()) {
      state.state = "damaged";
      state.detail = damaged;
    } else if (const std::string changed = StaleInputs(run, stage); !changed.empty()) {
      state.state = "stale";
      state.detail = changed;
    } else {
      state.state = "valid";
      state.detail = Counts(*manifest);
    }
    if (stage == "embed") {
      // Per shard: the published file, or one waiting in the work folder.
      const auto waiting = WaitingShards(run);
      int shards = 0;
      std::string ingest_why;
      if (const auto ingest = ReadManifest(run / "ingest", &ingest_why); ingest && ingest->options.count("shards")) {
        try {
          shards = std::stoi(ingest->options.at("shards"));
        } catch (const std::exception&) {
        }
      }
      if (manifest && manifest->counts.count("shards")) shards = static_cast<int>(manifest->counts.at("shards"));
      for (const auto& [shard, record] : waiting) shards = std::max(shards, shard + 1);
      for (int k = 0; k < shards; ++k) {
        ShardState shard{k, "absent", ""};
        if (manifest) {  // each shard on its own: VerifyOutputs checks its path stays inside
          for (const auto& output : manifest->outputs) {
            if (output.path != ShardFileName(k, ".h5")) continue;
            StageManifest one;
            one.outputs.push_back(output);
            const std::string damaged = VerifyOutputs(dir, one);
            shard.state = damaged.empty() ? "valid" : "damaged";
            shard.detail = damaged.empty() ? "rows=" + std::to_string(output.rows) : damaged;
          }
        }
        const auto pending = waiting.find(k);
        if (pending != waiting.end()) {
          const bool published =
              manifest &&
              std::any_of(manifest->outputs.begin(), manifest->outputs.end(), [&](const ManifestEntry& output) {
                return output.path == ShardFileName(k, ".h5") && output.key == pending->second.key;
              });
          if (!published || shard.state != "valid") {
            shard.state = "pending";
            shard.detail = "computed, waiting to be published by the next lookbook embed";
          }
        }
        state.shards.push_back(shard);
      }
      const bool any_pending = std::any_of(state.shards.begin(), state.shards.end(),
                                           [](const ShardState& shard) { return shard.state == "pending"; });
      if (any_pending && (state.state == "valid" || state.state == "absent" || state.state == "stale")) {
        state.detail = (state.state == "absent" ? "nothing published; " : "published stage is " + state.state + "; ") +
                       std::to_string(waiting.size()) + " shard(s) waiting in .work/embed";
        state.state = "partial";
      }
    }
    out.push_back(std::move(state));
  }
  return out;
}

RunVerification VerifyRun(const std::filesystem::path& run) {
  RunVerification out;
  for (const auto& stage : StageNames()) {
    const std::filesystem::path dir = run / stage;
    if (!std::filesystem::exists(dir / "manifest.json")) continue;
    ++out.manifests;
    std::string why;
    const auto manifest = ReadManifest(dir, &why);
    if (!manifest) {
      out.problems.push_back(stage + "/manifest.json: " + why);
      continue;
    }
    for (const auto& entry : manifest->outputs) {
      const std::string name = stage + "/" + entry.path;
      const auto path = InsideRun(dir, entry.path, &why);
      if (!path) {
        out.problems.push_back(name + ": " + why);  // never opened
        continue;
      }
      std::error_code error;
      const auto size = std::filesystem::file_size(*path, error);
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
        if (ChecksumFile(*path).checksum != entry.checksum) out.problems.push_back(name + ": checksum mismatch");
      } catch (const std::exception& read_error) {
        out.problems.push_back(name + ": " + read_error.what());
      }
    }
    for (const auto& input : manifest->inputs) {
      if (!InsideRun(run, input.path, &why)) out.problems.push_back(stage + "/manifest.json: input " + why);
    }
  }
  return out;
}

}  // namespace lookbook
