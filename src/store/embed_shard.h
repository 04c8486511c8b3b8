// The embed stage's shard files, RUN/embed/shard-00000.h5, and the catalog-wide view
// RUN/embed/catalog.h5. HDF5 stays inside store/*.cpp; callers see plain structs.
//
// Schema (schema_version 1). One row per image reference of the shard, in ingest order,
// ok or not; strings are variable-length UTF-8 (h5py reads them as str with .asstr()):
//   /images/key        str      "<product_id>/<column>", unique in the catalog
//   /images/product_id str
//   /images/path       str      the reference as written in the catalog
//   /images/file       str      the file under the image root that was read
//   /images/status     int8     0 = ok, otherwise image/decode.h ImageStatus
//   /images/reason     str      "" when ok, else "<status name>[: decoder detail]"
//   /images/embedding  float32 (or float16) [n, d]; unit norm where ok, zeros elsewhere
//   /images/phash      uint8 [n, 8]  64-bit DCT perceptual hash (zeros where not ok)
//   /images/checksum   uint64   xxh3-64 of the source file's bytes (0 when unread)
//   /images/width, /images/height  int32  size stored in the file (0 when unknown)
// Root attributes: schema_version, shard, shard_count, embedding_dim, model_name,
// model_sha256 (of the bundle's bundle.json), config_hash, code_version, segmenter_name and
// segmenter_sha256 ("" when the run has no segmenter).
//
// Garments (schema_version 2; empty datasets when no segmenter ran). One row per garment,
// grouped by image in /images order, within an image by slot, then top-to-bottom:
//   /garments/image_index int64      row in /images
//   /garments/slot        str        top, bottom, dress, outerwear, shoes, bag, accessory
//   /garments/box         int32 [g, 4]  x, y, w, h in the source image's pixels (upright)
//   /garments/area        int64      mask area in source pixels
//   /garments/score       float32    the segmenter's mean confidence over the mask
//   /garments/embedding   as /images/embedding [g, d]: the garment's crop (mask applied,
//                         background filled, padded to square) through the CLIP image encoder
// Masks, one label map per image that kept garments:
//   /masks/image_index    int64      row in /images
//   /masks/labels         uint8 [m, M, M], chunked one map per chunk, deflate-compressed:
//                         M x M samples spread evenly over the whole upright image (sample
//                         (u, v) is the pixel at ((u + 0.5) W / M, (v + 0.5) H / M)); value
//                         k > 0 is the image's k-th garment row, 0 is no garment.
//                         Attribute mask_side = M.
//
// catalog.h5 has the same /images datasets as HDF5 virtual datasets over every shard file
// (shard order, then row order), plus /images/shard (int32) saying which shard a row is in.
// Its source file names are relative, so the folder can be moved as a whole. Garments and
// masks stay in the shard files (their image_index is shard-local).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lookbook {

inline constexpr int kEmbedSchemaVersion = 2;

enum class EmbeddingStorage { kFloat32, kFloat16 };

struct EmbedShardMeta {
  int shard = 0;
  int shard_count = 1;
  int embedding_dim = 0;
  std::string model_name;
  std::string model_sha256;
  std::string config_hash;
  std::string code_version;
  std::string segmenter_name;
  std::string segmenter_sha256;
};

struct ImageRow {
  std::string key;
  std::string product_id;
  std::string path;
  std::string file;
  std::int8_t status = 0;
  std::string reason;
  std::array<std::uint8_t, 8> phash{};
  std::uint64_t checksum = 0;
  std::int32_t width = 0;
  std::int32_t height = 0;
};

struct GarmentRow {
  std::int64_t image_index = 0;
  std::string slot;
  std::array<std::int32_t, 4> box{};
  std::int64_t area = 0;
  float score = 0;
};

struct EmbedShard {
  EmbedShardMeta meta;
  std::vector<ImageRow> images;
  std::vector<float> embeddings;  // images.size() x meta.embedding_dim, row-major
  std::vector<GarmentRow> garments;
  std::vector<float> garment_embeddings;  // garments.size() x meta.embedding_dim
  int mask_side = 0;                      // M; 0 when no masks
  std::vector<std::int64_t> mask_image_index;
  std::vector<std::uint8_t> masks;  // mask_image_index.size() x M x M
};

// Writes `shard` to `path` atomically (temporary file, fsync, rename, fsync of the folder).
// Throws InputError on an I/O error (disk full): no partial file is left under `path`.
void WriteEmbedShard(const std::filesystem::path& path, const EmbedShard& shard, EmbeddingStorage storage);

// Reads a shard file written by WriteEmbedShard (float16 embeddings come back as float).
// Throws InputError when the file is not a readable shard of this schema version.
EmbedShard ReadEmbedShard(const std::filesystem::path& path);

// Writes catalog.h5 (atomically) over the given shard files, which must be in the same folder.
void WriteCatalogView(const std::filesystem::path& path, const std::vector<std::filesystem::path>& shard_files);

}  // namespace lookbook
