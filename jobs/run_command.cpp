// lookbook run --config FILE [--run DIR] [--stages LIST] [--force]   (every rank)
// lookbook status RUN [--format text|json]
// lookbook verify RUN
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "jobs/command.h"
#include "jobs/options.h"
#include "stage/run_status.h"
#include "util/blas.h"
#include "util/error.h"
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
  std::filesystem::path run;
  std::string stages, format;
  bool force = false;
};

const OptionTable<RunArgs>& RunOptionTable() {
  static const OptionTable<RunArgs> table = [] {
    OptionTable<RunArgs> t;
    t.Path(
        "run", "DIR", [](RunArgs& o) -> std::filesystem::path& { return o.run; }, false,
        "the run folder (overrides the config file's run)");
    t.Text(
        "stages", "LIST", [](RunArgs& o) -> std::string& { return o.stages; }, "ingest,embed,index,dedup,recs,report",
        OptionEffect::kControl, "the stages to run, in pipeline order, comma-separated");
    t.Flag(
        "force", [](RunArgs& o) -> bool& { return o.force; }, OptionEffect::kControl,
        "redo every stage even when its outputs are valid");
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

  // Every stage's options, parsed (and so checked) before anything runs.
  std::vector<std::pair<const Command*, po::variables_map>> plan;
  for (const auto& stage : stages) {
    std::vector<std::string> words = {stage, "--config", config, "--log-level", vm["log-level"].as<std::string>()};
    if (vm.count("run")) words.insert(words.end(), {"--run", vm["run"].as<std::string>()});
    if (vm["force"].as<bool>()) words.push_back("--force");
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
