// The catalog as the recommendation stage and `lookbook query` see it: products with their
// category, stock, slot and images, and the full-precision embeddings of the shards this rank
// owns (shard k belongs to rank k mod ranks; `query` runs alone and owns every shard). Scores
// against other ranks' images are asked of them (Scores(), dist/remote_scores.h).
//
// A product's images split in two:
//   shots          its ok images that are not outfit photos: the product's own pictures.
//                  Product similarity is the best image pair: score(P, Q) = max over P's
//                  query vectors q and Q's shots s of cos(q, s) (embeddings are unit norm).
//   outfit_photos  its ok images in which the embed stage's segmenter found garments of at
//                  least two slots (a look, not a product).
// Products are in catalog order (the catalog row of their first image).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "dist/remote_scores.h"
#include "dist/world.h"
#include "store/embed_run.h"
#include "store/embed_shard.h"

namespace lookbook {

struct Product {
  std::string id;
  std::string category;         // as in the catalog, or zero-shot (category_source)
  std::string category_source;  // "catalog", "zero-shot", or "" when unknown
  std::string slot;             // garments/garments.h slot name, or "" when none
  bool in_stock = false;
  std::int64_t catalog_row = 0;
  int shard = 0;                            // the embed shard holding all its images
  std::vector<std::int64_t> shots;          // image ids
  std::vector<std::int64_t> outfit_photos;  // image ids
};

struct ProductCatalog {
  int dim = 0;
  int rank = 0, ranks = 1;
  std::vector<EmbedShard> shards;
  std::vector<Product> products;
  std::unordered_map<std::int64_t, int> product_of_image;  // every image id -> product index
  std::unordered_map<std::string, int> product_by_id;

  const ImageRow& image(std::int64_t id) const;
  int owner(std::int64_t id) const { return RankOfShard(ShardOfImageId(id), ranks); }
  bool owns(const Product& product) const { return RankOfShard(product.shard, ranks) == rank; }
  // The vector of image `id`, which this rank must own (a programming error otherwise).
  const float* vector(std::int64_t id) const;
  // The garments the embed stage found in image `id` (rows of its shard's /garments).
  std::vector<std::size_t> garments_of(std::int64_t id) const;
  const float* garment_vector(int shard, std::size_t garment) const;
  // Scores against this catalog's images, whichever rank holds them (collective Exchange());
  // `world` null for a catalog loaded without one.
  RemoteScores Scores(const MpiWorld* world) const;
};

// Every verified embed shard of the run with its ingest rows (category, stock, catalog row); the
// embeddings of this rank's shards only (`world` null: one process, every shard).
// Categories come from the catalog (category_source "catalog" where not empty); slots are
// left empty (AssignSlots). Throws InputError as ReadVerifiedShard and ReadIngestRows do.
ProductCatalog LoadProductCatalog(const std::filesystem::path& run, const EmbedRun& embed,
                                  const MpiWorld* world = nullptr);

// "Category=value,..." as (category, value) pairs in order: blanks trimmed, empty entries skipped,
// the last '=' of an entry separating (a category name may hold one). An entry without '=' is
// returned in *malformed (the first such; "" when none) and left out. --category-slots and
// --category-names are written so.
std::vector<std::pair<std::string, std::string>> SplitCategoryMap(const std::string& spec, std::string* malformed);
// category -> slot from `spec`, "Category=slot,..." (a slot name or none); a category not in
// the spec whose lower-case name is a slot name maps to that slot. Throws InputError for an
// unknown slot name or a malformed entry.
std::unordered_map<std::string, std::string> ParseCategorySlots(const std::string& spec);
// Returns the categories left without a slot (neither mapped nor named like one), with their
// product counts: their products get no outfit matches, and nothing matches garments of them.
std::map<std::string, std::int64_t> AssignSlots(const std::unordered_map<std::string, std::string>& slots,
                                                ProductCatalog* catalog);

}  // namespace lookbook
