// `lookbook dedup`: all-pairs near-duplicate detection over the whole catalog.
//
// Every ok image is a query against every index shard (fan-out and merge); the ranks split
// the queries by embed shard (shard k to rank k mod ranks). A rank holds the full-precision
// vectors of its own shards only, and every image's row (key, hashes, colour statistics). Each
// query's candidates come from the IVF index, then are re-ranked exactly: cosine of the
// full-precision embeddings (asked of the rank holding the other image, dist/remote_scores.h),
// and the Hamming distance of the 64-bit perceptual hashes. Candidates at or above the candidate
// floor (cosine 0.9) are then verified, the ranks splitting them, on what embed stored of each
// image (colour statistics, content box, align thumbnail): no image file is read, so the pixels
// compared are the ones embed saw (image/align.h, the cascade).
//
// The rule (DedupRule, store/dedup_file.h), chosen on train-split demo catalogs
// (docs/performance.md#near-duplicates). With verification (the default), a candidate is a duplicate when
//   aligned >= rule.aligned                                   (the pixels agree once aligned), or
//   aligned >= rule.aligned_phash and hamming <= rule.max_hamming   (both image signals agree).
// The embedding finds the candidates; alone it cannot tell a crop of a photo from a look-alike
// garment of the same colour, which the alignment can.
// Without verification (--verify off: runs without their images, like the synthetic 1M
// benchmark), a pair is a duplicate when
//   cosine >= rule.cosine, or cosine >= rule.phash_cosine and hamming <= rule.max_hamming.
// Union-find over the duplicate pairs gives clusters; the keep policy picks one image per
// cluster: the first in catalog order, the largest (pixels), or the first in-stock one.
// A pair of two images of the same product is kind same_product, else cross_product.
//
// The stage is a short list of passes (dedup_stage.cpp): read the inputs, find the candidates
// (each rank its queries), gather them on rank 0, verify them (each rank a share), then cluster
// and publish (rank 0), through the stage skeleton (stage/stage.h).
//
// Files under RUN/dedup/: pairs.csv, clusters.csv, decisions.csv (with --decisions), dedup.h5 and
// the manifest (docs/outputs.md#dedup).
#pragma once

#include <filesystem>
#include <string>

#include "dedup/clusters.h"
#include "dist/world.h"
#include "store/dedup_file.h"
#include "util/manifest.h"
#include "util/options.h"
#include "util/stage_report.h"

namespace lookbook {

// The defaults are the option table's (DedupOptionTable); config/README.md is generated from it.
struct DedupOptions {
  std::filesystem::path run;
  int threads = 1;     // FAISS (OpenMP) threads per rank
  int candidates = 6;  // neighbours asked of the index per query
  int nprobe = 8;      // inverted lists searched per query (docs/decisions.md: 1M dedup benchmark)
  DedupRule rule;
  bool verify_gates = true;      // the cascade's cheap checks before the alignment (image/align.h)
  float candidate_floor = 0.9f;  // candidates at or above this cosine are verified and kept
  float nearest_floor = 0.8f;    // an image's nearest of another product is a candidate down to this (verify on)
  int hash_radius = 4;           // pairs whose pHashes differ in at most this many bits are candidates too (-1: none;
                                 // chosen on tune sets: docs/performance.md#near-duplicates)
  int hash_candidates = 4;       // of those, at most this many per image, the nearest in bits (ties: image id)
  KeepPolicy keep = KeepPolicy::kOriginal;
  int query_batch = 4096;
  RerunPolicy rerun = RerunPolicy::kReuseValid;
  std::filesystem::path previous_run;  // incremental: last night's lists and verified pairs
  std::filesystem::path decisions;     // reviewer decisions (dedup/decisions.h)
  std::string code_version;
};

// The options of `lookbook dedup`, declared once (util/options.h).
const OptionTable<DedupOptions>& DedupOptionTable();

// Collective. Throws InputError when the run has no valid embed or index stage, the index is
// older than the embeddings, or a file does not match its checksum.
StageReport RunDedup(const DedupOptions& options, const MpiWorld& world);

}  // namespace lookbook
