// lookbook run --config FILE [--run DIR] [--stages LIST] [--force]   (every rank)
// lookbook status RUN [--format text|json]
// lookbook verify RUN
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "jobs/command.h"
#include "jobs/options.h"
#include "stage/run_lock.h"
#include "stage/run_status.h"
#include "util/blas.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/options.h"
#include "util/publish.h"
#include "util/stop.h"

namespace lookbook {
namespace {

const std::vector<std::string> kPipeline = {"ingest", "embed", "index", "dedup", "recs", "report"};

const Command& FindCommand(const std::string& name) {
  for (const auto& command : Commands()) {
    if (name == command.name) return command;
  }
  throw UsageError("--stages: unknown stage '" + name + "'");
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

}  // namespace

namespace {

struct RunArgs {
  std::filesystem::path run, runs_root;
  std::string stages, format, run_name;
  bool force = false, rehash = false;
  int keep_runs = 0;
};

const OptionTable<RunArgs>& RunOptionTable() {
  static const OptionTable<RunArgs> table = [] {
    OptionTable<RunArgs> t;
    t.Path(
        "run", "DIR", [](RunArgs& o) -> std::filesystem::path& { return o.run; }, false,
        "one run folder, used as it is (on the command line it overrides the config file's run or runs-root)");
    t.Text(
        "stages", "LIST", [](RunArgs& o) -> std::string& { return o.stages; }, "ingest,embed,index,dedup,recs,report",
        OptionEffect::kControl, "the stages to run, in pipeline order, comma-separated");
    t.Flag(
        "force", [](RunArgs& o) -> bool& { return o.force; }, OptionEffect::kControl,
        "redo every stage even when its outputs are valid");
    t.Path(
        "runs-root", "DIR", [](RunArgs& o) -> std::filesystem::path& { return o.runs_root; }, false,
        "nightly runs: a new run folder DIR/runs/<UTC start time> per night (an unfinished newest one is "
        "resumed), reusing the newest finished run's work; DIR/latest points at the new run once it succeeded; "
        "DIR/decisions.csv holds reviewer decisions (docs/operations.md#nightly-runs)");
    t.Text(
        "run-name", "NAME", [](RunArgs& o) -> std::string& { return o.run_name; }, "", OptionEffect::kControl,
        "with --runs-root: the run folder's name instead of the start time (an existing one is resumed)");
    t.Integer<int>(
        "keep-runs", "N", [](RunArgs& o) -> int& { return o.keep_runs; }, 0, 0, 100000, OptionEffect::kControl,
        "with --runs-root: after a successful night, remove all but the newest N runs (0: keep all); never "
        "the one latest points at, never one whose lock is held");
    t.Flag(
        "rehash", [](RunArgs& o) -> bool& { return o.rehash; }, OptionEffect::kControl,
        "embed: read every image's bytes instead of trusting files whose path, size and date are unchanged");
    return t;
  }();
  return table;
}

const OptionTable<RunArgs>& StatusOptionTable() {
  static const OptionTable<RunArgs> table = [] {
    OptionTable<RunArgs> t;
    t.Path(
        "run", "DIR", [](RunArgs& o) -> std::filesystem::path& { return o.run; }, true,
        "the run folder (the first word after status)");
    t.Text("format", "F", [](RunArgs& o) -> std::string& { return o.format; }, "text", OptionEffect::kOutput,
           "text (a table) | json (one object)", {"text", "json"});
    return t;
  }();
  return table;
}

const OptionTable<RunArgs>& VerifyOptionTable() {
  static const OptionTable<RunArgs> table = [] {
    OptionTable<RunArgs> t;
    t.Path(
        "run", "DIR", [](RunArgs& o) -> std::filesystem::path& { return o.run; }, true,
        "the run folder (the first word after verify)");
    return t;
  }();
  return table;
}

// The nightly layout under a runs root (docs/operations.md#nightly-runs).
struct Nightly {
  std::filesystem::path run;       // this night's folder, DIR/runs/NAME
  std::filesystem::path previous;  // the newest finished run, whose work is reused; empty: none
};

bool Finished(const std::filesystem::path& run) { return std::filesystem::exists(run / "_SUCCESS"); }

// Whether another process holds the run's lock (then it is in use: never resumed, never removed).
bool LockedByOther(const std::filesystem::path& run) {
  if (!std::filesystem::exists(run / ".lock")) return false;
  try {
    RunLock probe = RunLock::Acquire(run, RunLockMode::kExclusive, "run (probe)");
    return false;
  } catch (const InputError&) {
    return true;
  }
}

// When a night began: RUN/.started, written once when the folder is made (nanoseconds since the
// epoch, UTC). A night named with --run-name sorts by it like any other; a folder without one
// (made by hand) sorts first.
std::int64_t Started(const std::filesystem::path& run) {
  try {
    return std::stoll(ReadFileBytes(run / ".started"));
  } catch (const std::exception&) {
    return 0;
  }
}

void MarkStarted(const std::filesystem::path& run) {
  if (std::filesystem::exists(run / ".started")) return;
  std::error_code error;
  std::filesystem::create_directories(run, error);
  if (error) throw InputError("cannot create " + run.string() + ": " + error.message());
  const auto now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  PublishFile(run / ".started", std::to_string(now) + "\n");
}

// The runs under DIR/runs, oldest first: by start (RUN/.started), then name.
std::vector<std::filesystem::path> Runs(const std::filesystem::path& root) {
  std::vector<std::pair<std::int64_t, std::filesystem::path>> found;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(root / "runs", error)) {
    if (entry.is_directory(error) && entry.path().filename().string().front() != '.') {
      found.emplace_back(Started(entry.path()), entry.path());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::filesystem::path> runs;
  for (auto& [started, run] : found) runs.push_back(std::move(run));
  return runs;
}

std::string RunNameNow() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof(text), "%Y%m%dT%H%M%SZ", std::gmtime(&now));
  return text;
}

Nightly ResolveNightly(const std::filesystem::path& root, const std::string& wanted_name) {
  std::error_code error;
  std::filesystem::create_directories(root / "runs", error);
  if (error) throw InputError("cannot create " + (root / "runs").string() + ": " + error.message());
  const auto runs = Runs(root);
  Nightly out;
  std::string name = wanted_name;
  if (name.empty() && !runs.empty() && !Finished(runs.back()) && !LockedByOther(runs.back())) {
    name = runs.back().filename().string();  // an unfinished night (stopped, failed): resumed
    spdlog::info("resuming the unfinished run {}", name);
  }
  if (name.empty()) {
    name = RunNameNow();
    if (std::filesystem::exists(root / "runs" / name)) name += "-" + std::to_string(::getpid());
  }
  if (name.find('/') != std::string::npos || name == "." || name == ".." || name.front() == '.') {
    throw UsageError("--run-name must be a plain folder name, not '" + name + "'");
  }
  out.run = root / "runs" / name;
  MarkStarted(out.run);
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
    if (*it != out.run && Finished(*it)) {
      out.previous = *it;
      break;
    }
  }
  return out;
}

// Points DIR/latest at `run` with one rename of a symlink (relative: the root can move).
void PointLatest(const std::filesystem::path& root, const std::filesystem::path& run) {
  const std::filesystem::path temp = root / (".latest.tmp-" + WriterId());
  std::error_code error;
  std::filesystem::remove(temp, error);
  std::filesystem::create_directory_symlink(std::filesystem::path("runs") / run.filename(), temp, error);
  if (error) throw InputError("cannot create " + temp.string() + ": " + error.message());
  if (std::rename(temp.c_str(), (root / "latest").c_str()) != 0) {
    throw InputError("cannot point " + (root / "latest").string() + " at " + run.string() + ": " +
                     std::strerror(errno));
  }
  SyncFolder(root);
}

// Removes all but the newest `keep` runs: never the one latest points at, never a locked one.
void PruneRuns(const std::filesystem::path& root, int keep) {
  if (keep <= 0) return;
  auto runs = Runs(root);
  std::error_code error;
  const auto latest = std::filesystem::weakly_canonical(root / "latest", error);
  const std::size_t remove = runs.size() > static_cast<std::size_t>(keep) ? runs.size() - keep : 0;
  for (std::size_t i = 0; i < remove; ++i) {
    if (std::filesystem::weakly_canonical(runs[i], error) == latest) continue;
    try {
      RunLock held = RunLock::Acquire(runs[i], RunLockMode::kExclusive, "run (pruning)");
      // Renamed first, so that no reader ever sees a half-removed run under its name.
      const std::filesystem::path doomed = root / "runs" / ("." + runs[i].filename().string() + ".removing");
      std::filesystem::rename(runs[i], doomed, error);
      if (!error) std::filesystem::remove_all(doomed, error);
      spdlog::info("removed the old run {}", runs[i].filename().string());
    } catch (const InputError&) {
      spdlog::info("kept the old run {}: it is in use", runs[i].filename().string());
    }
  }
}

// Checks the values against the table (ranges, choices); the commands read them as text.
void Check(const OptionTable<RunArgs>& table, const po::variables_map& vm) {
  RunArgs unused;
  table.Parse(GivenValues(vm, table.specs()), &unused);
}

}  // namespace

