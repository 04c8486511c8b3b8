#include "dedup/clusters.h"

#include <gtest/gtest.h>

#include <map>

namespace lookbook {
namespace {

TEST(UnionFind, JoinsSetsAndKeepsTheSmallestRoot) {
  UnionFind sets;
  for (int i = 0; i < 6; ++i) sets.Add();
  sets.Union(4, 2);
  sets.Union(2, 5);
  sets.Union(1, 0);
  EXPECT_EQ(sets.Find(5), 2u);
  EXPECT_EQ(sets.Find(4), 2u);
  EXPECT_EQ(sets.Find(1), 0u);
  EXPECT_EQ(sets.Find(3), 3u);
  sets.Union(5, 0);
  for (std::size_t x : {0u, 1u, 2u, 4u, 5u}) EXPECT_EQ(sets.Find(x), 0u);
}

// Facts for image ids: catalog row, pixels, stock.
std::function<KeepFacts(std::int64_t)> Facts(std::map<std::int64_t, KeepFacts> table) {
  return [table](std::int64_t id) { return table.at(id); };
}

std::map<std::int64_t, std::pair<std::int64_t, bool>> ByImage(const std::vector<ClusterMember>& members) {
  std::map<std::int64_t, std::pair<std::int64_t, bool>> out;
  for (const auto& m : members) out[m.image] = {m.cluster, m.representative};
  return out;
}

TEST(ClusterPairs, ComponentsNumberedByTheirSmallestIdWithOneRepresentativeEach) {
  // {30, 10, 20} through 30-10 and 20-30; {5, 40}; images in no pair are not listed.
  const auto facts =
      Facts({{5, {50, 1, true}}, {10, {2, 1, true}}, {20, {1, 1, true}}, {30, {3, 1, true}}, {40, {0, 1, true}}});
  const auto members = ClusterPairs({{10, 30}, {20, 30}, {5, 40}}, KeepPolicy::kFirst, facts);
  ASSERT_EQ(members.size(), 5u);
  // Grouped by cluster, ids ascending within.
  EXPECT_EQ(members[0].image, 5);
  EXPECT_EQ(members[1].image, 40);
  EXPECT_EQ(members[2].image, 10);
  const auto by = ByImage(members);
  EXPECT_EQ(by.at(5).first, 0);
  EXPECT_EQ(by.at(40).first, 0);
  EXPECT_EQ(by.at(10).first, 1);
  EXPECT_EQ(by.at(20).first, 1);
  EXPECT_EQ(by.at(30).first, 1);
  // first: the earliest catalog row keeps, not the smallest id.
  EXPECT_TRUE(by.at(40).second);
  EXPECT_FALSE(by.at(5).second);
  EXPECT_TRUE(by.at(20).second);
  EXPECT_FALSE(by.at(10).second);
}

TEST(ClusterPairs, KeepPolicies) {
  // One cluster: id 1 (row 0, small, out of stock), 2 (row 1, largest, out of stock),
  // 3 (row 2, mid, in stock), 4 (row 3, as large as 2, in stock).
  const auto facts = Facts({{1, {0, 100, false}}, {2, {1, 900, false}}, {3, {2, 400, true}}, {4, {3, 900, true}}});
  const std::vector<std::pair<std::int64_t, std::int64_t>> pairs = {{1, 2}, {2, 3}, {3, 4}};
  auto kept = [&](KeepPolicy policy) {
    for (const auto& m : ClusterPairs(pairs, policy, facts)) {
      if (m.representative) return m.image;
    }
    return std::int64_t{-1};
  };
  EXPECT_EQ(kept(KeepPolicy::kFirst), 1);
  EXPECT_EQ(kept(KeepPolicy::kLargest), 2);  // ties on pixels go to catalog order
  EXPECT_EQ(kept(KeepPolicy::kInStock), 3);
  // Nobody in stock: the first in catalog order.
  const auto none = Facts({{1, {5, 1, false}}, {2, {4, 1, false}}});
  const auto members = ClusterPairs({{1, 2}}, KeepPolicy::kInStock, none);
  EXPECT_TRUE(ByImage(members).at(2).second);
  int representatives = 0;
  for (const auto& m : ClusterPairs(pairs, KeepPolicy::kLargest, facts)) representatives += m.representative;
  EXPECT_EQ(representatives, 1);
}

TEST(ClusterPairs, TheOriginalHasTheMostContentTheLeastPaddingThenTheLargestFile) {
  // 1: a bordered copy listed first (more pixels, the same content, a smaller file);
  // 2: the original; 3: a downscaled copy (less content); 4: a harsh re-encode (the same
  // content, the smallest file).
  KeepFacts bordered{0, 1'440'000, true, 1'000'000, 180'000};
  KeepFacts original{1, 1'000'000, true, 980'000, 210'000};
  KeepFacts small{2, 400'000, true, 392'000, 90'000};
  KeepFacts harsh{3, 1'000'000, true, 985'000, 60'000};
  const auto facts = Facts({{1, bordered}, {2, original}, {3, small}, {4, harsh}});
  const std::vector<std::pair<std::int64_t, std::int64_t>> pairs = {{1, 2}, {2, 3}, {3, 4}};
  auto kept = [&](KeepPolicy policy, const std::function<KeepFacts(std::int64_t)>& f) {
    for (const auto& m : ClusterPairs(pairs, policy, f)) {
      if (m.representative) return m.image;
    }
    return std::int64_t{-1};
  };
  EXPECT_EQ(kept(KeepPolicy::kOriginal, facts), 2);
  EXPECT_EQ(kept(KeepPolicy::kLargest, facts), 1) << "pixels alone keep the bordered copy";
  EXPECT_EQ(kept(KeepPolicy::kFirst, facts), 1);
  // A large file with much less content (a downscale saved at a high quality) is not a candidate.
  small.file_bytes = 500'000;
  EXPECT_EQ(kept(KeepPolicy::kOriginal, Facts({{1, bordered}, {2, original}, {3, small}, {4, harsh}})), 2);
  // The bordered copy has as much content but pads its frame: even with the larger file it is
  // not kept.
  original.file_bytes = 150'000;
  EXPECT_EQ(kept(KeepPolicy::kOriginal, Facts({{1, bordered}, {2, original}, {3, small}, {4, harsh}})), 2);
  // Within both tolerances (a brighter copy: the same content and frame) the larger file is
  // kept, then the first in catalog order.
  KeepFacts brighter{0, 1'000'000, true, 975'000, 200'000};
  original.file_bytes = 180'000;
  EXPECT_EQ(kept(KeepPolicy::kOriginal, Facts({{1, brighter}, {2, original}, {3, small}, {4, harsh}})), 1);
  original.file_bytes = 200'000;
  EXPECT_EQ(kept(KeepPolicy::kOriginal, Facts({{1, brighter}, {2, original}, {3, small}, {4, harsh}})), 1);
  original.file_bytes = 200'001;
  EXPECT_EQ(kept(KeepPolicy::kOriginal, Facts({{1, brighter}, {2, original}, {3, small}, {4, harsh}})), 2);
}

TEST(ClusterPairs, PolicyNamesRoundTrip) {
  for (const KeepPolicy policy :
       {KeepPolicy::kFirst, KeepPolicy::kLargest, KeepPolicy::kInStock, KeepPolicy::kOriginal}) {
    KeepPolicy parsed = KeepPolicy::kFirst;
    ASSERT_TRUE(ParseKeepPolicy(KeepPolicyName(policy), &parsed));
    EXPECT_EQ(parsed, policy);
  }
  KeepPolicy unused;
  EXPECT_FALSE(ParseKeepPolicy("newest", &unused));
}

}  // namespace
}  // namespace lookbook
