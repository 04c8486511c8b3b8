// Options from the command line and an INI file (--config FILE), both through
// Boost.Program_options. The command line wins over the file. In the file, keys at the top
// apply to every command that has them; keys under [<command>] apply to that command and
// win over the top. Every key in the file, in every section, must be an option of its
// command: a typo in a nightly config is a usage error, not a silent default.
#pragma once

#include "jobs/command.h"

namespace lookbook {

// Options every command takes: --help, --config, --log-level.
po::options_description CommonOptions();

// Parses `argv` (argv[0] is the command name) for `command`, then its config file.
// Throws UsageError or po::error on a usage error.
po::variables_map ParseCommandOptions(const Command& command, int argc, char** argv);

// The full option list of `command`, for --help.
po::options_description CommandOptions(const Command& command);

// A table's options (util/options.h) as Boost.Program_options options: every value is taken as
// text, the table converts and checks it; defaults are shown (and applied by the table).
void DescribeOptions(const std::vector<OptionSpec>& specs, po::options_description* options);
// The values given for a table's options, on the command line or in the config file.
OptionValues GivenValues(const po::variables_map& vm, const std::vector<OptionSpec>& specs);

}  // namespace lookbook
