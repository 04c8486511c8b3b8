// The catalog as the recommendation stage and `lookbook query` see it: products with their
// category, stock, slot and images, over every image's full-precision embedding.
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
  std::vector<EmbedShard> shards;
  std::vector<Product> products;
  std::unordered_map<std::int64_t, int> product_of_image;  // every image id -> product index
  std::unordered_map<std::string, int> product_by_id;

  const ImageRow& image(std::int64_t id) const;
  const float* vector(std::int64_t id) const;
  // The garments the embed stage found in image `id` (rows of its shard's /garments).
  std::vector<std::size_t> garments_of(std::int64_t id) const;
  const float* garment_vector(int shard, std::size_t garment) const;
};

// Every verified embed shard of the run with its ingest rows (category, stock, catalog row).
// Categories come from the catalog (category_source "catalog" where not empty); slots are
// left empty (AssignSlots). Throws InputError as ReadVerifiedShard and ReadIngestRows do.
ProductCatalog LoadProductCatalog(const std::filesystem::path& run, const EmbedRun& embed);

// category -> slot from `spec`, "Category=slot,..." (a slot name or none); a category not in
// the spec whose lower-case name is a slot name maps to that slot. Throws InputError for an
// unknown slot name or a malformed entry.
std::unordered_map<std::string, std::string> ParseCategorySlots(const std::string& spec);
// Returns the categories left without a slot (neither mapped nor named like one), with their
// product counts: their products get no outfit matches, and nothing matches garments of them.
std::map<std::string, std::int64_t> AssignSlots(const std::unordered_map<std::string, std::string>& slots,
                                                ProductCatalog* catalog);

}  // namespace lookbook
