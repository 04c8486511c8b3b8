// The ingest stage: read the catalog CSV, validate every row and image reference, and split
// the accepted products into deterministic shards.
//
// Outputs under RUN/ingest/: shard-K.csv (one line per accepted image reference; products in
// id order within a shard, CanonicalShardOrder), rejects.csv and the manifest (docs/outputs.md#ingest).
//
// Counts: rows_in == rows_ok + rows_rejected and images_in == images_ok + images_rejected,
// checked before anything is published. images_in counts the non-empty image cells of rows
// whose structure and id were valid (a row rejected earlier has no image count). A row
// whose id repeats an earlier row's is rejected whatever happens to the earlier row.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "catalog/columns.h"
#include "util/manifest.h"
#include "util/options.h"
#include "util/stage_report.h"

namespace lookbook {

// The defaults are the option table's (IngestOptionTable, ingest.cpp); config/README.md is
// generated from it.
struct IngestOptions {
  std::filesystem::path catalog;
  std::filesystem::path images;
  std::filesystem::path run;
  int shards = 16;
  std::string layout = "default";
  ColumnMapping columns;
  std::uint64_t max_image_bytes = 64ull << 20;
  int io_threads = 16;  // parallel stat calls: image checks are I/O-bound on real file systems
  RerunPolicy rerun = RerunPolicy::kReuseValid;
  std::string code_version;
  std::size_t chunk_rows = 65536;  // rows validated per parallel round (bounds memory)
};

inline constexpr const char* kIngestShardHeader =
    "product_id,column,image,file,category,in_stock,title,row,size,mtime_ns";
inline constexpr std::size_t kIngestShardColumns = 10;

// What the embed stage takes of an ingest shard's rows (image key, reference, file), as
// "rows:" + an xxh3 over them: the input identity embed records for RUN/ingest/shard-K.csv, so
// that a row number, title, category or stock flag that changes is not a change for embed.
// `keys` are "<product_id>/<column>", in shard order.
std::string IngestRowsChecksum(const std::vector<std::string>& keys, const std::vector<std::string>& references,
                               const std::vector<std::string>& files);
// The same, from the shard file's bytes. Throws InputError when they are not an ingest shard.
std::string IngestRowsChecksum(const std::string& shard_bytes);

// An ingest shard's bytes (header and rows, rows in catalog order) with its rows in the shard's
// canonical order: by product id (bytewise), a product's images in column order. Where a
// product's row sits in the catalog then changes no shard's order, and so no embed shard's key
// (only the `row` cells change). Throws InputError when `bytes` are not an ingest shard.
std::string CanonicalShardOrder(const std::string& bytes);

// The options of `lookbook ingest`, declared once (util/options.h).
const OptionTable<IngestOptions>& IngestOptionTable();

// Runs the stage; returns its report (counts, steps). Throws InputError when the catalog
// or image root is unusable or an output cannot be written.
StageReport RunIngest(const IngestOptions& options);

}  // namespace lookbook
