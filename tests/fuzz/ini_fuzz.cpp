// libFuzzer target for the --config INI reader (jobs/config_file.h ReadConfigEntries, what
// jobs/options.cpp runs on every config file): any bytes must read as entries or throw
// boost::program_options' error (a usage error for the user), never crash, and every entry's
// option carries its name. (A line "= 8" gives an entry with an empty name, which
// jobs/options.cpp refuses as an unknown option: found by this target, corpus/ini/empty_key.ini.)
#include <boost/program_options.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "jobs/config_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream file(std::string(reinterpret_cast<const char*>(data), size));
  try {
    for (const auto& entry : lookbook::ReadConfigEntries(file)) {
      if (entry.option.string_key != entry.name) std::abort();
    }
  } catch (const boost::program_options::error&) {
    // a malformed file: a usage error
  }
  return 0;
}
