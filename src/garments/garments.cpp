#include "garments/garments.h"

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <tuple>

#include "util/error.h"
#include "util/text.h"

namespace lookbook {
namespace {

constexpr const char* kSlotNames[kSlotCount] = {"top", "bottom", "dress", "outerwear", "shoes", "bag", "accessory"};

// Model-frame pixel (x, y) -> decoded pixel, or false when it lies in the letterbox.
bool ToDecoded(const FrameMapping& frame, int x, int y, int width, int height) {
  const double dx = (x + 0.5 - frame.offset_x) / frame.scale_x;
  const double dy = (y + 0.5 - frame.offset_y) / frame.scale_y;
  return dx >= 0 && dy >= 0 && dx < width && dy < height;
}

// The component label (0: none) under decoded pixel (x, y).
std::uint8_t ComponentAt(const GarmentSet& set, double x, double y) {
  const int mx = static_cast<int>(std::floor(x * set.frame.scale_x + set.frame.offset_x));
  const int my = static_cast<int>(std::floor(y * set.frame.scale_y + set.frame.offset_y));
  if (mx < 0 || my < 0 || mx >= set.model_side || my >= set.model_side) return 0;
  return set.components[static_cast<std::size_t>(my) * static_cast<std::size_t>(set.model_side) +
                        static_cast<std::size_t>(mx)];
}

}  // namespace

const char* SlotName(Slot slot) { return kSlotNames[static_cast<int>(slot)]; }

bool ParseSlot(std::string_view text, Slot* slot) {
  for (int s = 0; s < kSlotCount; ++s) {
    if (text == kSlotNames[s]) {
      *slot = static_cast<Slot>(s);
      return true;
    }
  }
  return false;
}

SlotMap MakeSlotMap(const std::vector<std::string>& class_names, const std::map<std::string, std::string>& defaults,
                    std::string_view spec) {
  std::map<std::string, std::string> wanted = defaults;
  std::size_t start = 0;
  while (start <= spec.size() && !TrimBlanks(spec).empty()) {
    const std::size_t comma = std::min(spec.find(',', start), spec.size());
    const std::string item = TrimBlanks(spec.substr(start, comma - start));
    if (!item.empty()) {
      const auto equals = item.find('=');
      if (equals == std::string::npos) throw InputError("garment slot map: '" + item + "' is not class=slot");
      wanted[TrimBlanks(item.substr(0, equals))] = TrimBlanks(item.substr(equals + 1));
    }
    start = comma + 1;
  }
  SlotMap map;
  map.slot_of_class.assign(class_names.size(), -1);
  for (const auto& [name, slot_name] : wanted) {
    const auto it = std::find(class_names.begin(), class_names.end(), name);
    if (it == class_names.end()) throw InputError("garment slot map: the segmenter has no class '" + name + "'");
    Slot slot;
    if (slot_name == "none") continue;
    if (!ParseSlot(slot_name, &slot)) {
      throw InputError("garment slot map: '" + slot_name +
                       "' is not a slot (top, bottom, dress, outerwear, shoes, bag, accessory, none)");
    }
    map.slot_of_class[static_cast<std::size_t>(it - class_names.begin())] = static_cast<int>(slot);
  }
  return map;
}

GarmentSet ExtractGarments(const std::uint8_t* classes, const float* confidence, const PreprocessSpec& spec,
                           int decoded_width, int decoded_height, int source_width, int source_height,
                           const SlotMap& slots, const GarmentOptions& options) {
  LB_CHECK(decoded_width > 0 && decoded_height > 0 && source_width > 0 && source_height > 0,
           "garments of an empty image");
  const int side = spec.size;
  GarmentSet set;
  set.model_side = side;
  set.frame = ModelFrame(decoded_width, decoded_height, spec);
  set.components.assign(static_cast<std::size_t>(side) * static_cast<std::size_t>(side), 0);

  // Per-pixel slot; the letterbox and unmapped classes are background.
  std::vector<int> slot_of(static_cast<std::size_t>(side) * static_cast<std::size_t>(side), -1);
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      const std::size_t i = static_cast<std::size_t>(y) * static_cast<std::size_t>(side) + static_cast<std::size_t>(x);
      const std::size_t c = classes[i];
      LB_CHECK(c < slots.slot_of_class.size(), "segmenter class outside the slot map");
      if (ToDecoded(set.frame, x, y, decoded_width, decoded_height)) slot_of[i] = slots.slot_of_class[c];
    }
  }

  struct Candidate {
    Slot slot;
    int x0, y0, x1, y1;  // model frame, exclusive end
    std::int64_t pixels;
    double confidence_sum;
    std::vector<std::size_t> members;
  };
  std::vector<Candidate> candidates;
  const double decoded_per_model_pixel = 1.0 / (set.frame.scale_x * set.frame.scale_y);
  const double decoded_area = static_cast<double>(decoded_width) * decoded_height;
  const cv::Mat kernel = options.cleanup_radius > 0
                             ? cv::getStructuringElement(
                                   cv::MORPH_ELLIPSE, {2 * options.cleanup_radius + 1, 2 * options.cleanup_radius + 1})
                             : cv::Mat();
  for (int s = 0; s < kSlotCount; ++s) {
    cv::Mat binary(side, side, CV_8U, cv::Scalar(0));
    bool any = false;
    for (int y = 0; y < side; ++y) {
      auto* row = binary.ptr<std::uint8_t>(y);
      for (int x = 0; x < side; ++x) {
        if (slot_of[static_cast<std::size_t>(y) * static_cast<std::size_t>(side) + static_cast<std::size_t>(x)] == s) {
          row[x] = 1;
          any = true;
        }
      }
    }
    if (!any) continue;
    if (!kernel.empty()) cv::morphologyEx(binary, binary, cv::MORPH_OPEN, kernel);
    cv::Mat labels, stats, centroids;
    const int count = cv::connectedComponentsWithStats(binary, labels, stats, centroids, 8, CV_32S);
    std::vector<Candidate> found(static_cast<std::size_t>(std::max(count - 1, 0)));
    for (int y = 0; y < side; ++y) {
      const auto* row = labels.ptr<std::int32_t>(y);
      for (int x = 0; x < side; ++x) {
        if (row[x] == 0) continue;
        const std::size_t i =
            static_cast<std::size_t>(y) * static_cast<std::size_t>(side) + static_cast<std::size_t>(x);
        Candidate& c = found[static_cast<std::size_t>(row[x] - 1)];
        c.members.push_back(i);
        c.confidence_sum += confidence != nullptr ? confidence[i] : 1.0;
      }
    }
    for (int k = 1; k < count; ++k) {
      Candidate& c = found[static_cast<std::size_t>(k - 1)];
      c.slot = static_cast<Slot>(s);
      c.x0 = stats.at<int>(k, cv::CC_STAT_LEFT);
      c.y0 = stats.at<int>(k, cv::CC_STAT_TOP);
      c.x1 = c.x0 + stats.at<int>(k, cv::CC_STAT_WIDTH);
      c.y1 = c.y0 + stats.at<int>(k, cv::CC_STAT_HEIGHT);
      c.pixels = stats.at<int>(k, cv::CC_STAT_AREA);
      if (static_cast<double>(c.pixels) * decoded_per_model_pixel >= options.min_area * decoded_area &&
          c.confidence_sum / static_cast<double>(c.pixels) >= options.min_score) {
        candidates.push_back(std::move(c));
      }
    }
  }
  // At most 255 (the label map is 8-bit): the largest; then a fixed order, slot then position.
  if (candidates.size() > 255) {
    std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
      return a.pixels > b.pixels || (a.pixels == b.pixels && a.members.front() < b.members.front());
    });
    candidates.resize(255);
  }
  std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return std::make_tuple(a.slot, a.y0, a.x0, a.members.front()) <
           std::make_tuple(b.slot, b.y0, b.x0, b.members.front());
  });

  const double to_source_x = static_cast<double>(source_width) / decoded_width;
  const double to_source_y = static_cast<double>(source_height) / decoded_height;
  for (std::size_t k = 0; k < candidates.size(); ++k) {
    const Candidate& c = candidates[k];
    for (const std::size_t i : c.members) set.components[i] = static_cast<std::uint8_t>(k + 1);
    // The component's model-frame box back in decoded pixels, clamped to the image.
    const int dx0 =
        std::clamp(static_cast<int>(std::floor((c.x0 - set.frame.offset_x) / set.frame.scale_x)), 0, decoded_width - 1);
    const int dy0 = std::clamp(static_cast<int>(std::floor((c.y0 - set.frame.offset_y) / set.frame.scale_y)), 0,
                               decoded_height - 1);
    const int dx1 = std::clamp(static_cast<int>(std::ceil((c.x1 - set.frame.offset_x) / set.frame.scale_x)), dx0 + 1,
                               decoded_width);
    const int dy1 = std::clamp(static_cast<int>(std::ceil((c.y1 - set.frame.offset_y) / set.frame.scale_y)), dy0 + 1,
                               decoded_height);
    set.decoded_boxes.push_back({dx0, dy0, dx1, dy1});
    Garment garment;
    garment.slot = c.slot;
    const auto sx0 = static_cast<std::int32_t>(std::lround(dx0 * to_source_x));
    const auto sy0 = static_cast<std::int32_t>(std::lround(dy0 * to_source_y));
    garment.box = {sx0, sy0, std::max<std::int32_t>(1, static_cast<std::int32_t>(std::lround(dx1 * to_source_x)) - sx0),
                   std::max<std::int32_t>(1, static_cast<std::int32_t>(std::lround(dy1 * to_source_y)) - sy0)};
    garment.area = std::llround(static_cast<double>(c.pixels) * decoded_per_model_pixel * to_source_x * to_source_y);
    garment.score = static_cast<float>(c.confidence_sum / static_cast<double>(c.pixels));
    set.garments.push_back(garment);
  }

  // The stored mask: mask_side x mask_side samples over the whole decoded image.
  const int m = options.mask_side;
  set.mask.assign(static_cast<std::size_t>(m) * static_cast<std::size_t>(m), 0);
  if (!set.garments.empty()) {
    for (int v = 0; v < m; ++v) {
      for (int u = 0; u < m; ++u) {
        set.mask[static_cast<std::size_t>(v) * static_cast<std::size_t>(m) + static_cast<std::size_t>(u)] =
            ComponentAt(set, (u + 0.5) * decoded_width / m, (v + 0.5) * decoded_height / m);
      }
    }
  }
  return set;
}

