#include "demo/demo_catalog.h"

#include <gtest/gtest.h>

#include <set>

#include "catalog/csv.h"
#include "demo/render.h"
#include "tests/unit/test_support.h"
#include "util/error.h"
#include "util/hash.h"

namespace lookbook {
namespace {

// Every file under `folder` with its checksum.
std::map<std::string, std::string> Fingerprint(const std::filesystem::path& folder) {
  std::map<std::string, std::string> sums;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(folder)) {
    if (entry.is_regular_file()) {
      sums[std::filesystem::relative(entry.path(), folder).string()] = ChecksumFile(entry.path()).checksum;
    }
  }
  return sums;
}

TEST(DemoCatalog, WritesCatalogImagesAndTruth) {
  testing::ScopedTempDir dir;
  const DemoCatalogSummary summary = WriteDemoCatalog({dir.path(), 60, 3, FashionSplit::kTest});
  EXPECT_EQ(summary.products, 60);
  EXPECT_EQ(summary.colour_variants, 6);
  EXPECT_GE(summary.duplicate_pairs, 6);
  EXPECT_GE(summary.outfits, 1);

  const auto catalog =
      ReadCsvFile(dir.path() / "catalog.csv", "product_id,image_1,image_2,image_3,category,in_stock,title");
  ASSERT_EQ(catalog.size(), 60u);
  const std::set<std::string> classes(FashionClassNames().begin(), FashionClassNames().end());
  int images = 0;
  std::set<std::string> ids;
  for (std::size_t i = 0; i < catalog.size(); ++i) {
    ids.insert(catalog[i][0]);
    EXPECT_TRUE(classes.count(catalog[i][4])) << catalog[i][4];
    for (int column = 1; column <= 3; ++column) {
      if (catalog[i][column].empty()) continue;
      ++images;
      EXPECT_TRUE(std::filesystem::is_regular_file(dir.path() / "images" / catalog[i][column]));
    }
  }
  EXPECT_EQ(ids.size(), 60u);
  EXPECT_EQ(images, summary.images);

  const auto duplicates = ReadCsvFile(dir.path() / "truth" / "duplicates.csv", "image_a,image_b,kind,transform");
  EXPECT_EQ(static_cast<int>(duplicates.size()), summary.duplicate_pairs);
  for (std::size_t i = 0; i < duplicates.size(); ++i) {
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "images" / duplicates[i][0]));
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "images" / duplicates[i][1]));
  }
  const auto outfits = ReadCsvFile(dir.path() / "truth" / "outfits.csv", "outfit,product_ids");
  ASSERT_EQ(static_cast<int>(outfits.size()), summary.outfits);
  const std::string label_map = outfits[0][0].substr(outfits[0][0].find('/') + 1);
  EXPECT_TRUE(
      std::filesystem::exists(dir.path() / "truth" / "labels" / (label_map.substr(0, label_map.size() - 4) + ".png")));
}

TEST(DemoCatalog, SameOptionsGiveTheSameBytes) {
  testing::ScopedTempDir a, b, c;
  WriteDemoCatalog({a.path(), 30, 11, FashionSplit::kTest});
  WriteDemoCatalog({b.path(), 30, 11, FashionSplit::kTest});
  WriteDemoCatalog({c.path(), 30, 12, FashionSplit::kTest});
  EXPECT_EQ(Fingerprint(a.path()), Fingerprint(b.path()));
  EXPECT_NE(Fingerprint(a.path()), Fingerprint(c.path()));
}

