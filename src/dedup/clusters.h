// Near-duplicate clusters: the connected components of the duplicate pairs (union-find), and
// the one image of each cluster that the keep policy keeps as its representative.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace lookbook {

// Which image of a cluster is its representative:
//   first     the first in catalog order
//   largest   the most pixels (ties: catalog order)
//   in-stock  the first in-stock one in catalog order (none in stock: the first)
//   original  the unedited original, as far as the files tell: of the images whose content
//             (pixels times the share of the thumbnail that is not near white: a crop or a
//             downscale has less, an added white border or rotation fill adds none) is within
//             kOriginalContentTolerance of the most, those whose content share of the frame is
//             within kOriginalShareTolerance of the largest (a border or a rotation's fill
//             pads the frame), and of those the largest file (a harsh re-encode has fewer
//             bytes); ties by catalog order
enum class KeepPolicy { kFirst, kLargest, kInStock, kOriginal };
inline constexpr double kOriginalContentTolerance = 0.1;  // relative
inline constexpr double kOriginalShareTolerance = 0.03;   // absolute, of the content share
bool ParseKeepPolicy(const std::string& text, KeepPolicy* policy);
const char* KeepPolicyName(KeepPolicy policy);

// What the keep policy knows of an image.
struct KeepFacts {
  std::int64_t catalog_row = 0;  // position in the catalog (ties broken by image id)
  std::int64_t pixels = 0;
  bool in_stock = true;
  std::int64_t content_pixels = 0;  // pixels x the non-white share of its thumbnail (original)
  std::int64_t file_bytes = 0;      // the image file's size (original)
};

// Disjoint sets over 0..n-1; Union keeps the smaller index as the root.
class UnionFind {
 public:
  std::size_t Add();
  std::size_t Find(std::size_t x);
  void Union(std::size_t a, std::size_t b);
  std::size_t size() const { return parent_.size(); }

 private:
  std::vector<std::size_t> parent_;
};

struct ClusterMember {
  std::int64_t image = 0;
  std::int64_t cluster = 0;
  bool representative = false;
};

// Every image of `pairs` once, grouped by cluster: clusters numbered 0, 1, ... in order of their
// smallest image id, members in ascending id. `facts` is asked only for clustered images.
std::vector<ClusterMember> ClusterPairs(const std::vector<std::pair<std::int64_t, std::int64_t>>& pairs,
                                        KeepPolicy keep, const std::function<KeepFacts(std::int64_t)>& facts);

}  // namespace lookbook
