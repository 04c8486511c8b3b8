#include "jobs/options.h"

#include <fstream>
#include <map>
#include <set>

namespace lookbook {
namespace {

std::set<std::string> OptionNames(const po::options_description& options) {
  std::set<std::string> names;
  for (const auto& option : options.options()) names.insert(option->long_name());
  return names;
}

}  // namespace

po::options_description CommonOptions() {
  po::options_description common("Common options");
  common.add_options()("help,h", "print this help and exit")("config", po::value<std::string>()->value_name("FILE"),
                                                             "INI file with more options (the command line wins)")(
      "log-level", po::value<std::string>()->default_value("info")->value_name("LEVEL"), "debug | info | warn | error");
  return common;
}

po::options_description CommandOptions(const Command& command) {
  po::options_description own(std::string(command.name) + " options");
  command.describe(&own);
  po::options_description all;
  all.add(own).add(CommonOptions());
  return all;
}

po::variables_map ParseCommandOptions(const Command& command, int argc, char** argv) {
  const po::options_description options = CommandOptions(command);
  po::variables_map values;
  // No guessing: "--shard" must not silently mean "--shards".
  const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
  // A command may take one positional word (eval's WHAT, status's RUN).
  po::positional_options_description positional;
  if (command.positional != nullptr) positional.add(command.positional, 1);
  po::store(po::command_line_parser(argc, argv).options(options).positional(positional).style(style).run(), values);

  if (values.count("config") && !values.count("help")) {
    const std::string path = values["config"].as<std::string>();
    std::ifstream file(path);
    if (!file) throw UsageError("--config: cannot read '" + path + "'");
    // Every command's option names, to check the whole file, not just this command's part.
    std::map<std::string, std::set<std::string>> known;
    std::set<std::string> known_anywhere = OptionNames(CommonOptions());
    for (const auto& other : Commands()) {
      po::options_description described;
      other.describe(&described);
      known[other.name] = OptionNames(described);
      known_anywhere.insert(known[other.name].begin(), known[other.name].end());
    }
    const std::set<std::string> mine = OptionNames(options);
    const po::options_description nothing;
    const po::parsed_options raw = po::parse_config_file(file, nothing, /*allow_unregistered=*/true);
    po::parsed_options section_values(&options);
    po::parsed_options top_values(&options);
    for (const auto& option : raw.options) {
      const std::string& key = option.string_key;
      const std::size_t dot = key.find('.');
      const std::string section = dot == std::string::npos ? "" : key.substr(0, dot);
      const std::string name = dot == std::string::npos ? key : key.substr(dot + 1);
      if (name == "config" || name == "help") {
        throw UsageError("--config " + path + ": '" + key + "' cannot be set in a config file");
      }
      po::option copy = option;
      copy.string_key = name;
      copy.unregistered = false;
      if (section.empty()) {
        if (!known_anywhere.count(name)) {
          throw UsageError("--config " + path + ": unknown option '" + name + "'");
        }
        if (mine.count(name)) top_values.options.push_back(copy);
      } else {
        const auto it = known.find(section);
        if (it == known.end()) {
          throw UsageError("--config " + path + ": unknown section [" + section + "]");
        }
        if (!it->second.count(name)) {
          throw UsageError("--config " + path + ": unknown option '" + name + "' in [" + section + "]");
        }
        if (section == command.name) section_values.options.push_back(copy);
      }
    }
    // store() keeps the first value it sees: command line, then [section], then the top.
    po::store(section_values, values);
    po::store(top_values, values);
  }
  if (!values.count("help")) po::notify(values);
  return values;
}

}  // namespace lookbook
