// The ingest stage: read the catalog CSV, validate every row and image reference, and split
// the accepted products into deterministic shards.
//
// Outputs under RUN/ingest/: shard-K.csv (one line per accepted image reference; products keep
// catalog order within a shard), rejects.csv and the manifest (docs/outputs.md#ingest).
//
// Counts: rows_in == rows_ok + rows_rejected and images_in == images_ok + images_rejected,
// checked before anything is published. images_in counts the non-empty image cells of rows
// whose structure and id were valid (a row rejected earlier has no image count). A row
// whose id repeats an earlier row's is rejected whatever happens to the earlier row.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "catalog/columns.h"
#include "util/manifest.h"
#include "util/stage_report.h"

namespace lookbook {

struct IngestOptions {
  std::filesystem::path catalog;
  std::filesystem::path images;
  std::filesystem::path run;
  int shards = 16;
  ColumnMapping columns;
  std::uint64_t max_image_bytes = 64ull << 20;
  int io_threads = 16;  // parallel stat calls: image checks are I/O-bound on real file systems
  RerunPolicy rerun = RerunPolicy::kReuseValid;
  std::string code_version;
  std::size_t chunk_rows = 65536;  // rows validated per parallel round (bounds memory)
};

inline constexpr const char* kIngestShardHeader = "product_id,column,image,file,category,in_stock,title,row";

// Runs the stage; returns its report (counts, steps). Throws InputError when the catalog
// or image root is unusable or an output cannot be written.
StageReport RunIngest(const IngestOptions& options);

}  // namespace lookbook
