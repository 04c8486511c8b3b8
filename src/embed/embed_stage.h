// The embed stage: every rank takes shards (handed out dynamically, largest first), decodes each
// image once, runs the CLIP image encoder in fixed batches while decode threads prepare the next
// ones, and writes one HDF5 file per shard.
//
// Work is keyed to content: a shard's key is built from its images' keys, references, files and
// content checksums, the model's sha256 and the options that change embeddings (not from the
// ingest shard's bytes: row numbers, titles, categories and stock flags change no embedding).
// A shard whose key matches an output already published, or one waiting in RUN/.work/embed
// (made by `embed --shard K`, or by a run that was stopped), is reused; a changed image redoes
// exactly the shards that hold it. When every shard has its output, the stage is published as a
// whole (stage/stage.h): shard-K.h5 and its record shard-K.json per shard, catalog.h5 over every
// shard, and the manifest (docs/outputs.md#embed). `--shard K` computes one shard into the work
// folder and publishes nothing; the next plain `embed` publishes it with the others.
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
#include "util/options.h"
#include "util/stage_report.h"

namespace lookbook {

// The version of what an image's embedding and row are computed by (decoding, preprocessing,
// the perceptual hash, garment extraction, the shard file's layout), part of every shard's key.
// Bump it with any change that alters the outputs for the same image and model; the git
// version is not in the key, so that a deploy that changes nothing here re-embeds nothing.
inline constexpr int kEmbedVersion = 1;

// The defaults are the option table's (EmbedOptionTable); config/README.md is generated from it.
struct EmbedOptions {
  std::filesystem::path run;
  std::filesystem::path model;    // CLIP bundle folder
  std::optional<int> only_shard;  // --shard K: this shard alone
  InferenceOptions inference;
  std::string device = "cpu";  // as given: cpu, cuda or cuda:N (inference.device parsed from it)
  int threads = 1;             // LibTorch intra-op (and OpenBLAS) threads
  int decode_threads = 2;
  int batch_size = 32;
  DecodeLimits limits;  // min_side is set from the model's input size
  EmbeddingStorage storage = EmbeddingStorage::kFloat32;
  RerunPolicy rerun = RerunPolicy::kReuseValid;
  std::string code_version;
  double progress_seconds = 10;
  // Garments (optional): a segmenter bundle runs on the selected images, on the same decoded
  // pixels; each garment's crop goes through the CLIP image encoder.
  std::filesystem::path segmenter;                      // empty: no garments
  Precision segmenter_precision = Precision::kFloat32;  // on inference.device
  double max_reject_rate = 0.5;                         // above it the stage fails and publishes nothing
  std::uint64_t decode_memory = 1ull << 30;             // bytes the decode threads of a rank may hold at once
  std::string segment_images = "auto";                  // "all", "auto" (keep images with >= 2 slots) or a column name
  std::string slot_map;                                 // class=slot overrides of the bundle's defaults
  GarmentOptions garments;
  int segment_batch_size = 1;  // padded to full size: on a CPU, more only pads (docs/performance.md#nightly-runs)
  // Nightly reuse (docs/operations.md#nightly-runs): a finished run whose outputs may be reused
  // for images whose content is unchanged; empty: none. `rehash` reads every image's bytes
  // instead of trusting a file whose path, size and modification time match that run's.
  std::filesystem::path previous_run;
  bool rehash = false;
};

// The options of `lookbook embed`, declared once (util/options.h).
const OptionTable<EmbedOptions>& EmbedOptionTable();

// Collective: every rank calls it with the same options. Returns the summed report (valid on
// every rank; rank 0 prints it). Throws InputError when the run has no valid ingest stage,
// the bundle does not load, or an output cannot be written.
StageReport RunEmbed(const EmbedOptions& options, const MpiWorld& world);

}  // namespace lookbook
