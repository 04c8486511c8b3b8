// The ingest stage: read the catalog CSV, validate every row and image reference, and split
// the accepted products into deterministic shards.
//
// Outputs, all under RUN/ingest/ and published atomically:
//   shard-00000.csv ...  one line per accepted image reference, columns
//       product_id,column,image,file,category,in_stock,title,row
//     product_id  the product's id (Inditex layout: derived from the image file name)
//     column      the catalog column the image came from ("image_2", "IMAGE_VERSION_1")
//     image       the reference exactly as written in the catalog (path or URL)
//     file        the image file that was checked, relative to the image root, with '.', '..'
//                 and symlinks resolved ("a/b.jpg")
//     category    as in the catalog (empty when the column is absent)
//     in_stock    1 or 0
//     title       as in the catalog
//     row         1-based data record of the catalog (the header is row 0)
//   Products keep catalog order within a shard, a product's images keep column order.
//   Every shard file exists, with its header, even when empty.
//   rejects.csv   row,product_id,column,path,reason (see reject.h), in catalog order; a
//                 rejected row has empty column and path; a rejected image of an accepted
//                 row appears on its own.
//   manifest.json inputs (catalog checksum), options, counts, every output with checksum.
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