std::vector<OptionSpec> RunSpecs() { return RunOptionTable().specs(); }
std::vector<OptionSpec> StatusSpecs() { return StatusOptionTable().specs(); }
std::vector<OptionSpec> VerifySpecs() { return VerifyOptionTable().specs(); }

int RunRunAllCommand(const po::variables_map& vm, const CommandContext& context) {
  Check(RunOptionTable(), vm);
  if (!vm.count("config")) throw UsageError("lookbook run needs --config FILE: every stage's options come from it");
  const std::string config = vm["config"].as<std::string>();
  std::vector<std::string> stages;
  std::istringstream list(vm["stages"].as<std::string>());
  for (std::string stage; std::getline(list, stage, ',');) {
    if (std::find(kPipeline.begin(), kPipeline.end(), stage) == kPipeline.end()) {
      throw UsageError("--stages: '" + stage + "' is not one of ingest, embed, index, dedup, recs, report");
    }
    stages.push_back(stage);
  }
  if (stages.empty()) throw UsageError("--stages is empty");

  // With a runs root: this night's folder and the run whose work it reuses (rank 0 decides).
  RunArgs args;
  RunOptionTable().Parse(GivenValues(vm, RunOptionTable().specs()), &args);
  Nightly nightly;
  if (!args.runs_root.empty()) {
    if (!args.run.empty()) throw UsageError("give --run or --runs-root, not both (a config file may set either)");
    std::string resolved;
    if (context.world.is_root()) {
      const Nightly found = ResolveNightly(args.runs_root, args.run_name);
      resolved = found.run.string() + "\n" + found.previous.string();
    }
    const auto bytes =
        context.world.BroadcastBytesFromRoot(std::vector<std::uint8_t>(resolved.begin(), resolved.end()));
    const std::string shared(bytes.begin(), bytes.end());
    nightly.run = shared.substr(0, shared.find('\n'));
    nightly.previous = shared.substr(shared.find('\n') + 1);
    if (context.world.is_root()) {
      spdlog::info("run {}{}", nightly.run.string(),
                   nightly.previous.empty() ? " (no finished run to reuse)" : ", reusing " + nightly.previous.string());
    }
  }

  // Every stage's options, parsed (and so checked) before anything runs.
  std::vector<std::pair<const Command*, po::variables_map>> plan;
  for (const auto& stage : stages) {
    std::vector<std::string> words = {stage, "--config", config, "--log-level", vm["log-level"].as<std::string>()};
    if (!nightly.run.empty()) {
      words.insert(words.end(), {"--run", nightly.run.string()});
      if (!nightly.previous.empty() &&
          (stage == "embed" || stage == "index" || stage == "dedup" || stage == "report")) {
        words.insert(words.end(), {"--previous-run", nightly.previous.string()});
      }
      if (stage == "dedup" && std::filesystem::exists(args.runs_root / "decisions.csv")) {
        words.insert(words.end(), {"--decisions", (args.runs_root / "decisions.csv").string()});
      }
    } else if (vm.count("run")) {
      words.insert(words.end(), {"--run", vm["run"].as<std::string>()});
    }
    if (vm["force"].as<bool>()) words.push_back("--force");
    if (args.rehash && stage == "embed") words.push_back("--rehash");
    std::vector<char*> argv;
    for (auto& word : words) argv.push_back(word.data());
    const Command& command = FindCommand(stage);
    try {
      plan.emplace_back(&command, ParseCommandOptions(command, static_cast<int>(argv.size()), argv.data()));
    } catch (const po::error& error) {
      throw UsageError(stage + ": " + error.what() + " (set it in " + config + ")");
    }
  }
  const std::filesystem::path run = plan.front().second["run"].as<std::string>();
  // The whole night holds the run's lock (a nested stage finds it held).
  std::optional<RunLock> lock;
  std::string held;
  if (context.world.is_root() && !HoldsRunLock(run)) {
    try {
      lock = RunLock::Acquire(run, RunLockMode::kExclusive, "run");
    } catch (const InputError& error) {
      held = error.what();
    }
  }
  const auto held_bytes = context.world.BroadcastBytesFromRoot(std::vector<std::uint8_t>(held.begin(), held.end()));
  if (!held_bytes.empty()) throw InputError(std::string(held_bytes.begin(), held_bytes.end()));
  if (context.world.is_root()) {
    // A reader must never take an unfinished run for the last good one.
    std::filesystem::create_directories(run);
    std::error_code ignored;
    std::filesystem::remove(run / "_SUCCESS", ignored);
  }
  const auto start = std::chrono::steady_clock::now();
  const std::size_t printed_before = PrintedSummaryLines().size();
  for (const auto& [command, options] : plan) {
    if (context.world.is_root()) spdlog::info("stage {}", command->name);
    const int code = RunOnRanks(*command, options, context);
    if (code != kExitOk) {
      if (context.world.is_root())
        spdlog::error("stage {} ended with exit code {}: the run stops here; rerun to resume", command->name, code);
      return code;
    }
    // A stop is agreed by every rank here, not seen by each on its own: the ranks never part.
    if (context.world.SumAll({StopRequested() ? 1 : 0})[0] > 0) return kExitStopped;
  }
  if (context.world.is_root()) {
    nlohmann::ordered_json summary;
    summary["run"] = std::filesystem::absolute(run).lexically_normal().string();
    summary["finished_utc"] = UtcNow();
    summary["code_version"] = context.code_version;
    summary["ranks"] = context.world.size();
    summary["blas_core"] = BlasCoreName();
    summary["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    summary["stages"] = nlohmann::json::array();
    const auto& lines = PrintedSummaryLines();
    for (std::size_t i = printed_before; i < lines.size(); ++i)
      summary["stages"].push_back(nlohmann::ordered_json::parse(lines[i]));
    for (const auto& stage : InspectRun(run)) {
      if (stage.state != "absent") summary["state"][stage.stage] = stage.state;
    }
    PublishFile(run / "_SUCCESS", summary.dump(2) + "\n");
    nlohmann::ordered_json line;
    line["stage"] = "run";
    line["status"] = "ok";
    line["run"] = summary["run"];
    line["seconds"] = summary["seconds"];
    line["stages"] = stages.size();
    line["success_file"] = (run / "_SUCCESS").string();
    // Consumers read DIR/latest: it moves only now, after _SUCCESS, in one rename.
    if (!args.runs_root.empty()) {
      PointLatest(args.runs_root, run);
      line["latest"] = (args.runs_root / "latest").string();
      if (!nightly.previous.empty()) line["reused_from"] = nightly.previous.string();
      lock.reset();
      PruneRuns(args.runs_root, args.keep_runs);
    }
    PrintSummaryLine(line.dump());
  }
  return kExitOk;
}

int RunStatusCommand(const po::variables_map& vm, const CommandContext& context) {
  Check(StatusOptionTable(), vm);
  const std::filesystem::path run = vm["run"].as<std::string>();
  const std::string format = vm["format"].as<std::string>();
  if (format != "text" && format != "json") throw UsageError("--format must be text or json");
  if (!std::filesystem::is_directory(run)) throw InputError(run.string() + " is not a run folder");
  const auto stages = InspectRun(run);
  std::string success = "absent";
  if (std::filesystem::exists(run / "_SUCCESS")) success = "present";
  // Exit 0 only when every stage present is valid (absent ones are not yet run): scripts can
  // trust `lookbook status RUN && ...`.
  bool all_valid = true;
  for (const auto& stage : stages) all_valid = all_valid && (stage.state == "valid" || stage.state == "absent");
  if (format == "json") {
    nlohmann::ordered_json out;
    out["run"] = run.string();
    out["success"] = success;
    for (const auto& stage : stages) {
      nlohmann::ordered_json item{{"state", stage.state}, {"detail", stage.detail}};
      for (const auto& shard : stage.shards)
        item["shards"].push_back({{"shard", shard.shard}, {"state", shard.state}, {"detail", shard.detail}});
      out["stages"][stage.stage] = item;
    }
    std::cout << out.dump() << std::endl;
  } else {
    std::printf("run %s (_SUCCESS %s)\n", run.c_str(), success.c_str());
    for (const auto& stage : stages) {
      std::printf("  %-8s %-8s %s\n", stage.stage.c_str(), stage.state.c_str(), stage.detail.c_str());
      for (const auto& shard : stage.shards) {
        std::printf("    shard %-5d %-8s %s\n", shard.shard, shard.state.c_str(), shard.detail.c_str());
      }
    }
    std::fflush(stdout);
  }
  (void)context;
  return all_valid ? kExitOk : kExitInputError;
}

int RunVerifyCommand(const po::variables_map& vm, const CommandContext& context) {
  Check(VerifyOptionTable(), vm);
  const std::filesystem::path run = vm["run"].as<std::string>();
  if (!std::filesystem::is_directory(run)) throw InputError(run.string() + " is not a run folder");
  const RunVerification result = VerifyRun(run);
  if (result.manifests == 0) {
    throw InputError(run.string() + " is not a run folder: it holds no stage manifest");
  }
  for (const auto& problem : result.problems) std::cout << "BAD " << problem << "\n";
  nlohmann::ordered_json line{{"stage", "verify"},     {"status", result.problems.empty() ? "ok" : "mismatch"},
                              {"run", run.string()},   {"files", result.files},
                              {"bytes", result.bytes}, {"problems", result.problems.size()}};
  PrintSummaryLine(line.dump());
  (void)context;
  return result.problems.empty() ? kExitOk : kExitInputError;
}

}  // namespace lookbook
