// A run's published embed stage, as the later stages read it: the shard files listed in
// RUN/embed/manifest.json, each checked against its recorded size and checksum before HDF5
// parses a byte of it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "store/embed_shard.h"
#include "util/manifest.h"

namespace lookbook {

// An image's id across the catalog: its embed shard and its row in that shard's /images.
// FAISS indexes, dedup.h5 and the recommendation tables use it.
inline std::int64_t ImageId(int shard, std::int64_t row) { return (static_cast<std::int64_t>(shard) << 32) | row; }
inline int ShardOfImageId(std::int64_t id) { return static_cast<int>(id >> 32); }
inline std::int64_t RowOfImageId(std::int64_t id) { return id & 0xFFFFFFFFll; }

struct EmbedRun {
  std::filesystem::path dir;  // RUN/embed
  int shard_count = 0;
  std::vector<ManifestEntry> shards;  // shard k's file entry, in shard order
  std::string manifest_checksum;      // of RUN/embed/manifest.json: later stages' input identity
  // The bundles the embed stage ran (manifest locations; empty when not recorded) and their
  // identities (bundle.json sha256; segmenter's empty when none ran).
  std::filesystem::path model, segmenter;
  std::string model_sha256, segmenter_sha256;
};

// Throws InputError when the run has no valid embed stage or a shard is missing from it
// ("rerun lookbook embed").
EmbedRun ReadEmbedRun(const std::filesystem::path& run);

// The ingest shard embed shard k was made from, as rows of RUN/ingest/shard-0000k.csv (its
// columns: catalog/ingest.h kIngestShardHeader; row i is the shard's /images row i). Throws
// InputError when that file is not the one the embed record names (checksum) or its row count
// differs from `images`.
std::vector<std::vector<std::string>> ReadIngestRows(const std::filesystem::path& run, const EmbedRun& embed, int shard,
                                                     std::size_t images);
// Column positions in those rows.
enum IngestColumn {
  kIngestProductId = 0,
  kIngestColumn,
  kIngestImage,
  kIngestFile,
  kIngestCategory,
  kIngestInStock,
  kIngestTitle,
  kIngestRow
};

// Shard k, verified first. Throws InputError naming the file on a size or checksum mismatch.
EmbedShard ReadVerifiedShard(const EmbedRun& embed, int shard);

}  // namespace lookbook
