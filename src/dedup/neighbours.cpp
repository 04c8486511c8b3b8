#include "dedup/neighbours.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace lookbook {

void SortList(std::vector<Neighbour>* entries, const KeyOf& key_of) {
  std::sort(entries->begin(), entries->end(), [&](const Neighbour& x, const Neighbour& y) {
    if (x.score != y.score) return x.score > y.score;
    return x.image != y.image && key_of(x.image) < key_of(y.image);
  });
}

bool MayEndOnATie(const float* scores, const std::int64_t* ids, int k, int list_size, float list_floor,
                  std::int64_t total) {
  if (k <= list_size || k >= total || ids[k - 1] < 0) return false;
  return scores[k - 1] >= list_floor - kListMargin && scores[k - 1] >= scores[list_size - 1] - kTieMargin;
}

NeighbourList MergeList(std::vector<Neighbour> kept, const std::vector<Neighbour>& added, bool was_truncated,
                        int list_size, const KeyOf& key_of) {
  LB_CHECK(list_size > 0, "MergeList: list_size > 0");
  NeighbourList list;
  list.entries = std::move(kept);
  list.entries.insert(list.entries.end(), added.begin(), added.end());
  SortList(&list.entries, key_of);
  // As a search marks it: all list_size places taken at or above the floor (more may exist).
  list.truncated = was_truncated || list.entries.size() >= static_cast<std::size_t>(list_size);
  if (list.entries.size() > static_cast<std::size_t>(list_size))
    list.entries.resize(static_cast<std::size_t>(list_size));
  return list;
}

NightPlan PlanNight(const std::vector<ImageIdentity>& tonight, const NeighbourLists& previous) {
  std::unordered_map<std::string, std::size_t> previous_row;
  previous_row.reserve(previous.rows());
  for (std::size_t r = 0; r < previous.rows(); ++r) previous_row.emplace(previous.key[r], r);

  // Last night's rows that are still here, unchanged: their id tonight (-1: removed or changed).
  std::vector<std::int64_t> now(previous.rows(), -1);
  std::vector<const ImageIdentity*> unchanged;
  NightPlan plan;
  for (const ImageIdentity& image : tonight) {
    const auto found = previous_row.find(image.key);
    if (found == previous_row.end() || previous.checksum[found->second] != image.checksum) {
      plan.fresh.push_back(image.image);
      continue;
    }
    now[found->second] = image.image;
    unchanged.push_back(&image);
  }
  plan.removed = std::count(now.begin(), now.end(), std::int64_t{-1});

  for (const ImageIdentity* image : unchanged) {
    const std::size_t r = previous_row.at(image->key);
    NeighbourList list;
    list.truncated = previous.truncated[r] != 0;
    bool lost = false;
    for (auto e = previous.offset[r]; e < previous.offset[r + 1]; ++e) {
      const std::int64_t member = now[static_cast<std::size_t>(previous.member[static_cast<std::size_t>(e)])];
      if (member < 0) {
        lost = true;
        continue;
      }
      list.entries.push_back(Neighbour{member, previous.score[static_cast<std::size_t>(e)]});
    }
    if (lost && list.truncated) {
      plan.requery.push_back(image->image);
    } else {
      plan.carried.emplace(image->image, std::move(list));
    }
  }
  return plan;
}

std::string PairIdentity(std::string_view key_a, std::uint64_t checksum_a, std::string_view key_b,
                         std::uint64_t checksum_b) {
  const bool swap = key_b < key_a;
  const std::string_view first = swap ? key_b : key_a;
  const std::string_view second = swap ? key_a : key_b;
  const std::uint64_t first_sum = swap ? checksum_b : checksum_a;
  const std::uint64_t second_sum = swap ? checksum_a : checksum_b;
  std::string out(first);
  out += '\n' + std::to_string(first_sum) + '\n';
  out += second;
  out += '\n' + std::to_string(second_sum);
  return out;
}

std::unordered_map<std::string, ScoredPair> PreviousAligned(const DedupFile& previous) {
  const NeighbourLists& lists = previous.neighbours;
  std::unordered_map<std::int64_t, std::size_t> row;
  for (std::size_t r = 0; r < lists.rows(); ++r) row.emplace(lists.image[r], r);
  std::unordered_map<std::string, ScoredPair> aligned;
  for (const ScoredPair& pair : previous.candidates) {
    if (std::isnan(pair.aligned)) continue;
    const auto a = row.find(pair.a), b = row.find(pair.b);
    if (a == row.end() || b == row.end()) continue;
    aligned.emplace(
        PairIdentity(lists.key[a->second], lists.checksum[a->second], lists.key[b->second], lists.checksum[b->second]),
        pair);
  }
  return aligned;
}

}  // namespace lookbook
