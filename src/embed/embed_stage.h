// The embed stage: every rank takes shards (handed out dynamically), decodes each image
// once, runs the CLIP image encoder in fixed batches while decode threads prepare the next
// ones, and publishes one HDF5 file per shard (schema in store/embed_shard.h).
//
// Files under RUN/embed/: shard-K.h5 per shard, its record shard-K.json (a rerun skips a shard
// whose record matches and whose output still has its checksum), catalog.h5 over every shard,
// and the stage manifest (docs/outputs.md#embed).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "dist/world.h"
#include "garments/garments.h"
#include "image/decode.h"
#include "model/encoders.h"
#include "store/embed_shard.h"
#include "util/manifest.h"
#include "util/stage_report.h"

namespace lookbook {

struct EmbedOptions {
  std::filesystem::path run;
  std::filesystem::path model;    // CLIP bundle folder
  std::optional<int> only_shard;  // --shard K: this shard alone
  InferenceOptions inference;
  int decode_threads = 2;
  int batch_size = 32;
  DecodeLimits limits;  // min_side is set from the model's input size
  EmbeddingStorage storage = EmbeddingStorage::kFloat32;
  RerunPolicy rerun = RerunPolicy::kReuseValid;
  std::string code_version;
  double progress_seconds = 10;
  // Garments (optional): a segmenter bundle runs on the selected images, on the same decoded
  // pixels; each garment's crop goes through the CLIP image encoder.
  std::filesystem::path segmenter;      // empty: no garments
  std::string segment_images = "auto";  // "all", "auto" (keep images with >= 2 slots) or a column name
  std::string slot_map;                 // class=slot overrides of the bundle's defaults
  GarmentOptions garments;
  int segment_batch_size = 8;
};

// Collective: every rank calls it with the same options. Returns the summed report (valid on
// every rank; rank 0 prints it). Throws InputError when the run has no valid ingest stage,
// the bundle does not load, or an output cannot be written.
StageReport RunEmbed(const EmbedOptions& options, const MpiWorld& world);

}  // namespace lookbook
