// The stage skeleton: every stage (ingest, embed, index, dedup, recs, report) runs through it,
// so that reading inputs, deciding whether published work is still valid, and publishing are
// each written once (docs/architecture.md#how-a-stage-runs):
//
//   1. The command holds the run lock (stage/run_lock.h) before a Stage is made; a Stage made
//      without it fails loudly (a programming error: exit 70).
//   2. Inputs: Upstream() reads an upstream stage's manifest (every path in it must stay inside
//      the run); ReadVerified()/VerifiedPath() check a file's size and checksum against that
//      manifest before any parser sees a byte of it. Each file read is recorded as an input.
//   3. One validity key (Key()) over the content that determines the outputs: the stage's
//      options that change outputs, the code version, and the checksums of the inputs. Fresh()
//      says whether the published stage has this key and every output still verifies.
//   4. Outputs are written into a private staging folder, RUN/.staging/<stage>-<writer>-<n>.
//   5. Publish(): the manifest goes into the staging folder, RUN/_SUCCESS is removed, and the
//      staging folder replaces RUN/<stage> in one rename (renameat2 RENAME_EXCHANGE; the old
//      folder is then deleted). A reader sees the old stage or the new one, never a mix; a
//      writer killed at any point leaves the old stage whole, and its staging folder is removed
//      by the next exclusive writer.
// Collective methods must be called by every rank of `world`, in the same order; a Stage made
// with world == nullptr belongs to one process (rank-0-only stages).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "dist/world.h"
#include "util/manifest.h"

namespace lookbook {

// A content key: an ordered list of named parts, hashed (xxh3, length-prefixed parts).
class StageKey {
 public:
  void Add(const std::string& name, const std::string& value);
  void Add(const std::string& name, std::int64_t value) { Add(name, std::to_string(value)); }
  std::string Hash() const;  // "xxh3:..."

 private:
  std::string canonical_;
};

class Stage {
 public:
  // Collective. Removes staging folders and temporaries of writers that are gone (only when this
  // process holds the run exclusively: then every other writer is gone).
  Stage(const MpiWorld* world, std::filesystem::path run, std::string name, std::string code_version);
  ~Stage();  // removes this writer's staging folder unless it was published
  Stage(const Stage&) = delete;
  Stage& operator=(const Stage&) = delete;

  const std::string& name() const { return name_; }
  const std::filesystem::path& run() const { return run_; }
  std::filesystem::path dir() const { return run_ / name_; }  // the published folder
  bool is_root() const { return world_ == nullptr || world_->is_root(); }

  // The published manifest of `stage`, read once and checked: schema, and every path it names
  // stays inside the run. Throws InputError ("run lookbook <stage> first") when absent or bad.
  const StageManifest& Upstream(const std::string& stage);
  // Whether `stage` has a readable manifest (absent stages are optional inputs for some).
  bool HasUpstream(const std::string& stage);
  // An upstream output's bytes, checked against its manifest entry (size and checksum) first;
  // recorded as an input of this stage unless record_input is false (a stage whose key is built
  // from what it takes of the file, not from the file's bytes). Throws InputError naming the
  // file and the fix.
  std::string ReadVerified(const std::string& stage, const std::string& file, bool record_input = true);
  // The same for files a library opens by path (HDF5, FAISS): checked, recorded, then the path.
  std::filesystem::path VerifiedPath(const std::string& stage, const std::string& file, bool record_input = true);
  // Records an upstream output as an input without reading it (rank 0's bookkeeping for files
  // other ranks read and verify).
  void UseInput(const std::string& stage, const std::string& file);
  // Records an input whose checksum the caller established (e.g. a file outside the run:
  // manifest `sources`, informational; or a file inside the run it verified itself).
  void AddInput(const ManifestEntry& input) { inputs_.push_back(input); }
  void AddSource(const ManifestEntry& source) { sources_.push_back(source); }
  const std::vector<ManifestEntry>& inputs() const { return inputs_; }

  // The validity key. Callers add the options that change outputs; Fresh()/Publish() add the
  // stage name, the code version and every recorded input's checksum.
  StageKey& Key() { return key_; }
  // Collective. True when the published stage was made with this key and each of its outputs
  // still has its size and checksum; otherwise *why says what differs. Rank 0 decides.
  bool Fresh(std::string* why);
  // The key as Fresh() and Publish() see it (with the inputs).
  std::string KeyHash() const;

  // Collective (the first call): the staging folder, made by rank 0, the same path everywhere.
  const std::filesystem::path& Staging();
  // Rank 0: describes a file written into the staging folder as an output (size, checksum).
  void AddOutput(const std::string& file, std::int64_t rows);
  // Rank 0: lists a file already described elsewhere (kept by hard link), without rehashing.
  void AddOutputEntry(const ManifestEntry& entry) { outputs_.push_back(entry); }

  // Collective. For stages that always recompute (ingest: its inputs include the image files'
  // sizes and dates, which no key can know without looking): true when the outputs described
  // so far are exactly the published ones, under the same key, and those still verify; then
  // there is nothing to publish.
  bool SameAsPublished();

  // Collective: every rank has finished writing into the staging folder; rank 0 completes
  // `manifest` (stage, code version, key, inputs, sources, outputs), writes it into the staging
  // folder, removes RUN/_SUCCESS and publishes the folder as RUN/<stage>.
  void Publish(StageManifest manifest);

  // Seconds this process spent in the skeleton's own calls (the lock and leftovers at
  // construction, reading and checking manifests and inputs, checksums of outputs, freshness,
  // staging, publication). What a stage's work costs on top of it is the stage's. Reported by
  // every stage as the step "stage skeleton (rank 0)" (docs/performance.md#stage-overhead).
  double skeleton_seconds() const { return seconds_; }

 private:
  class Timed;  // adds a call's time to seconds_ (the outermost call only)
  double seconds_ = 0;
  int timing_depth_ = 0;
  const MpiWorld* world_;
  std::filesystem::path run_;
  std::string name_;
  std::string code_version_;
  std::map<std::string, StageManifest> upstream_;
  std::vector<ManifestEntry> inputs_;
  std::vector<ManifestEntry> sources_;
  std::vector<ManifestEntry> outputs_;
  StageKey key_;
  std::filesystem::path staging_;
  bool published_ = false;
};

// Publishes `staging` as `target` (a folder) with one rename: exchanges the two when `target`
// exists (then deletes the old one), else renames. Exposed for embed's shard folders and tests.
void ReplaceFolder(const std::filesystem::path& staging, const std::filesystem::path& target);

// Removes RUN/_SUCCESS (a run that is being changed is not a finished run).
void RemoveSuccessMarker(const std::filesystem::path& run);

// Checks every path `manifest` names (inputs and outputs) stays inside the run; "" when so,
// else the first offender. `stage` is the folder its outputs are relative to.
std::string CheckManifestPaths(const std::filesystem::path& run, const std::string& stage,
                               const StageManifest& manifest);

}  // namespace lookbook
