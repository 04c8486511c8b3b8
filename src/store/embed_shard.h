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
// model_sha256 (of the bundle's bundle.json), config_hash, code_version.
//
// catalog.h5 has the same /images datasets as HDF5 virtual datasets over every shard file
// (shard order, then row order), plus /images/shard (int32) saying which shard a row is in.
// Its source file names are relative, so the folder can be moved as a whole.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lookbook {

inline constexpr int kEmbedSchemaVersion = 1;

enum class EmbeddingStorage { kFloat32, kFloat16 };

struct EmbedShardMeta {
  int shard = 0;
  int shard_count = 1;
  int embedding_dim = 0;
  std::string model_name;
  std::string model_sha256;
  std::string config_hash;
  std::string code_version;
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

struct EmbedShard {
  EmbedShardMeta meta;
  std::vector<ImageRow> images;
  std::vector<float> embeddings;  // images.size() x meta.embedding_dim, row-major
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
