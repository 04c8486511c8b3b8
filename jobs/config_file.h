// The INI file of --config, read into entries: boost::program_options' config parser (any key,
// registered or not), each key split into its [section] and name. jobs/options.cpp checks the
// names against the option tables; tests/fuzz/ini_fuzz.cpp feeds it arbitrary bytes.
#pragma once

#include <boost/program_options.hpp>
#include <istream>
#include <string>
#include <vector>

namespace lookbook {

struct ConfigEntry {
  std::string section;  // "" before any [section]
  std::string name;
  boost::program_options::option option;  // as parsed, string_key set to `name`
};

// Throws boost::program_options::error on a malformed line (jobs/options.cpp makes it a usage
// error).
inline std::vector<ConfigEntry> ReadConfigEntries(std::istream& file) {
  namespace po = boost::program_options;
  const po::options_description nothing;
  const po::parsed_options raw = po::parse_config_file(file, nothing, /*allow_unregistered=*/true);
  std::vector<ConfigEntry> out;
  for (const auto& option : raw.options) {
    const std::string& key = option.string_key;
    const std::size_t dot = key.find('.');
    ConfigEntry entry;
    entry.section = dot == std::string::npos ? "" : key.substr(0, dot);
    entry.name = dot == std::string::npos ? key : key.substr(dot + 1);
    entry.option = option;
    entry.option.string_key = entry.name;
    entry.option.unregistered = false;
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace lookbook