TEST(DemoCatalog, RandomOutfitsKeepTheProductsAndChangeThePhotos) {
  testing::ScopedTempDir flat, random;
  WriteDemoCatalog({flat.path(), 60, 3, FashionSplit::kTest});
  DemoCatalogOptions options{random.path(), 60, 3, FashionSplit::kTest};
  options.outfits = DemoOutfits::kRandom;
  WriteDemoCatalog(options);
  auto a = Fingerprint(flat.path()), b = Fingerprint(random.path());
  EXPECT_EQ(a.at("catalog.csv"), b.at("catalog.csv"));
  EXPECT_EQ(a.at("truth/outfits.csv"), b.at("truth/outfits.csv"));
  EXPECT_EQ(a.at("truth/products.csv"), b.at("truth/products.csv"));
  int outfit_photos = 0;
  for (const auto& [file, sum] : a) {
    const bool photo = file.rfind("images/outfits/", 0) == 0;
    if (!photo && file.rfind("truth/labels/", 0) != 0) {
      EXPECT_EQ(sum, b.at(file)) << file;
      continue;
    }
    outfit_photos += photo ? 1 : 0;
    EXPECT_NE(sum, b.at(file)) << file;
  }
  EXPECT_GE(outfit_photos, 1);
}

// The label map has the photo's size, every garment is visible, the frames vary, and a seed
// gives the same photo.
TEST(RandomOutfit, LabelsEveryGarmentOnVariedFrames) {
  const FashionMnist data = FashionMnist::Load(kFashionMnistDir, FashionSplit::kTest);
  std::map<DemoSlot, std::size_t> garment_of;
  for (std::size_t i = 0; i < data.size() && garment_of.size() < 5; ++i) {
    garment_of.emplace(SlotOfFashionClass(data.labels[i]), i);
  }
  ASSERT_EQ(garment_of.size(), 5u);
  const auto& palette = DemoPalette();
  std::set<std::pair<int, int>> frames;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    std::vector<RandomOutfitGarment> garments;
    for (const DemoSlot slot : {DemoSlot::kTop, DemoSlot::kBottom, DemoSlot::kShoes, DemoSlot::kBag}) {
      garments.push_back(
          {data.image(garment_of.at(slot)), palette[(seed + static_cast<int>(slot)) % palette.size()], slot});
    }
    const OutfitPhoto photo = RenderRandomOutfit(garments, seed);
    ASSERT_EQ(photo.photo.bgr.size(), static_cast<std::size_t>(photo.photo.width) * photo.photo.height * 3);
    ASSERT_EQ(photo.labels.size(), static_cast<std::size_t>(photo.photo.width) * photo.photo.height);
    const int short_side = std::min(photo.photo.width, photo.photo.height);
    const int long_side = std::max(photo.photo.width, photo.photo.height);
    EXPECT_GE(short_side, 320);
    EXPECT_LE(short_side, 640);
    EXPECT_LE(long_side, short_side * 1.7);
    frames.emplace(photo.photo.width, photo.photo.height);
    std::map<int, std::size_t> pixels;
    for (const std::uint8_t label : photo.labels) ++pixels[label];
    for (const auto& garment : garments) {
      // At most a quarter of a garment's box is covered by a later one.
      EXPECT_GT(pixels[static_cast<int>(garment.slot)], photo.labels.size() / 400) << "seed " << seed;
    }
    if (seed == 1) {
      const OutfitPhoto again = RenderRandomOutfit(garments, seed);
      EXPECT_EQ(again.photo.bgr, photo.photo.bgr);
      EXPECT_EQ(again.labels, photo.labels);
    }
  }
  EXPECT_GE(frames.size(), 30u);
}

TEST(DemoCatalog, MissingDatasetIsAnInputError) {
  testing::ScopedTempDir dir;
  DemoCatalogOptions options{dir.path(), 20, 1, FashionSplit::kTest};
  options.fashion_mnist = dir.path() / "nothing-here";
  EXPECT_THROW(WriteDemoCatalog(options), InputError);
}

TEST(FashionMnist, LoadsBothSplits) {
  const FashionMnist test = FashionMnist::Load(kFashionMnistDir, FashionSplit::kTest);
  EXPECT_EQ(test.size(), 10000u);
  EXPECT_EQ(test.pixels.size(), 10000u * 28 * 28);
  const FashionMnist train = FashionMnist::Load(kFashionMnistDir, FashionSplit::kTrain);
  EXPECT_EQ(train.size(), 60000u);
}

}  // namespace
}  // namespace lookbook
