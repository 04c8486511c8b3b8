// Garments from a segmenter's per-pixel classes: the model's classes mapped onto lookbook's
// slots, small blobs cleaned up, connected components kept above a minimum area, and for each
// garment its box, area, confidence, a compact mask and a crop for the CLIP image encoder.
//
// Frames: the segmenter sees the image through its bundle's preprocessing (image/preprocess.h
// ModelFrame); boxes and areas come back in the source file's pixels (the decoder may have
// downscaled, so decoded pixels are scaled by source / decoded size).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "image/decode.h"
#include "image/preprocess.h"

namespace lookbook {

// The slots every segmenter maps onto (a 4-class and an 18-class model alike).
enum class Slot : std::uint8_t { kTop, kBottom, kDress, kOuterwear, kShoes, kBag, kAccessory };
inline constexpr int kSlotCount = 7;
const char* SlotName(Slot slot);
bool ParseSlot(std::string_view text, Slot* slot);

// Model class index -> slot; classes with no slot (background, skin, hair) are background.
struct SlotMap {
  std::vector<int> slot_of_class;  // -1: background
};

// The map from the bundle's defaults (class name -> slot name), overridden by `spec`, a
// comma-separated list of class=slot or class=none (e.g. "upper-clothes=top,scarf=none").
// Throws InputError for an unknown class or slot name.
SlotMap MakeSlotMap(const std::vector<std::string>& class_names, const std::map<std::string, std::string>& defaults,
                    std::string_view spec);

struct GarmentOptions {
  double min_area = 0.005;       // a garment covers at least this fraction of the image
  double min_score = 0.7;        // and the segmenter's mean confidence over it is at least this
  int cleanup_radius = 1;        // morphological opening per slot, in segmenter pixels (0: off)
  int mask_side = 128;           // stored label map: mask_side x mask_side over the whole image
  double crop_margin = 0.08;     // the crop's box grows by this fraction of its long side
  std::uint8_t crop_fill = 245;  // grey outside the garment's mask and in the padding
  // --segment-images auto keeps an image's garments only when it is an outfit photo: at least
  // two slots each hold a garment of at least outfit_min_area of the image with a mean
  // confidence of at least outfit_min_score (IsOutfitPhoto). Stricter than a garment's own
  // bar: a lone product shot's spurious second slot is small or unsure (docs/performance.md#garments).
  double outfit_min_area = 0.03;
  double outfit_min_score = 0.9;
};

struct Garment {
  Slot slot = Slot::kTop;
  std::array<std::int32_t, 4> box{};  // x, y, w, h in source pixels
  std::int64_t area = 0;              // source pixels
  float score = 0;                    // the segmenter's mean confidence over the garment
};

// One image's garments and their label map: the model-frame components (for crops) and the
// stored mask (mask_side x mask_side over the decoded image; value k = garment k, 1-based,
// 0 = none).
struct GarmentSet {
  std::vector<Garment> garments;
  std::vector<std::uint8_t> mask;
  // Internal to MakeGarmentCrop: the component map in the segmenter's frame.
  int model_side = 0;
  std::vector<std::uint8_t> components;
  FrameMapping frame;
  std::vector<std::array<int, 4>> decoded_boxes;  // x0, y0, x1, y1 (exclusive) in decoded pixels
};

// classes/confidence: model_side x model_side from the segmenter for an image decoded at
// decoded_width x decoded_height (source file source_width x source_height) and preprocessed
// with `spec`. At most 255 garments per image (the largest are kept).
GarmentSet ExtractGarments(const std::uint8_t* classes, const float* confidence, const PreprocessSpec& spec,
                           int decoded_width, int decoded_height, int source_width, int source_height,
                           const SlotMap& slots, const GarmentOptions& options);

// The number of distinct slots among the garments.
int DistinctSlots(const GarmentSet& set);

// Whether `set`, found in an image of image_pixels source pixels, is an outfit photo's: at least
// two distinct slots among its garments of at least options.outfit_min_area of the image and
// options.outfit_min_score confidence.
bool IsOutfitPhoto(const GarmentSet& set, std::int64_t image_pixels, const GarmentOptions& options);

// Garment k's crop from the decoded image: pixels outside its mask filled with crop_fill, the
// box grown by crop_margin and padded to a square of the same grey.
RgbImage MakeGarmentCrop(const RgbImage& decoded, const GarmentSet& set, std::size_t k, const GarmentOptions& options);

}  // namespace lookbook
