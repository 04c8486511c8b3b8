#include "eval/metrics.h"

#include <gtest/gtest.h>

namespace lookbook {
namespace {

TEST(PairClosure, KnownDuplicatesAreTransitive) {
  // 1-2, 2-3 make 1-3 too; 5-4 is ordered; a self-pair is dropped; 7-8 stays alone.
  const std::set<IdPair> closed = PairClosure({{1, 2}, {3, 2}, {5, 4}, {6, 6}, {7, 8}});
  const std::set<IdPair> expected = {{1, 2}, {1, 3}, {2, 3}, {4, 5}, {7, 8}};
  EXPECT_EQ(closed, expected);
}

TEST(PairClosure, ClusterOfFourGivesSixPairs) {
  EXPECT_EQ(PairClosure({{10, 11}, {12, 13}, {11, 12}}).size(), 6u);
  EXPECT_TRUE(PairClosure({}).empty());
}

TEST(ScorePairs, PrecisionRecallAndF1) {
  const std::set<IdPair> truth = {{1, 2}, {1, 3}, {2, 3}, {4, 5}};
  // 3 predicted (one listed twice, once reversed), 2 of them right.
  const PairScore score = ScorePairs({{2, 1}, {1, 2}, {4, 5}, {6, 7}}, truth);
  EXPECT_EQ(score.hits, 2u);
  EXPECT_DOUBLE_EQ(score.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(score.recall, 2.0 / 4.0);
  EXPECT_DOUBLE_EQ(score.f1, 2 * (2.0 / 3.0) * 0.5 / (2.0 / 3.0 + 0.5));
}

TEST(ScorePairs, EdgeCases) {
  const std::set<IdPair> truth = {{1, 2}};
  const PairScore nothing = ScorePairs({}, truth);
  EXPECT_DOUBLE_EQ(nothing.precision, 1.0);  // no false positive
  EXPECT_DOUBLE_EQ(nothing.recall, 0.0);
  EXPECT_DOUBLE_EQ(nothing.f1, 0.0);
  const PairScore perfect = ScorePairs({{1, 2}}, truth);
  EXPECT_DOUBLE_EQ(perfect.f1, 1.0);
  const PairScore all_wrong = ScorePairs({{3, 4}}, truth);
  EXPECT_DOUBLE_EQ(all_wrong.precision, 0.0);
  EXPECT_DOUBLE_EQ(all_wrong.f1, 0.0);
  EXPECT_DOUBLE_EQ(ScorePairs({{1, 2}}, {}).recall, 0.0);
}

TEST(RankedRetrieval, RecallAtKAndMeanReciprocalRank) {
  const std::vector<int> ranks = {1, 2, 5, 6, 0};
  EXPECT_DOUBLE_EQ(RecallAtK(ranks, 1), 1.0 / 5);
  EXPECT_DOUBLE_EQ(RecallAtK(ranks, 5), 3.0 / 5);
  EXPECT_DOUBLE_EQ(RecallAtK(ranks, 10), 4.0 / 5);  // absent (0) never counts
  EXPECT_DOUBLE_EQ(MeanReciprocalRank(ranks), (1.0 + 0.5 + 0.2 + 1.0 / 6) / 5);
  EXPECT_DOUBLE_EQ(RecallAtK({}, 5), 0.0);
  EXPECT_DOUBLE_EQ(MeanReciprocalRank({}), 0.0);
  EXPECT_DOUBLE_EQ(MeanReciprocalRank({0, 0}), 0.0);
}

}  // namespace
}  // namespace lookbook
