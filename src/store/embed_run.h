// A run's published embed stage, as the later stages read it: the shard files listed in
// RUN/embed/manifest.json, each checked against its recorded size and checksum before HDF5
// parses a byte of it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "store/embed_shard.h"
#include "util/manifest.h"

namespace lookbook {

// An image's id across the catalog: its embed shard and its row in that shard's /images.
// FAISS indexes, dedup.h5 and the recommendation tables use it.
inline std::int64_t ImageId(int shard, std::int64_t row) { return (static_cast<std::int64_t>(shard) << 32) | row; }
inline int ShardOfImageId(std::int64_t id) { return static_cast<int>(id >> 32); }
inline std::int64_t RowOfImageId(std::int64_t id) { return id & 0xFFFFFFFFll; }
// The rank that works on embed shard `shard` of `ranks` (index, dedup, recs: a static split),
// and holds its vectors in dedup and recs.
inline int RankOfShard(int shard, int ranks) { return shard % ranks; }

struct EmbedRun {
  std::filesystem::path dir;  // RUN/embed
  int shard_count = 0;
  std::vector<ManifestEntry> shards;  // shard k's file entry, in shard order
  std::string manifest_checksum;      // of RUN/embed/manifest.json
  // The identities of the bundles the embed stage ran (bundle.json sha256; the segmenter's
  // empty when none ran). Where they were is not trusted from the run folder: a command that
  // needs a bundle is given it, and its sha256 must match (model/bundle.h LoadTrustedBundle).
  std::string model_sha256, segmenter_sha256;
};

// Throws InputError when the run has no published embed stage or a shard is missing from it
// ("rerun lookbook embed").
EmbedRun ReadEmbedRun(const std::filesystem::path& run);

// The rows of RUN/ingest/shard-K.csv for embed shard K's images: the file checked against the
// ingest manifest first, then row i matched to /images row i by image key (its columns:
// catalog/ingest.h kIngestShardHeader). Throws InputError when the file fails its checksum or
// its images are not the embed shard's (ingest ran again since: rerun lookbook embed).
std::vector<std::vector<std::string>> ReadIngestRows(const std::filesystem::path& run, int shard,
                                                     const std::vector<ImageRow>& images);
// The same, for a caller that keeps the shard's image keys in its own rows: `count` images,
// image i's key is key_of(i).
std::vector<std::vector<std::string>> ReadIngestRows(const std::filesystem::path& run, int shard, std::size_t count,
                                                     const std::function<std::string_view(std::size_t)>& key_of);
// Column positions in those rows.
enum IngestColumn {
  kIngestProductId = 0,
  kIngestColumn,
  kIngestImage,
  kIngestFile,
  kIngestCategory,
  kIngestInStock,
  kIngestTitle,
  kIngestRow,
  kIngestSize,
  kIngestMtime
};

// Shard k, verified first, without its align thumbnails (dedup reads those rows it needs with
// ReadAlignThumbs). Throws InputError naming the file on a size or checksum mismatch.
EmbedShard ReadVerifiedShard(const EmbedRun& embed, int shard, ShardParts parts = ShardParts::kWithoutThumbs);

}  // namespace lookbook
