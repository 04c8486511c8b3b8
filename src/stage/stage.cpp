#include "stage/stage.h"

#include <chrono>

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "stage/run_lock.h"
#include "util/error.h"
#include "util/fault.h"
#include "util/hash.h"
#include "util/publish.h"
#include "util/run_path.h"

namespace lookbook {
namespace {

std::vector<std::uint8_t> Bytes(const std::string& text) { return {text.begin(), text.end()}; }
std::string Text(const std::vector<std::uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

// Rank 0's string on every rank (no-op without a world).
std::string Share(const MpiWorld* world, const std::string& text) {
  if (world == nullptr || world->size() == 1) return text;
  return Text(world->BroadcastBytesFromRoot(Bytes(world->is_root() ? text : std::string())));
}

// Removes what writers that are gone left behind: staging folders, and temporary files in the run
// folder itself, the stage folders and embed's per-shard working folder (RUN/.work/embed). Only
// called while holding the run exclusively (no other writer is alive).
void RemoveLeftovers(const std::filesystem::path& run) {
  std::error_code error;
  int removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(run / ".staging", error)) {
    std::filesystem::remove_all(entry.path(), error);
    ++removed;
  }
  for (const auto& entry : std::filesystem::directory_iterator(run, error)) {
    if (entry.is_directory(error) && entry.path().filename().string().front() != '.') {
      removed += RemoveStaleTemporaries(entry.path());
    }
  }
  removed += RemoveStaleTemporaries(run);
  if (std::filesystem::is_directory(run / ".work" / "embed", error))
    removed += RemoveStaleTemporaries(run / ".work" / "embed");
  if (removed > 0) spdlog::info("removed {} file(s) and folder(s) left by writers that are gone", removed);
}

}  // namespace

void StageKey::Add(const std::string& name, const std::string& value) {
  canonical_ += std::to_string(name.size()) + ":" + name + "=" + std::to_string(value.size()) + ":" + value + ";";
}

std::string StageKey::Hash() const { return FormatChecksum(Xxh3(canonical_)); }

std::string CheckManifestPaths(const std::filesystem::path& run, const std::string& stage,
                               const StageManifest& manifest) {
  std::string why;
  for (const auto& input : manifest.inputs) {
    if (!InsideRun(run, input.path, &why)) return "input " + why;
  }
  for (const auto& output : manifest.outputs) {
    if (!InsideStage(run, stage, output.path, &why)) return "output " + why;
  }
  return {};
}

void RemoveSuccessMarker(const std::filesystem::path& run) {
  std::error_code error;
  if (std::filesystem::remove(run / "_SUCCESS", error)) SyncFolder(run);
}

void ReplaceFolder(const std::filesystem::path& staging, const std::filesystem::path& target) {
  std::error_code error;
  const bool exists = std::filesystem::exists(target, error);
  if (exists) {
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
      // A file system without RENAME_EXCHANGE (some network file systems): move the old folder
      // aside first. A writer killed between the two renames leaves no stage folder (status
      // says absent, a rerun redoes it), never a mix of old and new files.
      if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
        throw InputError("cannot publish " + target.string() + ": " + std::strerror(errno));
      }
      const std::filesystem::path aside = staging.string() + ".old";
      if (std::rename(target.c_str(), aside.c_str()) != 0 || std::rename(staging.c_str(), target.c_str()) != 0) {
        throw InputError("cannot publish " + target.string() + ": " + std::strerror(errno));
      }
      SyncFolder(target.parent_path());
      std::filesystem::remove_all(aside, error);
      return;
    }
    SyncFolder(target.parent_path());
    SyncFolder(staging.parent_path());
    std::filesystem::remove_all(staging, error);  // the old stage, now at the staging path
    return;
  }
  if (std::rename(staging.c_str(), target.c_str()) != 0) {
    throw InputError("cannot publish " + target.string() + ": " + std::strerror(errno));
  }
  SyncFolder(target.parent_path());
}

