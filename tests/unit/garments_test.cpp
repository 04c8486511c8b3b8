#include "garments/garments.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace lookbook {
namespace {

// A 6-class demo-style segmenter: background, top, bottom, dress, shoes, bag.
const std::vector<std::string> kClasses = {"background", "top", "bottom", "dress", "shoes", "bag"};
const std::map<std::string, std::string> kDefaults = {
    {"top", "top"}, {"bottom", "bottom"}, {"dress", "dress"}, {"shoes", "shoes"}, {"bag", "bag"}};

PreprocessSpec Spec(int size, ResizePolicy policy) {
  PreprocessSpec spec;
  spec.size = size;
  spec.resize = policy;
  return spec;
}

void Fill(std::vector<std::uint8_t>* map, int side, int x0, int y0, int x1, int y1, std::uint8_t value) {
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) (*map)[static_cast<std::size_t>(y * side + x)] = value;
}

TEST(ModelFrame, MatchesEachResizePolicy) {
  // 200 x 100 into 64: pad puts the image at scale 0.32, 16 rows of letterbox above.
  auto pad = ModelFrame(200, 100, Spec(64, ResizePolicy::kPadToSquare));
  EXPECT_DOUBLE_EQ(pad.scale_x, 64.0 / 200);
  EXPECT_DOUBLE_EQ(pad.scale_y, 32.0 / 100);
  EXPECT_DOUBLE_EQ(pad.offset_x, 0);
  EXPECT_DOUBLE_EQ(pad.offset_y, 16);
  // Centre crop: short side to 64, 128 wide, 32 columns cut on the left.
  auto crop = ModelFrame(200, 100, Spec(64, ResizePolicy::kShortSideCenterCrop));
  EXPECT_DOUBLE_EQ(crop.scale_x, 128.0 / 200);
  EXPECT_DOUBLE_EQ(crop.offset_x, -32);
  EXPECT_DOUBLE_EQ(crop.offset_y, 0);
  auto stretch = ModelFrame(200, 100, Spec(64, ResizePolicy::kStretch));
  EXPECT_DOUBLE_EQ(stretch.scale_y, 0.64);
}

TEST(SlotMap, BundleDefaultsWithOverrides) {
  const SlotMap plain = MakeSlotMap(kClasses, kDefaults, "");
  EXPECT_EQ(plain.slot_of_class, (std::vector<int>{-1, 0, 1, 2, 4, 5}));
  const SlotMap changed = MakeSlotMap(kClasses, kDefaults, " top = outerwear , bag=none");
  EXPECT_EQ(changed.slot_of_class, (std::vector<int>{-1, 3, 1, 2, 4, -1}));
  EXPECT_THROW(MakeSlotMap(kClasses, kDefaults, "hat=accessory"), InputError);
  EXPECT_THROW(MakeSlotMap(kClasses, kDefaults, "top=shirt"), InputError);
  EXPECT_THROW(MakeSlotMap(kClasses, kDefaults, "top"), InputError);
}

TEST(ExtractGarments, ComponentsBoxesAreasInSourcePixels) {
  const int side = 64;
  std::vector<std::uint8_t> classes(side * side, 0);
  Fill(&classes, side, 4, 4, 24, 30, 1);    // a top
  Fill(&classes, side, 40, 40, 60, 60, 4);  // shoes, left
  Fill(&classes, side, 30, 50, 36, 58, 4);  // shoes, a second component
  Fill(&classes, side, 62, 0, 63, 40, 5);   // a one-pixel-wide bag line: cleaned up
  std::vector<float> confidence(side * side, 0.5f);
  for (int y = 4; y < 30; ++y)
    for (int x = 4; x < 24; ++x) confidence[static_cast<std::size_t>(y * side + x)] = 0.9f;
  GarmentOptions options;
  options.mask_side = 32;
  options.min_score = 0.4;
  // The decoder shrank a 256 x 256 source to 128 x 128; the segmenter ran at 64 (stretch).
  const GarmentSet set = ExtractGarments(classes.data(), confidence.data(), Spec(side, ResizePolicy::kStretch), 128,
                                         128, 256, 256, MakeSlotMap(kClasses, kDefaults, ""), options);
  ASSERT_EQ(set.garments.size(), 3u);
  EXPECT_EQ(set.garments[0].slot, Slot::kTop);
  EXPECT_EQ(set.garments[0].box, (std::array<std::int32_t, 4>{16, 16, 80, 104}));
  EXPECT_EQ(set.garments[0].area, (20 * 26 - 4) * 16);  // the opening rounds the corners
  EXPECT_FLOAT_EQ(set.garments[0].score, 0.9f);
  // Shoes in slot order, then top-to-bottom: (40, 40) before (30, 50).
  EXPECT_EQ(set.garments[1].slot, Slot::kShoes);
  EXPECT_EQ(set.garments[1].box[0], 160);
  EXPECT_EQ(set.garments[2].box[0], 120);
  EXPECT_EQ(DistinctSlots(set), 2);
  // The stored 32 x 32 map: sample (u, v) is model pixel (2u + 1, 2v + 1).
  ASSERT_EQ(set.mask.size(), 32u * 32u);
  EXPECT_EQ(set.mask[static_cast<std::size_t>(5 * 32 + 5)], 1);
  EXPECT_EQ(set.mask[static_cast<std::size_t>(25 * 32 + 25)], 2);
  EXPECT_EQ(set.mask[static_cast<std::size_t>(27 * 32 + 16)], 3);
  EXPECT_EQ(set.mask[0], 0);
  // The shoes' confidence (0.5) is below a 0.6 minimum: only the top stays.
  options.min_score = 0.6;
  const GarmentSet confident = ExtractGarments(classes.data(), confidence.data(), Spec(side, ResizePolicy::kStretch),
                                               128, 128, 256, 256, MakeSlotMap(kClasses, kDefaults, ""), options);
  ASSERT_EQ(confident.garments.size(), 1u);
  EXPECT_EQ(confident.garments[0].slot, Slot::kTop);
}

