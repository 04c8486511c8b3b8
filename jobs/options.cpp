#include "jobs/options.h"

#include "jobs/config_file.h"

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

void DescribeOptions(const std::vector<OptionSpec>& specs, po::options_description* options) {
  for (const OptionSpec& spec : specs) {
    const std::string help = spec.help + (spec.range.empty() ? "" : " (" + spec.range + ")");
    if (spec.is_switch()) {
      options->add_options()(spec.name.c_str(), po::bool_switch(), help.c_str());
    } else if (spec.repeatable) {
      auto* value = po::value<std::vector<std::string>>()->value_name(spec.value_name)->composing();
      if (spec.required) value->required();
      options->add_options()(spec.name.c_str(), value, help.c_str());
    } else {
      auto* value = po::value<std::string>()->value_name(spec.value_name);
      if (!spec.default_text.empty()) value->default_value(spec.default_text);
      if (spec.required) value->required();
      options->add_options()(spec.name.c_str(), value, help.c_str());
    }
  }
}

OptionValues GivenValues(const po::variables_map& vm, const std::vector<OptionSpec>& specs) {
  OptionValues out;
  for (const OptionSpec& spec : specs) {
    if (!vm.count(spec.name)) continue;
    const po::variable_value& value = vm[spec.name];
    if (spec.is_switch()) {
      if (value.as<bool>()) out[spec.name] = {"1"};
    } else if (spec.repeatable) {
      out[spec.name] = value.as<std::vector<std::string>>();
    } else if (!value.defaulted()) {
      out[spec.name] = {value.as<std::string>()};
    }
  }
  return out;
}

po::options_description CommandOptions(const Command& command) {
  po::options_description own(std::string(command.name) + " options");
  DescribeOptions(command.specs(), &own);
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
      DescribeOptions(other.specs(), &described);
      known[other.name] = OptionNames(described);
      known_anywhere.insert(known[other.name].begin(), known[other.name].end());
    }
    const std::set<std::string> mine = OptionNames(options);
    // --run and --runs-root are two ways to name the run: one given on the command line wins
    // over the other in the file (slurm/finish.sbatch finishes one named run of a nightly config).
    std::set<std::string> overridden;
    if (values.count("run")) overridden.insert("runs-root");
    if (values.count("runs-root")) overridden.insert("run");
    po::parsed_options section_values(&options);
    po::parsed_options top_values(&options);
    for (const ConfigEntry& entry : ReadConfigEntries(file)) {
      const std::string& section = entry.section;
      const std::string& name = entry.name;
      if (name == "config" || name == "help") {
        throw UsageError("--config " + path + ": '" + (section.empty() ? name : section + "." + name) +
                         "' cannot be set in a config file");
      }
      if (overridden.count(name)) continue;
      const po::option& copy = entry.option;
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
  if (!values.count("help")) {
    po::notify(values);
    // Every value checked against its option's range or choices now, before the command takes
    // a lock or creates a folder: a usage error leaves nothing behind.
    const std::vector<OptionSpec> specs = command.specs();
    const OptionValues given = GivenValues(values, specs);
    for (const OptionSpec& spec : specs) {
      const auto it = given.find(spec.name);
      if (it == given.end() || !spec.check || spec.is_switch()) continue;
      for (const std::string& value : it->second) spec.check(value);
    }
  }
  return values;
}

}  // namespace lookbook
