// libFuzzer target for the manifest reader (util/manifest.h ReadManifestFile), which reads
// every stage's manifest.json and every embed shard record from a run folder that anyone who
// can write the folder controls: any bytes must read as a manifest or as "no manifest" with a
// reason, never crash; a manifest that reads must write and read back to the same manifest.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "util/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lookbook;
  static const std::string path = "/tmp/lookbook-manifest-fuzz-" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  std::string why;
  const auto manifest = ReadManifestFile(path, &why);
  if (!manifest) {
    if (why.empty()) std::abort();  // refused without saying why
    return 0;
  }
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << ManifestToJson(*manifest);
  }
  std::string again_why;
  const auto again = ReadManifestFile(path, &again_why);
  if (!again || ManifestToJson(*again) != ManifestToJson(*manifest)) std::abort();
  return 0;
}
