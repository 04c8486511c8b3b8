// RUN/recs/recs.h5: the recommendation stage's tables by index, for systems that read HDF5.
// Products are rows of /products; images are 64-bit image ids (store/embed_run.h ImageId).
//
// Schema (schema_version 1):
//   /products/id               str   [p]  catalog order
//   /products/category         str   [p]  the catalog's, or zero-shot where it had none
//   /products/category_source  str   [p]  catalog, zero-shot, or "" (unknown)
//   /products/slot             str   [p]  garment slot of the category, "" when none
//   /products/in_stock         int8  [p]
//   /substitutes/product       int64 [s]  row in /products (sorted by product, then rank)
//   /substitutes/rank          int32 [s]  1..top_k
//   /substitutes/substitute    int64 [s]  row in /products
//   /substitutes/score         float32 [s]  best cosine between the two products' images
//   /substitutes/image         int64 [s]  the substitute's image that scored best
//   /outfits/product           int64 [o]  row in /products: the product whose outfit photo it is
//   /outfits/source_image      int64 [o]  the outfit photo
//   /outfits/slot              str   [o]  slot of the garment found in the photo
//   /outfits/box               int32 [o, 4]  that garment's box (x, y, w, h, source pixels; the
//                                         first garment of the slot when it has several)
//   /outfits/rank              int32 [o]  1..outfit_top_k within (product, source_image, slot)
//   /outfits/item              int64 [o]  row in /products
//   /outfits/score             float32 [o]  best cosine between the slot's garment crops and the
//                                         item's images
// Root attributes: schema_version, top_k, outfit_top_k, substitutes_for.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lookbook {

inline constexpr int kRecsSchemaVersion = 1;

struct RecsProduct {
  std::string id, category, category_source, slot;
  std::int8_t in_stock = 0;
};

struct SubstituteRow {
  std::int64_t product = 0;
  std::int32_t rank = 0;
  std::int64_t substitute = 0;
  float score = 0;
  std::int64_t image = 0;
};

struct OutfitRow {
  std::int64_t product = 0;
  std::int64_t source_image = 0;
  std::string slot;
  std::array<std::int32_t, 4> box{};
  std::int32_t rank = 0;
  std::int64_t item = 0;
  float score = 0;
};

struct RecsFile {
  std::vector<RecsProduct> products;
  std::vector<SubstituteRow> substitutes;
  std::vector<OutfitRow> outfits;
  int top_k = 0, outfit_top_k = 0;
  std::string substitutes_for;
};

// Atomically. Throws InputError on an I/O error.
void WriteRecsFile(const std::filesystem::path& path, const RecsFile& file);
// Throws InputError when the file is not a recs file of this schema version.
RecsFile ReadRecsFile(const std::filesystem::path& path);

}  // namespace lookbook
