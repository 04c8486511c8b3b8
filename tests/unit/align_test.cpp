#include "image/align.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "demo/fashion_mnist.h"
#include "demo/render.h"
#include "image/decode.h"

namespace lookbook {
namespace {

// A demo product shot as the dedup stage sees it: JPEG in the catalog, decoded for alignment.
AlignView ViewOf(const BgrImage& shot) {
  const std::vector<std::uint8_t> jpeg = EncodeJpeg(shot, 90);
  DecodeLimits limits;
  limits.min_side = kAlignMinSide;
  const DecodeResult decoded = DecodeImage(std::string(jpeg.begin(), jpeg.end()), limits);
  EXPECT_EQ(decoded.status, ImageStatus::kOk);
  return MakeAlignView(decoded.image);
}

class Align : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { data_ = new FashionMnist(FashionMnist::Load(kFashionMnistDir, FashionSplit::kTest)); }
  static void TearDownTestSuite() { delete data_; }
  static BgrImage Shot(std::size_t item, std::size_t colour) {
    return RenderProductShot(data_->image(item), DemoPalette()[colour], 224, 245);
  }
  static FashionMnist* data_;
};
FashionMnist* Align::data_ = nullptr;

TEST_F(Align, EveryCopyTransformOfAShotAlignsAboveTheRule) {
  for (std::size_t item = 0; item < 12; ++item) {
    const BgrImage shot = Shot(item, item % DemoPalette().size());
    const AlignView original = ViewOf(shot);
    for (int t = 0; t < kCopyTransformCount; ++t) {
      const auto transform = static_cast<CopyTransform>(t);
      const float score = AlignedCorrelation(original, ViewOf(ApplyCopyTransform(shot, transform)));
      EXPECT_GE(score, 0.975f) << "item " << item << ", " << CopyTransformName(transform);
    }
    EXPECT_GT(AlignedCorrelation(original, original), 0.999f);
  }
}

TEST_F(Align, ColourVariantsAndOtherGarmentsOfTheClassDoNot) {
  std::mt19937 rng(3);
  int compared = 0;
  for (std::size_t item = 0; item < 40; ++item) {
    const std::size_t colour = item % DemoPalette().size();
    const AlignView original = ViewOf(Shot(item, colour));
    // The same garment in every other colour: below the rule's lowest threshold (aligned_phash).
    for (std::size_t other = 0; other < DemoPalette().size(); ++other) {
      if (other == colour) continue;
      EXPECT_LT(AlignedCorrelation(original, ViewOf(Shot(item, other))), 0.96f)
          << item << " in " << DemoPalette()[colour].name << " and " << DemoPalette()[other].name;
    }
    // Another garment of the same class, in the same colour.
    for (std::size_t other = item + 1; other < data_->size() && other < item + 200; ++other) {
      if (data_->labels[other] != data_->labels[item]) continue;
      EXPECT_LT(AlignedCorrelation(original, ViewOf(Shot(other, colour))), 0.96f) << item << " vs " << other;
      ++compared;
      break;
    }
  }
  EXPECT_GE(compared, 30);
}

TEST(AlignPlain, ImagesWithoutForegroundScoreMinusOne) {
  RgbImage flat;
  flat.width = flat.height = 100;
  flat.rgb.assign(100 * 100 * 3, 240);
  const AlignView view = MakeAlignView(flat);
  EXPECT_EQ(AlignedCorrelation(view, view), -1.0f);
}

}  // namespace
}  // namespace lookbook
