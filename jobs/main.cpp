// lookbook: the one executable. Thin: find the subcommand, parse its options, run it, map
// errors to exit codes (0 ok, 1 input/environment, 2 usage, 70 internal error, 75 stopped).
#include <spdlog/spdlog.h>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>

#include "dist/world.h"
#include "jobs/command.h"
#include "jobs/options.h"
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

int Main(int argc, char** argv) {
  MpiWorld world = MpiWorld::Init(&argc, &argv);
  SetFaultRank(world.rank());
  const bool root = world.is_root();
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    if (root) PrintCommands(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? kExitUsage : kExitOk;
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

int RunOnRanks(const Command& command, const po::variables_map& options, const CommandContext& context) {
  const MpiWorld& world = context.world;
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
      {"ingest", "validate the catalog CSV and split it into shards", RankPolicy::kRootOnly, DescribeIngest,
       RunIngestCommand},
      {"embed", "decode every image and embed it with the CLIP image encoder (MPI ranks x shards)",
       RankPolicy::kAllRanks, DescribeEmbed, RunEmbedCommand},
      {"index", "build the sharded FAISS index over every embedding (MPI ranks x shards)", RankPolicy::kAllRanks,
       DescribeIndex, RunIndexCommand},
      {"dedup", "find near-duplicate images across the whole catalog: pairs and clusters (MPI ranks x shards)",
       RankPolicy::kAllRanks, DescribeDedup, RunDedupCommand},
      {"recs", "recommendation tables: substitutes and complete-the-look outfits (MPI ranks x shards)",
       RankPolicy::kAllRanks, DescribeRecs, RunRecsCommand},
      {"report", "a static HTML gallery of the run: overview, duplicates, substitutes, outfits, rejects",
       RankPolicy::kRootOnly, DescribeReport, RunReportCommand},
      {"query", "match a new photo's garments (or a text) against a run's catalog", RankPolicy::kRootOnly,
       DescribeQuery, RunQueryCommand},
      {"embed-text", "embed texts with a bundle's CLIP text encoder", RankPolicy::kRootOnly, DescribeEmbedText,
       RunEmbedTextCommand},
      {"run",
       "every stage in order (ingest, embed, index, dedup, recs, report), skipping valid work; RUN/_SUCCESS last",
       RankPolicy::kAllRanks, DescribeRunAll, RunRunAllCommand},
      {"status", "each stage's and embed shard's state in a run folder (lookbook status RUN)", RankPolicy::kRootOnly,
       DescribeStatus, RunStatusCommand, "run"},
      {"verify", "recheck every output's checksum in a run folder; non-zero exit on any mismatch",
       RankPolicy::kRootOnly, DescribeVerify, RunVerifyCommand, "run"},
      {"eval", "evaluate: eval model|garments|dedup|recs (quality against the demo's truth)", RankPolicy::kRootOnly,
       DescribeEval, RunEvalCommand, "what"},
      {"mpi-check", "check that the launcher made one MPI world of --expect ranks (used by the slurm/ scripts)",
       RankPolicy::kAllRanks, DescribeMpiCheck, RunMpiCheckCommand},
      {"blas-check", "check that this process's BLAS kernel computes correctly (used by jobs/blas-env.sh)",
       RankPolicy::kRootOnly, DescribeBlasCheck, RunBlasCheckCommand},
      {"demo-catalog", "write the built-in demo catalog from Fashion-MNIST", RankPolicy::kRootOnly, DescribeDemoCatalog,
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
