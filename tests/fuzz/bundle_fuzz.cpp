// libFuzzer target for bundle.json (model/bundle.h LoadBundle): any bytes as a bundle's
// bundle.json must load (then its files are checked) or be refused with an InputError that says
// why, never crash. The bundle's files are absent here, so a bundle.json that parses reaches the
// per-file checks and is refused there.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/bundle.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path dir = "/tmp/lookbook-bundle-fuzz-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir / "bundle.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    lookbook::LoadBundle(dir);
  } catch (const lookbook::InputError& error) {
    if (std::string(error.what()).empty()) std::abort();  // refused without saying why
  }
  return 0;
}
