// `lookbook eval model`: a model bundle's quality on the demo catalog's test split, recomputed
// from the bundle's files (the numbers in models/demo/*/metrics.json come from here).
//
// CLIP bundles, on the demo catalog (Fashion-MNIST test split, demo rendering, JPEG files
// decoded and preprocessed exactly as the embed stage does):
//   zero_shot_accuracy        share of product shots whose nearest class text is their
//                             category; a class's text is CLIP-style prompt ensembling, the
//                             normalised mean of "a photo of a {class}", "a {class}", "{class}"
//                             and "a photo of the {class}, product photo"
//                             (zero_shot_accuracy_single_prompt: "a photo of a {class}" alone)
//   text_to_image_recall_at_10  share of "a photo of a {colour} {class}" queries (every
//                             colour-class pair in the catalog) with at least one matching
//                             product among the 10 nearest product shots
//   class_prompt_precision_at_10  share of the 10 nearest shots that have the prompt's class
//   near_duplicate_auc        ROC AUC of cosine similarity, planted copies (every pair inside a
//                             cluster of truth/duplicates.csv pairs: copies are transitive)
//                             against every other pair of product shots of the same class
//                             (colour variants included)
//   near_duplicate_threshold  the lowest cosine at which pairs at or above it are >= 99%
//                             planted copies, and the recall of copies at that threshold
//
// Segmenter bundles, on the demo catalog's outfit photos and their label maps:
//   mean_iou                  intersection over union per garment class (top, bottom, dress,
//                             shoes, bag), summed over every photo, averaged over the classes;
//                             the prediction at model resolution is mapped back (nearest,
//                             through the letterbox) to the photo's label map; also
//                             iou_<class> and pixel_accuracy. The same with the prefix random_
//                             on that catalog's outfits composed at random (--outfits random:
//                             other frames, backgrounds, layouts, scales, turns, shadows)
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "model/encoders.h"

namespace lookbook {

struct ModelEvalOptions {
  std::filesystem::path model;
  int items = 400;
  std::uint64_t seed = 7;
  InferenceOptions inference;
};

// Metric name -> value. Throws InputError when the bundle cannot be evaluated.
std::map<std::string, double> EvaluateModel(const ModelEvalOptions& options);

}  // namespace lookbook
