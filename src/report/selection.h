// What the report shows of a section when it has more than --max-shown items: the choice is
// here, apart from the HTML, so that it can be tested alone (tests/unit/report_selection_test.cpp).
//
// A section shows its most telling items first (the largest clusters, the pairs nearest the
// rule's threshold) and fills the rest of its --max-shown with a seeded sample: the same seed
// shows the same items in every run, another seed another sample, and every item keeps its
// place in the section's order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lookbook {

// At most `limit` of `count` items, as their indices in order: all of them when they fit;
// else the first min(head, limit), then the rest chosen by xxh3 of "<seed>/<name(i)>"
// (smallest first), in their order. `name` names an item by content (an image key, a product
// id), so that the sample does not move when unrelated items come and go.
std::vector<std::size_t> ShownSample(std::size_t count, std::size_t head, std::size_t limit, std::uint64_t seed,
                                     const std::function<std::string(std::size_t)>& name);

// Indices of `sizes`, the largest first; equal sizes keep their order.
std::vector<std::size_t> LargestFirst(const std::vector<std::size_t>& sizes);

// Indices of `signals`, the nearest to `threshold` first (equal distances keep their order);
// NaN signals (a pair the rule could not score) are left out. At most `limit`: the first
// `limit` of the whole order, found without sorting the rest.
std::vector<std::size_t> NearestFirst(const std::vector<float>& signals, float threshold,
                                      std::size_t limit = static_cast<std::size_t>(-1));

// A thumbnail's file name, by the picture's content: the same picture has the same file in
// every run, so a night reuses the thumbnails of unchanged pictures.
std::string ThumbName(std::uint64_t checksum, int side);

}  // namespace lookbook
