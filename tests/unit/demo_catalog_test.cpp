#include "demo/demo_catalog.h"

#include <gtest/gtest.h>

#include <set>

#include "catalog/csv.h"
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
