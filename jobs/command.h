// The subcommand table (ninja's kTools[] pattern): each subcommand is one file
// <name>_command.cpp that describes its options, parses them into a src/ options struct, calls
// one src/ entry point and prints the stage summary.
#pragma once

#include <boost/program_options.hpp>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "dist/world.h"
#include "util/error.h"
#include "util/options.h"

namespace lookbook {

namespace po = boost::program_options;

// UsageError (util/error.h): bad or missing option, exit code 2, one line naming the option.

struct CommandContext {
  const MpiWorld& world;
  std::string code_version;
};

// Who runs a command under mpirun: only rank 0 (the others wait and share its exit code),
// or every rank (the command splits the work itself).
enum class RankPolicy { kRootOnly, kAllRanks };

// Whether a command writes to the run folder its --run names: then it holds the run lock for
// as long as it runs (stage/run_lock.h), taken by rank 0 for the world before it starts.
enum class RunAccess { kNone, kReads, kWrites };

struct Command {
  const char* name;
  const char* summary;
  RankPolicy ranks;
  // The command's options (util/options.h); their names are also its keys in the [name] config
  // section.
  std::vector<OptionSpec> (*specs)();
  // Runs the command; returns the exit code. Throws UsageError for invalid option values.
  int (*run)(const po::variables_map& options, const CommandContext& context);
  // The option a bare word on the command line fills (eval's WHAT, status's RUN), or null.
  const char* positional = nullptr;
  RunAccess access = RunAccess::kNone;
};

const std::vector<Command>& Commands();

// Per-command entry points, defined in <name>_command.cpp.
std::vector<OptionSpec> IngestSpecs();
int RunIngestCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> EmbedSpecs();
int RunEmbedCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> EmbedTextSpecs();
int RunEmbedTextCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> IndexSpecs();
int RunIndexCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> DedupSpecs();
int RunDedupCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> RecsSpecs();
int RunRecsCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> QuerySpecs();
int RunQueryCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> ReportSpecs();
int RunReportCommand(const po::variables_map& options, const CommandContext& context);
// Keeps a stage's summary line as RUN/summaries/<stage>.json (the report's throughput table):
// outside the stage's folder and manifest, since timings differ between identical runs.
void KeepSummary(const std::filesystem::path& run, const std::string& stage, const std::string& json_line);
std::vector<OptionSpec> RunSpecs();
int RunRunAllCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> MpiCheckSpecs();
int RunMpiCheckCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> StatusSpecs();
int RunStatusCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> VerifySpecs();
int RunVerifyCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> EvalSpecs();
int RunEvalCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> BlasCheckSpecs();
int RunBlasCheckCommand(const po::variables_map& options, const CommandContext& context);
std::vector<OptionSpec> DemoCatalogSpecs();
int RunDemoCatalogCommand(const po::variables_map& options, const CommandContext& context);

// Prints a stage's one-line JSON summary on stdout (and keeps it for `lookbook run`).
void PrintSummaryLine(const std::string& json_line);
const std::vector<std::string>& PrintedSummaryLines();

// Runs `command` the way its RankPolicy says (root only, the others wait for its exit code;
// or every rank), turning exceptions into exit codes; a failure on some ranks only ends the
// whole job. Every rank returns the same code.
int RunOnRanks(const Command& command, const po::variables_map& options, const CommandContext& context);

}  // namespace lookbook