int DistinctSlots(const GarmentSet& set) {
  bool seen[kSlotCount] = {};
  int distinct = 0;
  for (const auto& garment : set.garments) {
    auto& s = seen[static_cast<int>(garment.slot)];
    if (!s) ++distinct;
    s = true;
  }
  return distinct;
}

bool IsOutfitPhoto(const GarmentSet& set, std::int64_t image_pixels, const GarmentOptions& options) {
  bool seen[kSlotCount] = {};
  int distinct = 0;
  for (const auto& garment : set.garments) {
    if (static_cast<double>(garment.area) < options.outfit_min_area * static_cast<double>(image_pixels) ||
        garment.score < options.outfit_min_score) {
      continue;
    }
    auto& s = seen[static_cast<int>(garment.slot)];
    if (!s) ++distinct;
    s = true;
  }
  return distinct >= 2;
}

RgbImage MakeGarmentCrop(const RgbImage& decoded, const GarmentSet& set, std::size_t k, const GarmentOptions& options) {
  LB_CHECK(k < set.garments.size() && k < set.decoded_boxes.size(), "no such garment");
  const auto [x0, y0, x1, y1] = set.decoded_boxes[k];
  const int w = x1 - x0, h = y1 - y0;
  const int side = std::max(1, static_cast<int>(std::lround(std::max(w, h) * (1.0 + 2.0 * options.crop_margin))));
  RgbImage crop;
  crop.width = side;
  crop.height = side;
  crop.rgb.assign(static_cast<std::size_t>(side) * static_cast<std::size_t>(side) * 3, options.crop_fill);
  const int left = (side - w) / 2, top = (side - h) / 2;
  const auto label = static_cast<std::uint8_t>(k + 1);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      if (ComponentAt(set, x + 0.5, y + 0.5) != label) continue;
      const std::uint8_t* from =
          decoded.rgb.data() +
          (static_cast<std::size_t>(y) * static_cast<std::size_t>(decoded.width) + static_cast<std::size_t>(x)) * 3;
      std::uint8_t* to = crop.rgb.data() + (static_cast<std::size_t>(y - y0 + top) * static_cast<std::size_t>(side) +
                                            static_cast<std::size_t>(x - x0 + left)) *
                                               3;
      std::copy(from, from + 3, to);
    }
  }
  return crop;
}

}  // namespace lookbook
