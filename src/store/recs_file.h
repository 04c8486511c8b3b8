// RUN/recs/recs.h5: the recommendation stage's tables by index, for systems that read HDF5.
// Products are rows of /products; images are 64-bit image ids (store/embed_run.h ImageId).
// Schema (schema_version 1): docs/outputs.md#recsh5.
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
