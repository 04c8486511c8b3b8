#include "demo/fashion_mnist.h"

#include <zlib.h>

#include <memory>
#include <string>

#include "util/error.h"

namespace lookbook {
namespace {

std::vector<std::uint8_t> ReadGzip(const std::filesystem::path& path) {
  std::unique_ptr<gzFile_s, decltype(&gzclose)> file(gzopen(path.c_str(), "rb"), &gzclose);
  if (!file) {
    throw InputError("cannot open " + path.string() + " (install Debian's dataset-fashion-mnist)");
  }
  std::vector<std::uint8_t> bytes;
  std::uint8_t buffer[1 << 16];
  for (;;) {
    const int n = gzread(file.get(), buffer, sizeof buffer);
    if (n < 0) throw InputError("cannot decompress " + path.string());
    if (n == 0) break;
    bytes.insert(bytes.end(), buffer, buffer + n);
  }
  return bytes;
}

std::uint32_t BigEndian32(const std::vector<std::uint8_t>& bytes, std::size_t offset) {
  return (std::uint32_t{bytes[offset]} << 24) | (std::uint32_t{bytes[offset + 1]} << 16) |
         (std::uint32_t{bytes[offset + 2]} << 8) | std::uint32_t{bytes[offset + 3]};
}

}  // namespace

bool ParseFashionSplit(std::string_view text, FashionSplit* split) {
  if (text == "train")
    *split = FashionSplit::kTrain;
  else if (text == "test")
    *split = FashionSplit::kTest;
  else
    return false;
  return true;
}

const std::array<const char*, kFashionClasses>& FashionClassNames() {
  static const std::array<const char*, kFashionClasses> kNames = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  return kNames;
}

FashionMnist FashionMnist::Load(const std::filesystem::path& folder, FashionSplit split) {
  const std::string prefix = split == FashionSplit::kTrain ? "train" : "t10k";
  const auto images_path = folder / (prefix + "-images-idx3-ubyte.gz");
  const auto labels_path = folder / (prefix + "-labels-idx1-ubyte.gz");
  const std::vector<std::uint8_t> images = ReadGzip(images_path);
  const std::vector<std::uint8_t> labels = ReadGzip(labels_path);
  if (images.size() < 16 || BigEndian32(images, 0) != 2051 || BigEndian32(images, 8) != kFashionSide ||
      BigEndian32(images, 12) != kFashionSide) {
    throw InputError(images_path.string() + " is not a 28x28 idx3 image file");
  }
  if (labels.size() < 8 || BigEndian32(labels, 0) != 2049) {
    throw InputError(labels_path.string() + " is not an idx1 label file");
  }
  const std::size_t count = BigEndian32(images, 4);
  if (BigEndian32(labels, 4) != count || labels.size() != 8 + count ||
      images.size() != 16 + count * kFashionSide * kFashionSide) {
    throw InputError(images_path.string() + " and its labels do not match in size");
  }
  FashionMnist data;
  data.pixels.assign(images.begin() + 16, images.end());
  data.labels.assign(labels.begin() + 8, labels.end());
  for (const auto label : data.labels) {
    if (label >= kFashionClasses) throw InputError(labels_path.string() + " has a label above 9");
  }
  return data;
}

}  // namespace lookbook
