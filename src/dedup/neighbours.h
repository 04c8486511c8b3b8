// Neighbour lists, and what an incremental night keeps of last night's
// (docs/architecture.md#incremental-dedup).
//
// A full dedup searches the index for every ok image and keeps its list: of the images the
// search returned whose exact cosine reaches a list floor a little below the lower of the
// candidate floor and (with verification) the nearest floor, the
// first L = candidates + 1 (the image itself included) in list order: by cosine, then image key.
// The order is canonical (keys do not move between nights, ids do), and a search that ends on a
// tie (exact copies score alike) is extended until the tie is behind it, so which of several
// equal images make the list does not depend on where the index or the catalog put them.
// Candidates are the pairs (X, Z), Z in X's list, whose exact cosine reaches the candidate floor,
// and X's first list entry of another product when it reaches the nearest floor (IsCandidate in
// dedup_stage.cpp: computed on the merged list, so an incremental night finds the same).
// A list is truncated when L images reached the list floor (more may have); otherwise it holds
// every image that scores at or above the floor.
//
// The next night, with the same model, index factory, trained quantizer and search options, an
// image whose key and content checksum are last night's (unchanged) need not be searched again:
//   * its list loses the images that are gone or changed (removed). A truncated list that loses
//     one is searched again (what came after it is unknown); a complete one stays complete;
//   * it gains the new and changed images (fresh) that score at or above the list floor with it.
//     Each fresh image is searched with a growing k until its hits fall below the list floor, so
//     every image that would list it is found from its side (the reverse hits);
//   * its list is then the first L of both in list order (MergeList).
// On an exact (Flat) index this gives the lists a full search gives, so the same candidates; on
// an approximate index (IVF) the two sides of a pair score it differently, and the merged lists
// differ from a full search's in a few entries near the bottom of a list (docs/performance.md).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/dedup_file.h"

namespace lookbook {

// How far below the lower floor lists reach: room for the index's score, which decides what
// comes back, to differ from the exact cosine the lists keep.
inline constexpr float kListMargin = 0.02f;
// Bumped when what a list holds changes: last night's lists of another version are not carried
// (2: lists reach below the nearest floor too).
inline constexpr int kNeighbourListsVersion = 2;

struct Neighbour {
  std::int64_t image = 0;  // image id (this run's)
  float score = 0;         // the exact cosine
};

struct NeighbourList {
  std::vector<Neighbour> entries;
  bool truncated = false;
};

// An image's key, by image id (the list order's tie-break).
using KeyOf = std::function<std::string_view(std::int64_t)>;

// The list order: by cosine, then image key (the same whichever side found an entry, and the
// same on every night).
void SortList(std::vector<Neighbour>* entries, const KeyOf& key_of);

// Whether a search row of k hits (FAISS scores, best first) may have left out an image that
// belongs in its list: its last hit ties (within kTieMargin) with the list_size-th and still
// reaches the list floor, and the index holds more than k. Then search again with a larger k.
inline constexpr float kTieMargin = 1e-4f;
bool MayEndOnATie(const float* scores, const std::int64_t* ids, int k, int list_size, float list_floor,
                  std::int64_t total);

// One search result row (k hits, ids < 0 are empty slots) as a list: of the hits whose exact
// cosine (cosine(id)) reaches list_floor, the first list_size in list order. Truncated when
// list_size of them reached it (more may have).
template <typename Cosine>
NeighbourList ListFromHits(const std::int64_t* ids, int k, int list_size, float list_floor, Cosine&& cosine,
                           const KeyOf& key_of) {
  NeighbourList list;
  for (int j = 0; j < k; ++j) {
    if (ids[j] < 0) break;
    const float c = cosine(ids[j]);
    if (c >= list_floor) list.entries.push_back(Neighbour{ids[j], c});
  }
  SortList(&list.entries, key_of);
  list.truncated = list.entries.size() >= static_cast<std::size_t>(list_size);
  if (list.truncated) list.entries.resize(static_cast<std::size_t>(list_size));
  return list;
}

// Last night's list `kept` (removed images already dropped) with tonight's reverse hits `added`:
// the first list_size in list order; truncated when it was, or when it has list_size entries (as
// a search would mark it: all places taken at or above the floor, more may exist).
NeighbourList MergeList(std::vector<Neighbour> kept, const std::vector<Neighbour>& added, bool was_truncated,
                        int list_size, const KeyOf& key_of);

// An ok image of tonight's run: its id, key and content checksum.
struct ImageIdentity {
  std::int64_t image = 0;
  std::string key;
  std::uint64_t checksum = 0;
};

// What an incremental night searches and what it carries (see above).
struct NightPlan {
  std::vector<std::int64_t> fresh;    // new or changed images: searched with a growing k
  std::vector<std::int64_t> requery;  // unchanged, whose truncated list lost a member: searched again
  std::unordered_map<std::int64_t, NeighbourList> carried;  // unchanged: last night's list, in tonight's ids
  std::int64_t removed = 0;                                 // last night's images gone or changed
};

// `tonight`: every ok image of tonight's run. `previous`: last night's lists.
NightPlan PlanNight(const std::vector<ImageIdentity>& tonight, const NeighbourLists& previous);

// A pair of images named by key and checksum, in key order: how last night's verification is
// found again tonight (the aligned correlation depends only on the two files, taken in key order).
std::string PairIdentity(std::string_view key_a, std::uint64_t checksum_a, std::string_view key_b,
                         std::uint64_t checksum_b);

// Last night's verified candidates (aligned correlation not NaN) by PairIdentity: the
// verification's outcome (aligned and the cascade's checks; a and b are last night's ids).
std::unordered_map<std::string, ScoredPair> PreviousAligned(const DedupFile& previous);

}  // namespace lookbook