class Stage::Timed {
 public:
  explicit Timed(Stage* stage)
      : stage_(stage), outer_(stage->timing_depth_++ == 0), start_(std::chrono::steady_clock::now()) {}
  ~Timed() {
    --stage_->timing_depth_;
    if (outer_) stage_->seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  Timed(const Timed&) = delete;
  Timed& operator=(const Timed&) = delete;

 private:
  Stage* stage_;
  bool outer_;
  std::chrono::steady_clock::time_point start_;
};

Stage::Stage(const MpiWorld* world, std::filesystem::path run, std::string name, std::string code_version)
    : world_(world), run_(std::move(run)), name_(std::move(name)), code_version_(std::move(code_version)) {
  const Timed timed(this);
  if (is_root()) {
    // A stage writes only under the run lock (stage/run_lock.h): a command that makes a Stage
    // without it is a programming error (its command must declare RunAccess::kWrites).
    LB_CHECK(HoldsRunLock(run_), "the " + name_ + " stage was started without the run lock on " + run_.string());
    std::error_code error;
    std::filesystem::create_directories(run_ / ".staging", error);
    if (error) throw InputError("cannot create " + (run_ / ".staging").string() + ": " + error.message());
    if (HoldsRunExclusively(run_)) RemoveLeftovers(run_);
  }
}

Stage::~Stage() {
  if (!staging_.empty() && !published_ && is_root()) {
    std::error_code error;
    std::filesystem::remove_all(staging_, error);
  }
}

bool Stage::HasUpstream(const std::string& stage) {
  const Timed timed(this);
  if (upstream_.count(stage)) return true;
  std::string why;
  return ReadManifest(run_ / stage, &why).has_value();
}

const StageManifest& Stage::Upstream(const std::string& stage) {
  const Timed timed(this);
  const auto found = upstream_.find(stage);
  if (found != upstream_.end()) return found->second;
  std::string why;
  auto manifest = ReadManifest(run_ / stage, &why);
  if (!manifest) {
    throw InputError("run " + run_.string() + " has no " + stage + " stage (" + why + "): run lookbook " + stage +
                     " first");
  }
  if (const std::string bad = CheckManifestPaths(run_, stage, *manifest); !bad.empty()) {
    throw InputError((run_ / stage / "manifest.json").string() + " is damaged: " + bad + ": rerun lookbook " + stage +
                     " --force");
  }
  return upstream_.emplace(stage, std::move(*manifest)).first->second;
}

namespace {

const ManifestEntry& Listed(const StageManifest& manifest, const std::filesystem::path& run, const std::string& stage,
                            const std::string& file) {
  for (const auto& output : manifest.outputs) {
    if (output.path == file) return output;
  }
  throw InputError((run / stage / file).string() + " is not in the " + stage + " manifest: rerun lookbook " + stage);
}

}  // namespace

std::string Stage::ReadVerified(const std::string& stage, const std::string& file, bool record_input) {
  const Timed timed(this);
  const ManifestEntry& entry = Listed(Upstream(stage), run_, stage, file);
  const std::filesystem::path path = run_ / stage / file;
  std::string bytes;
  try {
    bytes = ReadFileBytes(path);
  } catch (const InputError& error) {
    throw InputError(std::string(error.what()) + ": rerun lookbook " + stage);
  }
  if (!MatchesEntry(bytes, entry)) {
    throw InputError(path.string() + " does not match its checksum in the " + stage + " manifest (it changed after " +
                     stage + " published it): rerun lookbook " + stage);
  }
  if (record_input) UseInput(stage, file);
  return bytes;
}

std::filesystem::path Stage::VerifiedPath(const std::string& stage, const std::string& file, bool record_input) {
  const Timed timed(this);
  const ManifestEntry& entry = Listed(Upstream(stage), run_, stage, file);
  std::string why;
  const auto path = VerifyEntry(run_ / stage, entry, &why);
  if (!path) {
    throw InputError((run_ / stage).string() + "/" + why + ": not the size and checksum the " + stage +
                     " manifest records: rerun lookbook " + stage + " --force");
  }
  if (record_input) UseInput(stage, file);
  return *path;
}

void Stage::UseInput(const std::string& stage, const std::string& file) {
  const Timed timed(this);
  ManifestEntry input = Listed(Upstream(stage), run_, stage, file);
  input.path = stage + "/" + file;
  for (const auto& known : inputs_) {
    if (known.path == input.path) return;
  }
  inputs_.push_back(input);
}

std::string Stage::KeyHash() const {
  StageKey full;
  full.Add("stage", name_);
  full.Add("code_version", code_version_);
  full.Add("options", key_.Hash());
  for (const auto& input : inputs_) full.Add("input " + input.path, input.checksum);
  return full.Hash();
}

bool Stage::Fresh(std::string* why) {
  const Timed timed(this);
  std::string answer;
  if (is_root()) {
    const std::string key = KeyHash();
    std::string read_why;
    const auto manifest = ReadManifest(dir(), &read_why);
    if (!manifest) {
      answer = read_why;
    } else if (manifest->key != key) {
      answer = manifest->key.empty() ? "the published stage has no validity key" : "its inputs or options changed";
    } else if (const std::string bad = CheckManifestPaths(run_, name_, *manifest); !bad.empty()) {
      answer = bad;
    } else {
      answer = VerifyOutputs(dir(), *manifest);
    }
  }
  *why = Share(world_, answer);
  return why->empty();
}

bool Stage::SameAsPublished() {
  const Timed timed(this);
  std::string answer = "different";
  if (is_root()) {
    std::string why;
    const auto manifest = ReadManifest(dir(), &why);
    auto same_entries = [](const std::vector<ManifestEntry>& a, const std::vector<ManifestEntry>& b) {
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].path != b[i].path || a[i].size != b[i].size || a[i].checksum != b[i].checksum ||
            a[i].rows != b[i].rows) {
          return false;
        }
      }
      return true;
    };
    if (manifest && manifest->key == KeyHash() && same_entries(manifest->outputs, outputs_) &&
        CheckManifestPaths(run_, name_, *manifest).empty() && VerifyOutputs(dir(), *manifest).empty()) {
      answer.clear();
    }
  }
  return Share(world_, answer).empty();
}

