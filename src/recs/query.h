// `lookbook query`: a new photo (or a text) against a published run.
//
// A photo goes through what the embed stage did to the catalog's outfit photos, with the same
// bundles and garment settings (read from RUN/embed/manifest.json): decode, segment, garments,
// crops through the CLIP image encoder. Each garment is then matched against the in-stock
// products of its slot (the slot table of RUN/recs/recs.h5), by the best cosine between the
// garment crop and a product's shots (recs/product_search.h). A text goes through the CLIP text
// encoder and is matched against every in-stock product.
//
// The engine loads the models, the catalog's vectors and the index once; ask it for as many
// photos and texts as needed.
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/encoders.h"

namespace lookbook {

struct QueryOptions {
  std::filesystem::path run;
  std::filesystem::path model;        // CLIP bundle; its sha256 must be the one the embed stage ran
  std::filesystem::path segmenter;    // segmenter bundle; likewise
  std::filesystem::path models_root;  // where to find them by sha256 when not given
  int top_k = 5;
  int nprobe = 16;
  bool include_out_of_stock = false;
  InferenceOptions inference;  // both models, on this device and precision
};

struct QueryMatch {
  std::string product_id;
  float score = 0;
};

struct GarmentHit {
  std::string slot;
  std::array<int, 4> box{};  // x, y, w, h in the photo's (upright) pixels
  float confidence = 0;      // the segmenter's mean confidence over the garment
  std::vector<QueryMatch> matches;
};

struct PhotoResult {
  std::string image;
  std::string error;  // empty when the photo was read; else why not (the photo is rejected)
  std::vector<GarmentHit> garments;
};

class QueryEngine {
 public:
  // Throws InputError when the run lacks a valid embed, index or recs stage, the bundles cannot
  // be found or are not the ones the embed stage ran, or the embed stage ran no segmenter (for
  // photos; texts still work).
  static QueryEngine Load(const QueryOptions& options);
  QueryEngine(QueryEngine&&) noexcept;
  ~QueryEngine();

  // A photo that cannot be read or decoded comes back with `error` set, never an exception.
  PhotoResult QueryPhoto(const std::filesystem::path& photo) const;
  std::vector<QueryMatch> QueryText(const std::string& text) const;
  // What the text tower's tokenizer makes of `text` (cut to the context, unknown words).
  TextTokens CountText(const std::string& text) const;

 private:
  struct Impl;
  explicit QueryEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lookbook
