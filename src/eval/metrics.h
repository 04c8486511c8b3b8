// The metrics every quality gate rests on, as pure functions over ids and ranks, so that each
// can be checked on small hand-made cases (tests/unit/eval_metrics_test.cpp).
#pragma once

#include <cstdint>
#include <set>
#include <utility>
#include <vector>

namespace lookbook {

// An unordered pair of image ids, stored with first < second.
using IdPair = std::pair<std::int64_t, std::int64_t>;
IdPair Ordered(std::int64_t a, std::int64_t b);

// Every pair of distinct ids within one connected component of `pairs` (known duplicates are
// transitive: a = b and b = c make a = c). Self-pairs are dropped.
std::set<IdPair> PairClosure(const std::vector<IdPair>& pairs);

struct PairScore {
  std::size_t hits = 0;  // predicted pairs that are in the truth
  double precision = 0;  // hits / predicted; 1 when nothing is predicted
  double recall = 0;     // hits / truth; 0 when the truth is empty
  double f1 = 0;         // harmonic mean; 0 when both are 0
};
// Duplicate predictions are counted once.
PairScore ScorePairs(const std::vector<IdPair>& predicted, const std::set<IdPair>& truth);
double F1(double precision, double recall);

// Ranked retrieval: `best_rank[i]` is the rank (1-based) at which the i-th wanted item was
// found, 0 when it was not found at all.
double RecallAtK(const std::vector<int>& best_rank, int k);    // share with 0 < rank <= k
double MeanReciprocalRank(const std::vector<int>& best_rank);  // mean of 1/rank, 0 when absent

}  // namespace lookbook
