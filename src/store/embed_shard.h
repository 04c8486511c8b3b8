// The embed stage's shard files, RUN/embed/shard-00000.h5, and the catalog-wide view
// RUN/embed/catalog.h5. HDF5 stays inside store/*.cpp; callers see plain structs.
//
// Schema (version kEmbedSchemaVersion below): docs/outputs.md#embed-shard-hdf5, and
// docs/outputs.md#catalogh5 for the catalog-wide view over every shard file.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lookbook {

inline constexpr int kEmbedSchemaVersion = 3;
// The align thumbnails' side (image/align.h AlignView::kSide): /images/align_thumb is n x S x S x 3.
inline constexpr int kAlignThumbSide = 64;

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
  // Computed by embed from the pixels it decoded (image/align.h ThumbStats): what dedup's
  // verification reads instead of the image file.
  std::array<std::int16_t, 4> content_box{};
  std::array<float, 6> colour{};
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
  std::vector<float> embeddings;          // images.size() x meta.embedding_dim, row-major; empty with kRows*
  std::vector<GarmentRow> garments;       // empty with kImages; with kRows*, no garment embeddings or masks
  std::vector<float> garment_embeddings;  // garments.size() x meta.embedding_dim
  int mask_side = 0;                      // M; 0 when no masks
  std::vector<std::int64_t> mask_image_index;
  std::vector<std::uint8_t> masks;  // mask_image_index.size() x M x M
  // images.size() x kAlignThumbSide x kAlignThumbSide x 3 RGB bytes (zeros for an image that is
  // not ok); empty when read without them (ShardParts::kWithoutThumbs).
  std::vector<std::uint8_t> align_thumbs;
};

// What ReadEmbedShard reads: everything; all but the align thumbnails; the /images rows and their
// embeddings (no thumbnails, garments or masks: dedup's own shards); the /images and /garments
// rows alone, without any embedding, thumbnail or mask, and without the images' path, file and
// reason (dedup and recs reading a shard whose vectors another rank holds: the key, product,
// status, hashes, sizes and colour statistics are what they need of it); or those rows with
// the path, file and reason (the report: what it shows, no vector).
enum class ShardParts { kAll, kWithoutThumbs, kImages, kRowsOnly, kRowsWithNames };

// Writes `shard` to `path` atomically (temporary file, fsync, rename, fsync of the folder).
// Throws InputError on an I/O error (disk full): no partial file is left under `path`.
void WriteEmbedShard(const std::filesystem::path& path, const EmbedShard& shard, EmbeddingStorage storage);

// Reads a shard file written by WriteEmbedShard (float16 embeddings come back as float).
// Throws InputError when the file is not a readable shard of this schema version.
EmbedShard ReadEmbedShard(const std::filesystem::path& path, ShardParts parts = ShardParts::kAll);

// The align thumbnails of the given /images rows (ascending, no repeats) of a shard file:
// rows.size() x kAlignThumbSide^2 x 3 bytes, in the order of `rows`. Reads only those rows.
std::vector<std::uint8_t> ReadAlignThumbs(const std::filesystem::path& path, const std::vector<std::int64_t>& rows);

// Writes catalog.h5 (atomically) over the given shard files, which must be in the same folder.
void WriteCatalogView(const std::filesystem::path& path, const std::vector<std::filesystem::path>& shard_files);

// Hands back to the system the memory that reading shards freed and the allocators kept for
// reuse (HDF5's free lists, then the C heap's free pages): for a stage that reads many shards,
// keeps a little of each and then works for a long time (dedup).
void ReleaseReadMemory();

}  // namespace lookbook
