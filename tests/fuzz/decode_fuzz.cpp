// libFuzzer target for the image decoder embed uses (image/decode.h DecodeImage: JPEG through
// TurboJPEG with warnings as errors, PNG and WebP through OpenCV, behind the size and pixel
// limits): any bytes must give an image or a status, never a crash, a hang or a sanitizer
// report, and an ok image must have the shape it says, within the limits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "image/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lookbook;
  DecodeLimits limits;
  limits.max_file_bytes = 1 << 20;
  limits.max_pixels = 4'000'000;  // keeps each run fast; the limit itself is what is tested
  limits.min_side = size % 3 == 0 ? 64 : 0;
  const DecodeResult result = DecodeImage(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (result.status == ImageStatus::kOk) {
    const RgbImage& image = result.image;
    if (image.width <= 0 || image.height <= 0) std::abort();
    if (image.rgb.size() != static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height) * 3) {
      std::abort();
    }
    if (static_cast<std::uint64_t>(image.width) * static_cast<std::uint64_t>(image.height) > limits.max_pixels) {
      std::abort();
    }
  }
  JpegExifOrientation(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
