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

namespace lookbook {

namespace po = boost::program_options;

// A usage error: bad or missing option. Exit code 2, one line naming the option.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CommandContext {
  const MpiWorld& world;
  std::string code_version;
};

// Who runs a command under mpirun: only rank 0 (the others wait and share its exit code),
// or every rank (the command splits the work itself).
enum class RankPolicy { kRootOnly, kAllRanks };

struct Command {
  const char* name;
  const char* summary;
  RankPolicy ranks;
  // Adds the command's options; their names are also its keys in the [name] config section.
  void (*describe)(po::options_description* options);
  // Runs the command; returns the exit code. Throws UsageError for invalid option values.
  int (*run)(const po::variables_map& options, const CommandContext& context);
  // The option a bare word on the command line fills (eval's WHAT, status's RUN), or null.
  const char* positional = nullptr;
};

const std::vector<Command>& Commands();

// Per-command entry points, defined in <name>_command.cpp.
void DescribeIngest(po::options_description* options);
int RunIngestCommand(const po::variables_map& options, const CommandContext& context);
void DescribeEmbed(po::options_description* options);
int RunEmbedCommand(const po::variables_map& options, const CommandContext& context);
void DescribeEmbedText(po::options_description* options);
int RunEmbedTextCommand(const po::variables_map& options, const CommandContext& context);
void DescribeIndex(po::options_description* options);
int RunIndexCommand(const po::variables_map& options, const CommandContext& context);
void DescribeDedup(po::options_description* options);
int RunDedupCommand(const po::variables_map& options, const CommandContext& context);
void DescribeRecs(po::options_description* options);
int RunRecsCommand(const po::variables_map& options, const CommandContext& context);
void DescribeQuery(po::options_description* options);
int RunQueryCommand(const po::variables_map& options, const CommandContext& context);
void DescribeReport(po::options_description* options);
int RunReportCommand(const po::variables_map& options, const CommandContext& context);
// Keeps a stage's summary line as RUN/summaries/<stage>.json (the report's throughput table):
// outside the stage's folder and manifest, since timings differ between identical runs.
void KeepSummary(const std::filesystem::path& run, const std::string& stage, const std::string& json_line);
void DescribeRunAll(po::options_description* options);
int RunRunAllCommand(const po::variables_map& options, const CommandContext& context);
void DescribeMpiCheck(po::options_description* options);
int RunMpiCheckCommand(const po::variables_map& options, const CommandContext& context);
void DescribeStatus(po::options_description* options);
int RunStatusCommand(const po::variables_map& options, const CommandContext& context);
void DescribeVerify(po::options_description* options);
int RunVerifyCommand(const po::variables_map& options, const CommandContext& context);
void DescribeEval(po::options_description* options);
int RunEvalCommand(const po::variables_map& options, const CommandContext& context);
void DescribeBlasCheck(po::options_description* options);
int RunBlasCheckCommand(const po::variables_map& options, const CommandContext& context);
void DescribeDemoCatalog(po::options_description* options);
int RunDemoCatalogCommand(const po::variables_map& options, const CommandContext& context);

// Prints a stage's one-line JSON summary on stdout (and keeps it for `lookbook run`).
void PrintSummaryLine(const std::string& json_line);
const std::vector<std::string>& PrintedSummaryLines();

// Runs `command` the way its RankPolicy says (root only, the others wait for its exit code;
// or every rank), turning exceptions into exit codes; a failure on some ranks only ends the
// whole job. Every rank returns the same code.
int RunOnRanks(const Command& command, const po::variables_map& options, const CommandContext& context);

}  // namespace lookbook
