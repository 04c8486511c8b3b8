// `lookbook index`: one FAISS index per embed shard, sharing one trained quantizer.
//
// Every rank reads its embed shards (shard k goes to rank k mod ranks), draws its part of a
// random training sample (each shard contributes in proportion to its ok images, rows
// chosen by a seeded shuffle), rank 0 gathers the sample, trains the index once and
// broadcasts it; every rank adds its shards' ok vectors under their image ids
// (index/vector_index.h: shard << 32 | row in the shard's /images) and publishes them.
//
// Files under RUN/index/: trained.faiss, shard-K.faiss (FAISS format) and the manifest
// (docs/outputs.md#index).
// A rerun skips the stage when the manifest's inputs, options and code version match and
// every output still has its checksum.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "dist/world.h"
#include "index/vector_index.h"
#include "store/embed_run.h"
#include "util/manifest.h"
#include "util/options.h"
#include "util/stage_report.h"

namespace lookbook {

// The defaults are the option table's (IndexOptionTable); config/README.md is generated from it.
struct IndexOptions {
  std::filesystem::path run;
  int threads = 1;                           // FAISS (OpenMP) threads per rank
  std::string factory = "auto";              // FAISS index_factory string, or auto
  std::uint64_t memory_budget = 8ull << 30;  // auto: bytes the codes of all shards may take
  std::int64_t train_sample = 131072;
  // Nightly: a finished run whose trained quantizer is reused when the model, the dimension and
  // the factory match and the vector count moved by less than retrain_growth (a fraction).
  std::filesystem::path previous_run;
  double retrain_growth = 0.2;  // at most this many training vectors
  std::uint64_t seed = 1;
  RerunPolicy rerun = RerunPolicy::kReuseValid;
  std::string code_version;
};

// The options of `lookbook index`, declared once (util/options.h).
const OptionTable<IndexOptions>& IndexOptionTable();

// Collective. Throws InputError when the run has no complete embed stage, a shard file does
// not match its checksum, or FAISS rejects the factory.
StageReport RunIndex(const IndexOptions& options, const MpiWorld& world);

// The published index of the run as one searchable index: the manifest verified (every file's
// checksum, before FAISS parses it) and made from the current embed shards. `manifest`
// (optional) receives the index manifest. Throws InputError naming the fix otherwise.
ShardedIndex ReadRunIndex(const std::filesystem::path& run, const EmbedRun& embed, StageManifest* manifest = nullptr);

}  // namespace lookbook