TEST(ExtractGarments, MinimumAreaAndLetterbox) {
  const int side = 32;
  std::vector<std::uint8_t> classes(side * side, 1);  // "top" everywhere, letterbox included
  GarmentOptions options;
  options.cleanup_radius = 0;
  // A 100 x 50 image padded to square: rows 0..7 and 24..31 are letterbox.
  const GarmentSet set = ExtractGarments(classes.data(), nullptr, Spec(side, ResizePolicy::kPadToSquare), 100, 50, 100,
                                         50, MakeSlotMap(kClasses, kDefaults, ""), options);
  ASSERT_EQ(set.garments.size(), 1u);
  EXPECT_EQ(set.garments[0].box, (std::array<std::int32_t, 4>{0, 0, 100, 50}));
  EXPECT_EQ(set.garments[0].area, 5000);
  options.min_area = 0.9;
  std::vector<std::uint8_t> half(side * side, 0);
  Fill(&half, side, 0, 8, 16, 24, 1);
  EXPECT_TRUE(ExtractGarments(half.data(), nullptr, Spec(side, ResizePolicy::kPadToSquare), 100, 50, 100, 50,
                              MakeSlotMap(kClasses, kDefaults, ""), options)
                  .garments.empty());
}

TEST(MakeGarmentCrop, MaskedPaddedToSquare) {
  const int side = 16;
  std::vector<std::uint8_t> classes(side * side, 0);
  Fill(&classes, side, 2, 4, 10, 8, 2);  // a bottom, 8 x 4 model pixels
  RgbImage image;
  image.width = image.height = 32;  // 2 image pixels per model pixel
  image.rgb.assign(32 * 32 * 3, 10);
  GarmentOptions options;
  options.cleanup_radius = 0;
  options.crop_margin = 0.25;
  const GarmentSet set = ExtractGarments(classes.data(), nullptr, Spec(side, ResizePolicy::kStretch), 32, 32, 32, 32,
                                         MakeSlotMap(kClasses, kDefaults, ""), options);
  ASSERT_EQ(set.garments.size(), 1u);
  const RgbImage crop = MakeGarmentCrop(image, set, 0, options);
  EXPECT_EQ(crop.width, 24);  // 16 wide, grown by 2 x 25 %
  EXPECT_EQ(crop.height, 24);
  auto at = [&](int x, int y) { return crop.rgb[static_cast<std::size_t>((y * 24 + x) * 3)]; };
  EXPECT_EQ(at(12, 12), 10);  // garment
  EXPECT_EQ(at(0, 0), 245);   // padding
  EXPECT_EQ(at(12, 4), 245);  // above the 8-pixel-high box
}

}  // namespace
}  // namespace lookbook

namespace lookbook {
namespace {

TEST(IsOutfitPhoto, TwoSlotsEachLargeAndSureEnough) {
  GarmentOptions options;  // outfit_min_area 0.03, outfit_min_score 0.9
  const std::int64_t pixels = 1000 * 1000;
  auto garment = [](Slot slot, std::int64_t area, float score) {
    Garment g;
    g.slot = slot;
    g.area = area;
    g.score = score;
    return g;
  };
  GarmentSet set;
  set.garments = {garment(Slot::kTop, 200'000, 0.95f), garment(Slot::kBottom, 150'000, 0.92f)};
  EXPECT_TRUE(IsOutfitPhoto(set, pixels, options));
  // A lone shot's spurious second slot: small, or unsure.
  set.garments[1] = garment(Slot::kShoes, 29'999, 0.95f);
  EXPECT_FALSE(IsOutfitPhoto(set, pixels, options));
  set.garments[1] = garment(Slot::kShoes, 30'000, 0.95f);
  EXPECT_TRUE(IsOutfitPhoto(set, pixels, options));
  set.garments[1] = garment(Slot::kShoes, 100'000, 0.89f);
  EXPECT_FALSE(IsOutfitPhoto(set, pixels, options));
  // Two garments of one slot are one slot.
  set.garments = {garment(Slot::kShoes, 100'000, 0.95f), garment(Slot::kShoes, 100'000, 0.95f)};
  EXPECT_FALSE(IsOutfitPhoto(set, pixels, options));
  EXPECT_EQ(DistinctSlots(set), 1);
}

}  // namespace
}  // namespace lookbook
