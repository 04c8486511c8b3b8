#include "eval/metrics.h"

#include <algorithm>
#include <map>

namespace lookbook {

IdPair Ordered(std::int64_t a, std::int64_t b) { return {std::min(a, b), std::max(a, b)}; }

std::set<IdPair> PairClosure(const std::vector<IdPair>& pairs) {
  std::map<std::int64_t, std::int64_t> parent;
  auto find = [&](std::int64_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  for (const auto& [a, b] : pairs) {
    if (a == b) continue;
    parent.emplace(a, a);
    parent.emplace(b, b);
    parent[find(a)] = find(b);
  }
  std::map<std::int64_t, std::vector<std::int64_t>> groups;
  for (const auto& entry : parent) groups[find(entry.first)].push_back(entry.first);
  std::set<IdPair> all;
  for (const auto& [root, members] : groups) {
    for (std::size_t i = 0; i < members.size(); ++i) {
      for (std::size_t j = i + 1; j < members.size(); ++j) all.insert(Ordered(members[i], members[j]));
    }
  }
  return all;
}

double F1(double precision, double recall) {
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
}

PairScore ScorePairs(const std::vector<IdPair>& predicted, const std::set<IdPair>& truth) {
  std::set<IdPair> unique;
  for (const auto& [a, b] : predicted) unique.insert(Ordered(a, b));
  PairScore score;
  for (const auto& pair : unique) score.hits += truth.count(pair);
  score.precision = unique.empty() ? 1.0 : static_cast<double>(score.hits) / static_cast<double>(unique.size());
  score.recall = truth.empty() ? 0.0 : static_cast<double>(score.hits) / static_cast<double>(truth.size());
  score.f1 = F1(score.precision, score.recall);
  return score;
}

double RecallAtK(const std::vector<int>& best_rank, int k) {
  if (best_rank.empty()) return 0.0;
  const auto hits = std::count_if(best_rank.begin(), best_rank.end(), [&](int rank) { return rank > 0 && rank <= k; });
  return static_cast<double>(hits) / static_cast<double>(best_rank.size());
}

double MeanReciprocalRank(const std::vector<int>& best_rank) {
  if (best_rank.empty()) return 0.0;
  double sum = 0;
  for (const int rank : best_rank) sum += rank > 0 ? 1.0 / rank : 0.0;
  return sum / static_cast<double>(best_rank.size());
}

}  // namespace lookbook
