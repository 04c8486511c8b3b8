#include "dedup/clusters.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace lookbook {

bool ParseKeepPolicy(const std::string& text, KeepPolicy* policy) {
  if (text == "first")
    *policy = KeepPolicy::kFirst;
  else if (text == "largest")
    *policy = KeepPolicy::kLargest;
  else if (text == "in-stock")
    *policy = KeepPolicy::kInStock;
  else if (text == "original")
    *policy = KeepPolicy::kOriginal;
  else
    return false;
  return true;
}

const char* KeepPolicyName(KeepPolicy policy) {
  switch (policy) {
    case KeepPolicy::kFirst: return "first";
    case KeepPolicy::kLargest: return "largest";
    case KeepPolicy::kInStock: return "in-stock";
    case KeepPolicy::kOriginal: return "original";
  }
  return "?";
}

std::size_t UnionFind::Add() {
  parent_.push_back(parent_.size());
  return parent_.size() - 1;
}

std::size_t UnionFind::Find(std::size_t x) {
  while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
  return x;
}

void UnionFind::Union(std::size_t a, std::size_t b) {
  a = Find(a);
  b = Find(b);
  if (a != b) parent_[std::max(a, b)] = std::min(a, b);
}

std::vector<ClusterMember> ClusterPairs(const std::vector<std::pair<std::int64_t, std::int64_t>>& pairs,
                                        KeepPolicy keep, const std::function<KeepFacts(std::int64_t)>& facts) {
  UnionFind sets;
  std::map<std::int64_t, std::size_t> element;  // image id -> set element, in id order
  for (const auto& [a, b] : pairs) {
    for (const std::int64_t id : {a, b}) {
      if (!element.count(id)) element[id] = 0;
    }
  }
  for (auto& [id, index] : element) index = sets.Add();  // elements follow id order
  for (const auto& [a, b] : pairs) sets.Union(element[a], element[b]);
  // Roots are each cluster's smallest element, i.e. its smallest id: the map orders clusters.
  std::map<std::size_t, std::vector<std::int64_t>> members;
  for (const auto& [id, index] : element) members[sets.Find(index)].push_back(id);

  std::vector<ClusterMember> out;
  out.reserve(element.size());
  std::int64_t cluster = 0;
  for (const auto& [root, ids] : members) {
    std::vector<KeepFacts> known;
    known.reserve(ids.size());
    for (const std::int64_t id : ids) known.push_back(facts(id));
    // original: the candidates have about the most content, and of those, about the least
    // padding (the largest share of their frame that is content).
    std::int64_t most_content = 0;
    for (const KeepFacts& f : known) most_content = std::max(most_content, f.content_pixels);
    auto enough_content = [&](const KeepFacts& f) {
      return static_cast<double>(f.content_pixels) >=
             (1.0 - kOriginalContentTolerance) * static_cast<double>(most_content);
    };
    auto share = [](const KeepFacts& f) {
      return f.pixels > 0 ? static_cast<double>(f.content_pixels) / static_cast<double>(f.pixels) : 0.0;
    };
    double best_share = 0;
    for (const KeepFacts& f : known) {
      if (enough_content(f)) best_share = std::max(best_share, share(f));
    }
    auto candidate = [&](const KeepFacts& f) {
      return enough_content(f) && share(f) >= best_share - kOriginalShareTolerance;
    };
    // Orders images by the policy: the smallest is kept.
    auto order = [&](std::size_t i) {
      const KeepFacts& f = known[i];
      switch (keep) {
        case KeepPolicy::kFirst: return std::make_tuple(std::int64_t{0}, std::int64_t{0}, f.catalog_row, ids[i]);
        case KeepPolicy::kLargest: return std::make_tuple(-f.pixels, std::int64_t{0}, f.catalog_row, ids[i]);
        case KeepPolicy::kInStock:
          return std::make_tuple(std::int64_t{f.in_stock ? 0 : 1}, std::int64_t{0}, f.catalog_row, ids[i]);
        case KeepPolicy::kOriginal:
          return std::make_tuple(std::int64_t{candidate(f) ? 0 : 1}, -f.file_bytes, f.catalog_row, ids[i]);
      }
      return std::make_tuple(std::int64_t{0}, std::int64_t{0}, f.catalog_row, ids[i]);
    };
    std::size_t kept = 0;
    for (std::size_t i = 1; i < ids.size(); ++i) {
      if (order(i) < order(kept)) kept = i;
    }
    for (std::size_t i = 0; i < ids.size(); ++i) out.push_back(ClusterMember{ids[i], cluster, i == kept});
    ++cluster;
  }
  return out;
}

}  // namespace lookbook
