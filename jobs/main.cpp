// lookbook: the one executable. Thin: find the subcommand, parse its options, run it, map
// errors to exit codes (0 ok, 1 input/environment, 2 usage, 70 internal error, 75 stopped).
#include <spdlog/spdlog.h>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <optional>

#include "dist/world.h"
#include "jobs/command.h"
#include "jobs/options.h"
#include "stage/run_lock.h"
#include "util/error.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/publish.h"
#include "util/stop.h"

#ifndef LOOKBOOK_CODE_VERSION
#error "LOOKBOOK_CODE_VERSION must be defined by the build"
#endif

namespace lookbook {
namespace {

void PrintCommands(std::ostream& out) {
  out << "lookbook " << LOOKBOOK_CODE_VERSION
      << ": nightly reindexing of a fashion catalog\n\n"
         "usage: lookbook <command> [options]    (lookbook <command> --help for its options)\n\n"
         "commands:\n";
  for (const auto& command : Commands()) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-14s %s\n", command.name, command.summary);
    out << line;
  }
}

std::string Cell(const std::string& text) {
  std::string out;
  for (const char ch : text) out += ch == '|' ? std::string("\\|") : std::string(1, ch);
  return out;
}

// Every command's options as Markdown tables, from their tables (util/options.h): what
// config/README.md holds between its generated-options markers (a test checks they agree).
void PrintOptionsMarkdown(std::ostream& out) {
  out << "### Every command\n\n| option | default | values | meaning |\n|---|---|---|---|\n"
      << "| `config` | | FILE | INI file with more options (command line only) |\n"
      << "| `log-level` | `info` | debug \\| info \\| warn \\| error | logs go to stderr, one line per event, tagged "
         "with the MPI rank and the command |\n";
  for (const auto& command : Commands()) {
    const std::vector<OptionSpec> specs = command.specs();
    if (specs.empty()) continue;
    out << "\n### `[" << command.name << "]`: `lookbook " << command.name
        << (command.positional ? std::string(" ") + command.positional : "") << "`\n\n"
        << command.summary << ".\n\n| option | default | values | changes outputs | meaning |\n|---|---|---|---|---|\n";
    for (const OptionSpec& spec : specs) {
      const std::string fallback = spec.required ? "required" : "";
      const std::string shown = spec.default_text.empty() ? fallback : "`" + spec.default_text + "`";
      const char* effect = spec.effect == OptionEffect::kOutput     ? "yes"
                           : spec.effect == OptionEffect::kResource ? "no (how it runs)"
                                                                    : "";
      out << "| `" << spec.name << "` | " << Cell(shown) << " | "
          << Cell(spec.range.empty() ? (spec.is_switch() ? "switch" : spec.value_name) : spec.range) << " | " << effect
          << " | " << Cell(spec.help) << (spec.repeatable ? " (repeatable)" : "") << " |\n";
    }
  }
}

int Main(int argc, char** argv) {
  MpiWorld world = MpiWorld::Init(&argc, &argv);
  SetFaultRank(world.rank());
  const bool root = world.is_root();
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    if (root) PrintCommands(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  if (std::strcmp(argv[1], "--options-markdown") == 0) {  // config/README.md's option reference
    if (root) PrintOptionsMarkdown(std::cout);
    return kExitOk;
  }
  if (std::strcmp(argv[1], "--version") == 0) {
    if (root) std::cout << "lookbook " << LOOKBOOK_CODE_VERSION << "\n";
    return kExitOk;
  }
  const Command* command = nullptr;
  for (const auto& candidate : Commands()) {
    if (std::strcmp(candidate.name, argv[1]) == 0) command = &candidate;
  }
  if (command == nullptr) {
    if (root) std::cerr << "lookbook: unknown command '" << argv[1] << "' (see lookbook --help)\n";
    return kExitUsage;
  }

  // Options are checked identically on every rank before any collective call, so every rank
  // exits with the same code on a usage error.
  po::variables_map options;
  try {
    options = ParseCommandOptions(*command, argc - 1, argv + 1);
  } catch (const std::exception& error) {  // po::error and UsageError
    if (root) std::cerr << "lookbook " << command->name << ": " << error.what() << "\n";
    return kExitUsage;
  }
  if (options.count("help")) {
    if (root) {
      std::cout << "usage: lookbook " << command->name << " [options]\n"
                << command->summary << "\n\n"
                << CommandOptions(*command) << "\n";
    }
    return kExitOk;
  }
  LogLevel level = LogLevel::kInfo;
  if (!ParseLogLevel(options["log-level"].as<std::string>(), &level)) {
    if (root) std::cerr << "lookbook " << command->name << ": --log-level must be debug, info, warn or error\n";
    return kExitUsage;
  }
  InitLogging(world.rank(), command->name, level);

  InstallStopHandlers();
  const CommandContext context{world, LOOKBOOK_CODE_VERSION};
  return RunOnRanks(*command, options, context);
}

}  // namespace

namespace {

// Runs the command on this rank and returns its exit code; exceptions become exit codes
// here so that every rank decides the same way.
int RunGuarded(const Command& command, const po::variables_map& options, const CommandContext& context) {
  try {
    FaultPoint("command.run");
    return command.run(options, context);
  } catch (const UsageError& error) {
    if (context.world.is_root()) std::cerr << "lookbook " << command.name << ": " << error.what() << "\n";
    return kExitUsage;
  } catch (const InputError& error) {
    spdlog::error("{}", error.what());
    return kExitInputError;
  } catch (const std::exception& error) {
    spdlog::critical("{}", error.what());
    return kExitInternal;
  }
}

}  // namespace

namespace {

// The run lock a writing command holds while it runs (stage/run_lock.h): taken on rank 0 for the
// world; every rank learns whether it was. Nested commands (`lookbook run`'s stages) find it
// held. An error message when another writer holds the run, "" otherwise.
std::string LockRun(const Command& command, const po::variables_map& options, const CommandContext& context,
                    std::optional<RunLock>* lock) {
  if (command.access != RunAccess::kWrites || !options.count("run")) return {};
  const std::filesystem::path run = options["run"].as<std::string>();
  std::string error;
  if (context.world.is_root() && !HoldsRunLock(run)) {
    const bool one_shard = std::string(command.name) == "embed" && options.count("shard");
    try {
      *lock = RunLock::Acquire(run, one_shard ? RunLockMode::kShared : RunLockMode::kExclusive, command.name,
                               one_shard ? std::stoi(options["shard"].as<std::string>()) : -1);
    } catch (const InputError& held) {
      error = held.what();
    }
  }
  if (context.world.size() == 1) return error;
  const auto bytes = context.world.BroadcastBytesFromRoot(std::vector<std::uint8_t>(error.begin(), error.end()));
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

int RunOnRanks(const Command& command, const po::variables_map& options, const CommandContext& context) {
  const MpiWorld& world = context.world;
  std::optional<RunLock> lock;
  if (const std::string held = LockRun(command, options, context, &lock); !held.empty()) {
    if (world.is_root()) spdlog::error("{}", held);
    return kExitInputError;
  }
  if (command.ranks == RankPolicy::kRootOnly) {
    // Rank 0 works; the others wait for its exit code (every rank reaches the broadcast,
    // whatever happened on rank 0, because RunGuarded never throws).
    int code = kExitOk;
    if (world.is_root()) code = RunGuarded(command, options, context);
    if (world.size() > 1) code = static_cast<int>(world.BroadcastFromRoot(code));
    return code;
  }
  const int code = RunGuarded(command, options, context);
  // A failure seen by one rank only: a collective would hang, so end the whole job. A stop
  // (kExitStopped) is agreed by every rank at a collective, so it needs no abort.
  if (code != kExitOk && code != kExitStopped && world.size() > 1) {
    spdlog::critical("rank {} failed with exit code {}: aborting the job", world.rank(), code);
    world.AbortAll(code);
  }
  return code;
}

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"ingest", "validate the catalog CSV and split it into shards", RankPolicy::kRootOnly, IngestSpecs,
       RunIngestCommand, nullptr, RunAccess::kWrites},
      {"embed", "decode every image and embed it with the CLIP image encoder (MPI ranks x shards)",
       RankPolicy::kAllRanks, EmbedSpecs, RunEmbedCommand, nullptr, RunAccess::kWrites},
      {"index", "build the sharded FAISS index over every embedding (MPI ranks x shards)", RankPolicy::kAllRanks,
       IndexSpecs, RunIndexCommand, nullptr, RunAccess::kWrites},
      {"dedup", "find near-duplicate images across the whole catalog: pairs and clusters (MPI ranks x shards)",
       RankPolicy::kAllRanks, DedupSpecs, RunDedupCommand, nullptr, RunAccess::kWrites},
      {"recs", "recommendation tables: substitutes and complete-the-look outfits (MPI ranks x shards)",
       RankPolicy::kAllRanks, RecsSpecs, RunRecsCommand, nullptr, RunAccess::kWrites},
      {"report", "a static HTML gallery of the run: overview, duplicates, substitutes, outfits, rejects",
       RankPolicy::kRootOnly, ReportSpecs, RunReportCommand, nullptr, RunAccess::kWrites},
      {"query", "match a new photo's garments (or a text) against a run's catalog", RankPolicy::kRootOnly, QuerySpecs,
       RunQueryCommand, nullptr, RunAccess::kReads},
      {"embed-text", "embed texts with a bundle's CLIP text encoder", RankPolicy::kRootOnly, EmbedTextSpecs,
       RunEmbedTextCommand},
      {"run",
       "every stage in order (ingest, embed, index, dedup, recs, report), skipping valid work; RUN/_SUCCESS last",
       RankPolicy::kAllRanks, RunSpecs, RunRunAllCommand, nullptr, RunAccess::kWrites},
      {"status", "each stage's and embed shard's state in a run folder (lookbook status RUN)", RankPolicy::kRootOnly,
       StatusSpecs, RunStatusCommand, "run", RunAccess::kReads},
      {"verify", "recheck every output's checksum in a run folder; non-zero exit on any mismatch",
       RankPolicy::kRootOnly, VerifySpecs, RunVerifyCommand, "run", RunAccess::kReads},
      {"eval", "evaluate: eval model|garments|dedup|recs (quality against the demo's truth)", RankPolicy::kRootOnly,
       EvalSpecs, RunEvalCommand, "what", RunAccess::kWrites},
      {"mpi-check", "check that the launcher made one MPI world of --expect ranks (used by the slurm/ scripts)",
       RankPolicy::kAllRanks, MpiCheckSpecs, RunMpiCheckCommand},
      {"blas-check", "check that this process's BLAS kernel computes correctly (used by jobs/blas-env.sh)",
       RankPolicy::kRootOnly, BlasCheckSpecs, RunBlasCheckCommand},
      {"demo-catalog", "write the built-in demo catalog from Fashion-MNIST", RankPolicy::kRootOnly, DemoCatalogSpecs,
       RunDemoCatalogCommand},
  };
  return kCommands;
}

namespace {
std::vector<std::string>& Printed() {
  static std::vector<std::string> lines;
  return lines;
}
}  // namespace

void PrintSummaryLine(const std::string& json_line) {
  Printed().push_back(json_line);
  std::cout << json_line << std::endl;
}

const std::vector<std::string>& PrintedSummaryLines() { return Printed(); }

void KeepSummary(const std::filesystem::path& run, const std::string& stage, const std::string& json_line) {
  std::error_code error;
  if (!std::filesystem::is_directory(run, error)) return;
  try {
    std::filesystem::create_directories(run / "summaries");
    PublishFile(run / "summaries" / (stage + ".json"), json_line + "\n");
  } catch (const std::exception& write_error) {
    spdlog::warn("summary not kept: {}", write_error.what());
  }
}

}  // namespace lookbook

int main(int argc, char** argv) {
  try {
    return lookbook::Main(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "lookbook: fatal: %s\n", error.what());
    return lookbook::kExitInternal;
  }
}
