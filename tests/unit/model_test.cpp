#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>

#include "model/bundle.h"
#include "model/encoders.h"
#include "model/text_tokenizer.h"
#include "tests/support/test_bundles.h"
#include "tests/unit/test_support.h"
#include "util/error.h"

namespace lookbook {
namespace {

std::string ErrorOf(const std::function<void()>& action) {
  try {
    action();
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

float Dot(const float* a, const float* b, int n) {
  float sum = 0;
  for (int i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

class ModelTest : public ::testing::Test {
 protected:
  void SetUp() override { lookbook::testing::WriteTestClipBundle(bundle_dir()); }
  std::filesystem::path bundle_dir() const { return dir_.path() / "clip"; }
  lookbook::testing::ScopedTempDir dir_;
};

TEST_F(ModelTest, LoadsABundleAndVerifiesEveryChecksum) {
  const ModelBundle bundle = LoadBundle(bundle_dir());
  EXPECT_EQ(bundle.kind, BundleKind::kClip);
  EXPECT_EQ(bundle.embedding_dim, 16);
  EXPECT_EQ(bundle.preprocess.size, 32);
  EXPECT_EQ(bundle.files.size(), 3u);
  EXPECT_EQ(bundle.sha256, Sha256File(bundle_dir() / "bundle.json"));
  EXPECT_EQ(bundle.tokenizer, TokenizerType::kWord);
}

TEST_F(ModelTest, TamperedOrMissingFilesAreNamed) {
  {
    std::ofstream append(bundle_dir() / "image_encoder.pt", std::ios::app);
    append << "x";
  }
  std::string error = ErrorOf([&] { LoadBundle(bundle_dir()); });
  EXPECT_NE(error.find("image_encoder.pt: sha256"), std::string::npos) << error;
  std::filesystem::remove(bundle_dir() / "image_encoder.pt");
  error = ErrorOf([&] { LoadBundle(bundle_dir()); });
  EXPECT_NE(error.find("image_encoder.pt is missing"), std::string::npos) << error;
  lookbook::testing::WriteFile(bundle_dir() / "bundle.json", "{not json");
  error = ErrorOf([&] { LoadBundle(bundle_dir()); });
  EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
  error = ErrorOf([&] { LoadBundle(dir_.path() / "nothing"); });
  EXPECT_NE(error.find("no readable bundle.json"), std::string::npos) << error;
}

TEST_F(ModelTest, ImageEncoderGivesUnitRowsAndSeesColour) {
  const ModelBundle bundle = LoadBundle(bundle_dir());
  const ImageEncoder encoder = ImageEncoder::Load(bundle, {});
  const int size = 32, plane = size * size;
  std::vector<float> pixels(static_cast<std::size_t>(3) * 3 * plane);
  for (int i = 0; i < plane; ++i) {
    pixels[static_cast<std::size_t>(i)] = 1.0f;                       // image 0: red
    pixels[static_cast<std::size_t>(3 * plane + i)] = 0.95f;          // image 1: nearly the same red
    pixels[static_cast<std::size_t>(6 * plane + 2 * plane + i)] = 1;  // image 2: blue
  }
  const std::vector<float> rows = encoder.Encode(pixels.data(), 3);
  ASSERT_EQ(rows.size(), 3u * 16);
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(Dot(&rows[r * 16], &rows[r * 16], 16), 1.0f, 1e-5);
  EXPECT_GT(Dot(&rows[0], &rows[16], 16), 0.99f);
  EXPECT_LT(Dot(&rows[0], &rows[32], 16), 0.9f);
  EXPECT_EQ(encoder.Encode(pixels.data(), 3), rows) << "deterministic";
}

TEST_F(ModelTest, ReducedPrecisionStaysCloseToFloat32) {
  const ModelBundle bundle = LoadBundle(bundle_dir());
  InferenceOptions bf16;
  bf16.precision = Precision::kBFloat16;
  const ImageEncoder full = ImageEncoder::Load(bundle, {});
  const ImageEncoder reduced = ImageEncoder::Load(bundle, bf16);
  std::vector<float> pixels(3 * 32 * 32);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = std::sin(0.01f * static_cast<float>(i));
  const auto a = full.Encode(pixels.data(), 1);
  const auto b = reduced.Encode(pixels.data(), 1);
  // The documented bound (docs/performance.md#results: mean cosine >= 0.999), and bf16 really
  // ran: the result is not bit-identical to float32.
  constexpr float kBound = 0.999f;
  EXPECT_GE(Dot(a.data(), b.data(), 16), kBound);
  EXPECT_NE(a, b);
  // The bound can fail: the float32 rows kept to 1 mantissa bit (what a 4-bit float, e2m1,
  // keeps; bf16 keeps 7) fall below it. (3 bits, e4m3's, measured 0.99976 here: still within.)
  std::vector<float> coarse = a;
  for (float& value : coarse) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &value, sizeof bits);
    bits &= ~((1u << (23 - 1)) - 1);
    std::memcpy(&value, &bits, sizeof bits);
  }
  const float norm = std::sqrt(Dot(coarse.data(), coarse.data(), 16));
  for (float& value : coarse) value /= norm;
  EXPECT_LT(Dot(a.data(), coarse.data(), 16), kBound) << "a planted loss of precision fails the gate";
}

TEST_F(ModelTest, WrongOutputShapeIsCaughtByTheDryRun) {
  lookbook::testing::WriteTestClipBundle(dir_.path() / "liar", {8, 32, 16, 1});
  const ModelBundle bundle = LoadBundle(dir_.path() / "liar");
  const std::string error = ErrorOf([&] { ImageEncoder::Load(bundle, {}); });
  EXPECT_NE(error.find("image_encoder.pt: output is [2, 8]"), std::string::npos) << error;
  EXPECT_NE(error.find("expected [2, 16]"), std::string::npos) << error;
}

TEST_F(ModelTest, TextEncoderEmbedsCaptions) {
  const TextEncoder encoder = TextEncoder::Load(LoadBundle(bundle_dir()), {});
  const auto rows = encoder.Encode({"a photo of a red dress", "A PHOTO OF A RED DRESS!", "blue coat"});
  ASSERT_EQ(rows.size(), 3u * 16);
  EXPECT_NEAR(Dot(&rows[0], &rows[16], 16), 1.0f, 1e-5) << "case and punctuation do not matter";
  EXPECT_LT(Dot(&rows[0], &rows[32], 16), 0.99f);
}

TEST_F(ModelTest, UnavailableDeviceOrPrecisionIsAClearError) {
  const ModelBundle bundle = LoadBundle(bundle_dir());
  InferenceOptions options;
  ASSERT_TRUE(ParseDevice("cuda:0", &options.device));
  if (CudaDeviceCount() == 0) {
    EXPECT_NE(ErrorOf([&] { ImageEncoder::Load(bundle, options); }).find("no CUDA"), std::string::npos);
  }
  options = {};
  options.precision = Precision::kFloat16;
  EXPECT_NE(ErrorOf([&] { ImageEncoder::Load(bundle, options); }).find("fp16 needs a CUDA"), std::string::npos);
  Device device;
  EXPECT_FALSE(ParseDevice("gpu", &device));
  EXPECT_TRUE(ParseDevice("cuda:3", &device));
  EXPECT_EQ(device.index, 3);
}

TEST(WordTokenizer, MapsWordsAndPads) {
  const WordTokenizer tokenizer({"<pad>", "<start>", "<end>", "<unk>", "red", "dress"});
  EXPECT_EQ(tokenizer.EncodeForModel("Red dress, RED hat", 8), (std::vector<std::int32_t>{1, 4, 5, 4, 3, 2, 0, 0}));
  EXPECT_EQ(tokenizer.EncodeForModel("red red red red", 4), (std::vector<std::int32_t>{1, 4, 4, 2}));
}

}  // namespace
}  // namespace lookbook
