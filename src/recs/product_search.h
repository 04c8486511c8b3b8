// Top-k products for query vectors, through the image index with the candidates filtered
// inside the search (index/vector_index.h IdFilter), then re-scored exactly.
//
// A request is a few query vectors (a product's shots, the garments of one slot in a photo, a
// text) and the products it must not return. Its products are ranked by
//   score(Q) = max over the request's query vectors q and Q's shots s in the filter of cos(q, s),
// computed from the full-precision embeddings: a rank holds the vectors of its own shards only,
// and the scores against other ranks' shots are asked of them (dist/remote_scores.h), bit for
// bit what one rank holding every vector computes. The index is asked, per query vector, for
// k * (most shots of one product in the filter) + (shots of the excluded products) neighbours:
// among that many filtered images at least k products that are not excluded appear whenever
// the filter holds k such products, so no request comes back short because of the exclusions.
#pragma once

#include <cstdint>
#include <vector>

#include "dist/remote_scores.h"
#include "index/vector_index.h"
#include "recs/product_catalog.h"

namespace lookbook {

struct ProductMatch {
  int product = 0;
  float score = 0;
  std::int64_t image = 0;  // Q's shot that scored best
};

struct ProductRequest {
  std::vector<const float*> queries;  // dim floats each
  std::vector<int> excluded;          // product indexes
};

// The shots of `eligible` products as a filter for `index`, and the most shots one of them has.
struct ProductFilter {
  IdFilter ids;
  int max_shots = 0;
};
ProductFilter MakeProductFilter(const ProductCatalog& catalog, const ShardedIndex& index,
                                const std::vector<int>& eligible);

// Best first (ties: catalog order); at most k per request. Collective over the world `scores`
// was made for (one Exchange per call): every rank calls it the same number of times, with its
// own requests (none is fine), whose query vectors it holds.
std::vector<std::vector<ProductMatch>> TopProducts(const ProductCatalog& catalog, const ShardedIndex& index,
                                                   const ProductFilter& filter,
                                                   const std::vector<ProductRequest>& requests, int k, int nprobe,
                                                   RemoteScores* scores);

// A substitute list from a ranked one: at most `k` items, never two members of one
// near-duplicate cluster (the same photo relisted twice is one choice for the shopper, not two).
// `mates[p]` are the other products sharing a cluster with p, sorted. An item whose mate is
// already higher in the list is dropped and counted in *dropped.
std::vector<ProductMatch> WithoutClusterRepeats(const std::vector<ProductMatch>& ranked,
                                                const std::vector<std::vector<int>>& mates, int k,
                                                std::int64_t* dropped);

}  // namespace lookbook
