// Fashion-MNIST (Zalando's product images, 10 classes) from Debian's dataset-fashion-mnist:
// gzip'd idx files in /usr/share/datasets/fashion-mnist. 28x28 grey, garment bright on black.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

namespace lookbook {

enum class FashionSplit { kTrain, kTest };

bool ParseFashionSplit(std::string_view text, FashionSplit* split);

inline constexpr int kFashionSide = 28;
inline constexpr int kFashionClasses = 10;
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// The official class names, by label: "T-shirt/top", "Trouser", ... "Ankle boot".
const std::array<const char*, kFashionClasses>& FashionClassNames();

struct FashionMnist {
  std::vector<std::uint8_t> pixels;  // size() x 28 x 28, row-major
  std::vector<std::uint8_t> labels;  // 0..9

  std::size_t size() const { return labels.size(); }
  const std::uint8_t* image(std::size_t i) const { return pixels.data() + i * kFashionSide * kFashionSide; }

  // Throws InputError when the files are missing or not idx files of the expected shape.
  static FashionMnist Load(const std::filesystem::path& folder, FashionSplit split);
};

}  // namespace lookbook
