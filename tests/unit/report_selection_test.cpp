// What the report shows of a section larger than --max-shown (report/selection.h).
#include "report/selection.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>

namespace lookbook {
namespace {

std::string Name(std::size_t i) { return "P" + std::to_string(i) + "/image_1"; }

TEST(ShownSample, EverythingWhenItFits) {
  EXPECT_EQ(ShownSample(3, 1, 3, 7, Name), (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(ShownSample(0, 0, 5, 7, Name), (std::vector<std::size_t>{}));
}

TEST(ShownSample, TheHeadThenASeededSampleInOrder) {
  const auto shown = ShownSample(1000, 10, 50, 1, Name);
  ASSERT_EQ(shown.size(), 50u);
  for (std::size_t i = 0; i < 10; ++i) EXPECT_EQ(shown[i], i) << "the head comes first, whole";
  for (std::size_t i = 1; i < shown.size(); ++i) EXPECT_LT(shown[i - 1], shown[i]) << "order kept, no repeats";
  // A sample, not the next 40: it reaches far into the rest.
  EXPECT_GT(shown.back(), 500u);
  EXPECT_EQ(ShownSample(1000, 10, 50, 1, Name), shown) << "the same seed shows the same items";
  const auto other = ShownSample(1000, 10, 50, 2, Name);
  EXPECT_NE(other, shown) << "another seed, another sample";
  EXPECT_EQ(std::vector<std::size_t>(other.begin(), other.begin() + 10),
            std::vector<std::size_t>(shown.begin(), shown.begin() + 10));
  // A head larger than the limit is cut to it.
  EXPECT_EQ(ShownSample(100, 80, 5, 1, Name), (std::vector<std::size_t>{0, 1, 2, 3, 4}));
}

TEST(ShownSample, ChosenByNameSoUnrelatedItemsDoNotMoveIt) {
  // Items chosen from a section stay chosen when other items join it: the draw is by name.
  const auto before = ShownSample(400, 0, 40, 3, Name);
  auto shifted = [](std::size_t i) { return i < 100 ? "new" + std::to_string(i) : Name(i - 100); };
  const auto after = ShownSample(500, 0, 40, 3, shifted);
  std::set<std::string> chosen_before, chosen_after;
  for (const std::size_t i : before) chosen_before.insert(Name(i));
  for (const std::size_t i : after) chosen_after.insert(shifted(i));
  std::size_t kept = 0;
  for (const auto& name : chosen_after) kept += chosen_before.count(name);
  // Each old item that was shown is still shown unless a new one took its place: at least
  // the share of old items in the draw.
  EXPECT_GE(kept, 20u);
}

TEST(LargestFirst, SizeThenOrder) {
  EXPECT_EQ(LargestFirst({2, 5, 2, 7, 5}), (std::vector<std::size_t>{3, 1, 4, 0, 2}));
  EXPECT_EQ(LargestFirst({}), (std::vector<std::size_t>{}));
}

TEST(NearestFirst, BothSidesOfTheThresholdAndNoUnscoredPairs) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(NearestFirst({0.5f, 0.93f, nan, 0.89f, 0.99f, 0.9f}, 0.9f), (std::vector<std::size_t>{5, 3, 1, 4, 0}));
}

TEST(NearestFirst, ALimitGivesTheHeadOfTheWholeOrderTiesIncluded) {
  // Signals on a coarse grid: many equal distances, on both sides of the threshold, and NaNs.
  std::vector<float> signals;
  std::uint32_t state = 7;
  for (int i = 0; i < 500; ++i) {
    state = state * 1664525u + 1013904223u;
    signals.push_back(state % 17 == 0 ? std::numeric_limits<float>::quiet_NaN()
                                      : 0.85f + 0.01f * static_cast<float>((state >> 8) % 16));
  }
  const std::vector<std::size_t> all = NearestFirst(signals, 0.92f);
  // A stable sort by distance: equal distances in index order.
  for (std::size_t i = 1; i < all.size(); ++i) {
    const float before = std::fabs(signals[all[i - 1]] - 0.92f), here = std::fabs(signals[all[i]] - 0.92f);
    ASSERT_TRUE(before < here || (before == here && all[i - 1] < all[i])) << i;
  }
  for (const std::size_t limit : {0, 1, 7, 100, 300, 1000}) {
    const std::vector<std::size_t> head = NearestFirst(signals, 0.92f, limit);
    ASSERT_EQ(head.size(), std::min(limit, all.size()));
    EXPECT_TRUE(std::equal(head.begin(), head.end(), all.begin())) << limit;
  }
}

TEST(ThumbName, ByContentAndSide) {
  EXPECT_EQ(ThumbName(0x0123456789abcdefull, 96), "thumbs/0123456789abcdef-96.jpg");
  EXPECT_NE(ThumbName(1, 96), ThumbName(1, 128));
  EXPECT_NE(ThumbName(1, 96), ThumbName(2, 96));
}

}  // namespace
}  // namespace lookbook
