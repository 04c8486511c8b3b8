#include "report/selection.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "util/hash.h"

namespace lookbook {

std::vector<std::size_t> ShownSample(std::size_t count, std::size_t head, std::size_t limit, std::uint64_t seed,
                                     const std::function<std::string(std::size_t)>& name) {
  std::vector<std::size_t> out;
  if (count <= limit) {
    out.resize(count);
    for (std::size_t i = 0; i < count; ++i) out[i] = i;
    return out;
  }
  const std::size_t first = std::min(head, limit);
  for (std::size_t i = 0; i < first; ++i) out.push_back(i);
  std::vector<std::pair<std::uint64_t, std::size_t>> rest;
  rest.reserve(count - first);
  for (std::size_t i = first; i < count; ++i) rest.emplace_back(Xxh3(std::to_string(seed) + "/" + name(i)), i);
  const auto keep = static_cast<std::ptrdiff_t>(limit - first);
  std::nth_element(rest.begin(), rest.begin() + keep, rest.end());
  rest.resize(static_cast<std::size_t>(keep));
  std::sort(rest.begin(), rest.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
  for (const auto& [unused, i] : rest) out.push_back(i);
  return out;
}

std::vector<std::size_t> LargestFirst(const std::vector<std::size_t>& sizes) {
  std::vector<std::size_t> order(sizes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return sizes[x] > sizes[y]; });
  return order;
}

std::vector<std::size_t> NearestFirst(const std::vector<float>& signals, float threshold, std::size_t limit) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < signals.size(); ++i) {
    if (!std::isnan(signals[i])) order.push_back(i);
  }
  // By distance, then by index: the stable order, so that a partial sort gives its head.
  const auto nearer = [&](std::size_t x, std::size_t y) {
    const float dx = std::fabs(signals[x] - threshold), dy = std::fabs(signals[y] - threshold);
    return dx < dy || (dx == dy && x < y);
  };
  const std::size_t kept = std::min(limit, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(kept), order.end(), nearer);
  order.resize(kept);
  return order;
}

std::string ThumbName(std::uint64_t checksum, int side) {
  return "thumbs/" + FormatChecksum(checksum).substr(5) + "-" + std::to_string(side) + ".jpg";
}

}  // namespace lookbook