const std::filesystem::path& Stage::Staging() {
  const Timed timed(this);
  if (!staging_.empty()) return staging_;
  std::string path;
  if (is_root()) {
    static std::atomic<unsigned> counter{0};
    const std::filesystem::path folder =
        run_ / ".staging" / (name_ + "-" + WriterId() + "-" + std::to_string(counter.fetch_add(1)));
    std::error_code error;
    std::filesystem::remove_all(folder, error);
    std::filesystem::create_directories(folder, error);
    if (error) throw InputError("cannot create " + folder.string() + ": " + error.message());
    path = folder.string();
  }
  staging_ = Share(world_, path);
  return staging_;
}

void Stage::AddOutput(const std::string& file, std::int64_t rows) {
  const Timed timed(this);
  LB_CHECK(is_root(), "AddOutput on a rank other than 0");
  outputs_.push_back(DescribeFile(Staging() / file, file, rows));
}

void Stage::Publish(StageManifest manifest) {
  const Timed timed(this);
  LB_CHECK(!staging_.empty(), "Publish before Staging");
  FaultPoint("stage.staged");                // every rank, its files written, before the others wait for it
  if (world_ != nullptr) world_->Barrier();  // every rank's files are in the staging folder
  std::string error_text;
  if (is_root()) {
    try {
      manifest.stage = name_;
      manifest.code_version = code_version_;
      manifest.key = KeyHash();
      manifest.inputs = inputs_;
      manifest.sources = sources_;
      manifest.outputs = outputs_;
      WriteManifest(staging_, manifest);
      FaultPoint("stage.publish");
      RemoveSuccessMarker(run_);
      ReplaceFolder(staging_, dir());
      published_ = true;
      FaultPoint("stage.published");
    } catch (const InputError& error) {
      error_text = error.what();
    }
  }
  error_text = Share(world_, error_text);
  if (!error_text.empty()) throw InputError(error_text);
  published_ = true;
}

}  // namespace lookbook
