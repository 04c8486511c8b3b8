// The subcommand table (ninja's kTools[] pattern): each subcommand is one file
// <name>_command.cpp that describes its options, parses them into a src/ options struct, calls
// one src/ entry point and prints the stage summary.
#pragma once

#include <boost/program_options.hpp>
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
void DescribeEval(po::options_description* options);
int RunEvalCommand(const po::variables_map& options, const CommandContext& context);
void DescribeBlasCheck(po::options_description* options);
int RunBlasCheckCommand(const po::variables_map& options, const CommandContext& context);
void DescribeDemoCatalog(po::options_description* options);
int RunDemoCatalogCommand(const po::variables_map& options, const CommandContext& context);

// Prints a stage's one-line JSON summary on stdout.
void PrintSummaryLine(const std::string& json_line);

}  // namespace lookbook
