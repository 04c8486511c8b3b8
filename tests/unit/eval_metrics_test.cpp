#include "eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "eval/dedup_eval.h"

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

TEST(SweepRule, EachThresholdScoresTheCandidatesTheRuleWouldKeep) {
  // Without verification the cosine decides; the pHash clause cannot fire (hamming 64 > max).
  DedupRule rule;
  rule.verify = false;
  rule.cosine = 0.95f;
  rule.phash_cosine = 0.95f;
  rule.max_hamming = 4;
  const std::vector<ScoredPair> candidates = {{1, 2, 0.9612f, 64}, {3, 4, 0.9712f, 64}, {5, 6, 0.9862f, 64}};
  const std::set<IdPair> truth = {{3, 4}, {5, 6}, {7, 8}};  // 7-8 was never a candidate
  const std::vector<SweepPoint> sweep = SweepRule(rule, candidates, truth, 0.95);
  ASSERT_EQ(sweep.size(), 21u);  // 0.95, 0.9525, ..., 1.0
  EXPECT_DOUBLE_EQ(sweep.front().threshold, 0.95);
  EXPECT_DOUBLE_EQ(sweep.back().threshold, 1.0);
  auto at = [&](double threshold) {
    for (const auto& point : sweep) {
      if (std::abs(point.threshold - threshold) < 1e-9) return point;
    }
    ADD_FAILURE() << "no point at " << threshold;
    return SweepPoint{};
  };
  EXPECT_DOUBLE_EQ(at(0.96).precision, 2.0 / 3.0);  // all three kept, one false
  EXPECT_DOUBLE_EQ(at(0.96).recall, 2.0 / 3.0);     // 7-8 is missed at every threshold
  EXPECT_DOUBLE_EQ(at(0.965).precision, 1.0);
  EXPECT_DOUBLE_EQ(at(0.98).recall, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(at(0.99).recall, 0.0);
  EXPECT_DOUBLE_EQ(at(0.99).f1, 0.0);
  // The pHash clause holds as run: with a small Hamming distance the 0.9612 pair stays in at
  // any cosine threshold (its cosine reaches phash_cosine).
  const std::vector<ScoredPair> close_hash = {{1, 2, 0.9612f, 2}};
  EXPECT_DOUBLE_EQ(SweepRule(rule, close_hash, {{1, 2}}, 0.95).back().recall, 1.0);
}

}  // namespace
}  // namespace lookbook
