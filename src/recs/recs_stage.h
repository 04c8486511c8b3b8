// `lookbook recs`: the recommendation tables for the whole catalog.
//
// Substitutes: for every product (or only the out-of-stock ones), the top-k in-stock products
// of the same category, never itself nor a product sharing a near-duplicate cluster with it
// (RUN/dedup). Similarity between products is the best pair of their shots
// (recs/product_search.h). The stock and category filter acts inside the index search.
// Category: the catalog's; where it is empty, zero-shot: the product's mean shot embedding
// against the CLIP text encoder's embedding of `category_prompt` for every candidate
// category (`categories`, else every category the catalog names), the best one wins. A category
// named by a code the text tower cannot read ("C-104") is described in words by
// `category_names` ("C-104=denim jacket"): the prompt uses the words, the product gets the code.
//
// Outfits ("complete the look"): for every outfit photo of a product (product_catalog.h), every
// slot the embed stage found in it other than the product's own slot is matched against the
// in-stock products of that slot (category -> slot: `category_slots`); the slot's garment
// crops are the query vectors; top outfit_top_k per (photo, slot).
//
// Ranks split the products by embed shard (shard k to rank k mod ranks); rank 0 gathers and
// publishes substitutes.csv, outfits.csv, recs.h5 and the manifest (docs/outputs.md#recs).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "dist/world.h"
#include "util/manifest.h"
#include "util/options.h"
#include "util/stage_report.h"

namespace lookbook {

// The defaults are the option table's (RecsOptionTable); config/README.md is generated from it.
struct RecsOptions {
  std::filesystem::path run;
  int threads = 1;  // FAISS (OpenMP) threads per rank
  int top_k = 10;
  int outfit_top_k = 10;
  bool only_out_of_stock = false;                   // substitutes for every product, or only out-of-stock ones
  std::string category_slots;                       // "Category=slot,..." (product_catalog.h ParseCategorySlots)
  std::vector<std::string> categories;              // zero-shot candidates; empty: the catalog's categories
  std::string category_prompt = "a photo of a {}";  // {} is the category, lower case
  std::string category_names;                       // "Category=words,...": what the prompt says for it
  std::filesystem::path model;                      // CLIP bundle for zero-shot (sha256: the embed stage's)
  std::filesystem::path models_root;                // where to find it by sha256 when not given
  int nprobe = 16;
  int batch = 1024;  // products per index search call
  RerunPolicy rerun = RerunPolicy::kReuseValid;
  std::string code_version;
};

// The options of `lookbook recs`, declared once (util/options.h).
const OptionTable<RecsOptions>& RecsOptionTable();

// Collective. Throws InputError when the run lacks a valid embed, index or dedup stage, or a
// file fails its checksum.
StageReport RunRecs(const RecsOptions& options, const MpiWorld& world);

}  // namespace lookbook
