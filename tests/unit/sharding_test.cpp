#include "catalog/sharding.h"

#include <gtest/gtest.h>

#include <vector>

namespace lookbook {
namespace {

TEST(ShardOf, IsStableAcrossBuildsAndRuns) {
  // Golden values: xxh64(id, seed 0) mod N is fixed by the xxHash specification. If this test
  // fails, every product would move shard between two nightly runs.
  // (Cross-checked with Python's xxhash: xxh64_intdigest(b"P000001", 0) % 16 == 0.)
  EXPECT_EQ(ShardOf("P000001", 16), 0);
  EXPECT_EQ(ShardOf("P000002", 16), 13);
  EXPECT_EQ(ShardOf("5767521712", 64), 2);
  EXPECT_EQ(ShardOf("", 7), 6);
}

TEST(ShardOf, DependsOnlyOnIdAndCount) {
  EXPECT_EQ(ShardOf("abc", 10), ShardOf(std::string("abc"), 10));
  for (int n = 1; n < 50; ++n) EXPECT_LT(ShardOf("abc", n), n);
  EXPECT_EQ(ShardOf("anything", 1), 0);
}

TEST(ShardOf, SpreadsIdsEvenly) {
  constexpr int kShards = 8;
  constexpr int kIds = 80000;
  std::vector<int> counts(kShards, 0);
  for (int i = 0; i < kIds; ++i) ++counts[static_cast<std::size_t>(ShardOf("P" + std::to_string(i), kShards))];
  for (const int count : counts) {
    EXPECT_NEAR(count, kIds / kShards, kIds / kShards / 20) << "more than 5% off an even split";
  }
}

TEST(ShardFileName, IsZeroPadded) {
  EXPECT_EQ(ShardFileName(0, ".csv"), "shard-00000.csv");
  EXPECT_EQ(ShardFileName(1234, ".h5"), "shard-01234.h5");
}

}  // namespace
}  // namespace lookbook
