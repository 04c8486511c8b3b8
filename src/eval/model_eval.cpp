#include "eval/model_eval.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <unordered_map>

#include "catalog/csv.h"
#include "demo/demo_catalog.h"
#include "image/decode.h"
#include "image/preprocess.h"
#include "model/bundle.h"
#include "model/segmenter.h"
#include "util/error.h"
#include "util/text.h"
#include "util/vectors.h"

namespace lookbook {
namespace {

// A temporary folder for the evaluation catalog.
struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lookbook-eval-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw InputError("cannot create a temporary folder");
    path = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

}  // namespace

namespace {

// The segmenter's scores on one demo catalog's outfit photos, each key prefixed by `prefix`.
std::map<std::string, double> ScoreSegmenter(const Segmenter& segmenter, const std::vector<std::string>& expected,
                                             const std::filesystem::path& catalog, const std::string& prefix) {
  const PreprocessSpec& spec = segmenter.preprocess();
  const int size = spec.size;
  std::vector<double> intersection(expected.size(), 0), union_(expected.size(), 0);
  double correct = 0, pixels_total = 0;
  int photos = 0;
  for (const auto& row : ReadCsvFile(catalog / "truth" / "outfits.csv")) {
    std::ifstream in(catalog / "images" / row[0], std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const DecodeResult decoded = DecodeImage(bytes, DecodeLimits{});
    LB_CHECK(decoded.status == ImageStatus::kOk, "the demo catalog's own outfit photo failed to decode");
    std::vector<float> input(static_cast<std::size_t>(3) * size * size);
    Preprocess(decoded.image, spec, input.data());
    const std::vector<std::uint8_t> predicted = segmenter.Segment(input.data(), 1, nullptr);
    const std::string stem = std::filesystem::path(row[0]).stem().string();
    const DecodeResult truth = DecodeImage(
        [&] {
          std::ifstream label(catalog / "truth" / "labels" / (stem + ".png"), std::ios::binary);
          return std::string((std::istreambuf_iterator<char>(label)), std::istreambuf_iterator<char>());
        }(),
        DecodeLimits{});
    LB_CHECK(truth.status == ImageStatus::kOk, "label map unreadable");
    const int w = truth.image.width, h = truth.image.height;
    LB_CHECK(w == decoded.image.width && h == decoded.image.height, "a label map not of its photo's size");
    // Label pixel (x, y) <- the model pixel the preprocessing put it in (ModelFrame: letterboxed,
    // centre-cropped or stretched as the bundle says; a pixel cropped away counts as background).
    // In whole pixels: the image spans fitted_w x fitted_h model pixels from (left, top).
    const FrameMapping frame = ModelFrame(w, h, spec);
    const auto fitted_w = std::llround(frame.scale_x * w), fitted_h = std::llround(frame.scale_y * h);
    const auto left = std::llround(frame.offset_x), top = std::llround(frame.offset_y);
    for (int y = 0; y < h; ++y) {
      const std::int64_t model_y = top + static_cast<std::int64_t>(y) * fitted_h / h;
      for (int x = 0; x < w; ++x) {
        const std::int64_t model_x = left + static_cast<std::int64_t>(x) * fitted_w / w;
        const std::uint8_t want = truth.image.rgb[(static_cast<std::size_t>(y) * w + x) * 3];
        const bool seen = model_x >= 0 && model_x < size && model_y >= 0 && model_y < size;
        const std::uint8_t got = seen ? predicted[static_cast<std::size_t>(model_y * size + model_x)] : 0;
        correct += want == got;
        pixels_total += 1;
        for (std::size_t c = 1; c < expected.size(); ++c) {
          intersection[c] += (want == c) && (got == c);
          union_[c] += (want == c) || (got == c);
        }
      }
    }
    ++photos;
  }
  std::map<std::string, double> metrics;
  double sum = 0;
  int counted = 0;
  for (std::size_t c = 1; c < expected.size(); ++c) {
    if (union_[c] == 0) continue;
    const double iou = intersection[c] / union_[c];
    metrics[prefix + "iou_" + expected[c]] = iou;
    sum += iou;
    ++counted;
  }
  metrics[prefix + "mean_iou"] = counted > 0 ? sum / counted : 0;
  metrics[prefix + "pixel_accuracy"] = correct / std::max(pixels_total, 1.0);
  metrics[prefix + "outfit_photos"] = photos;
  return metrics;
}

std::map<std::string, double> EvaluateSegmenter(const ModelBundle& bundle, const ModelEvalOptions& options) {
  const Segmenter segmenter = Segmenter::Load(bundle, options.inference);
  const std::vector<std::string> expected = {"background", "top", "bottom", "dress", "shoes", "bag"};
  if (bundle.class_names != expected) {
    throw InputError(bundle.dir.string() +
                     ": the demo evaluation needs the demo classes (background, top, bottom, dress, shoes, bag)");
  }
  // The demo's flat lays, then the same catalog's outfits composed at random (--outfits random).
  ScratchDir flat, random;
  WriteDemoCatalog({flat.path, options.items, options.seed, FashionSplit::kTest});
  DemoCatalogOptions randomized{random.path, options.items, options.seed, FashionSplit::kTest};
  randomized.outfits = DemoOutfits::kRandom;
  WriteDemoCatalog(randomized);
  std::map<std::string, double> metrics = ScoreSegmenter(segmenter, expected, flat.path, "");
  for (const auto& [key, value] : ScoreSegmenter(segmenter, expected, random.path, "random_")) metrics[key] = value;
  return metrics;
}

}  // namespace

std::map<std::string, double> EvaluateModel(const ModelEvalOptions& options) {
  const ModelBundle bundle = LoadBundle(options.model);
  if (bundle.kind == BundleKind::kSegmenter) return EvaluateSegmenter(bundle, options);
  const ImageEncoder images = ImageEncoder::Load(bundle, options.inference);
  const TextEncoder texts = TextEncoder::Load(bundle, options.inference);
  const int d = images.dim();

  ScratchDir scratch;
  WriteDemoCatalog({scratch.path, options.items, options.seed, FashionSplit::kTest});
  const auto catalog = ReadCsvFile(scratch.path / "catalog.csv");
  const auto products = ReadCsvFile(scratch.path / "truth" / "products.csv");  // id, index, class, colour, slot
  std::unordered_map<std::string, std::string> colour_of;
  for (const auto& row : products) colour_of[row[0]] = row[3];

  // Every product shot (image_1 and image_2), decoded and preprocessed like the embed stage.
  std::vector<std::string> paths;
  std::vector<std::string> product_of, class_of;
  std::vector<bool> is_first_shot;
  for (const auto& row : catalog) {
    for (int column = 1; column <= 2; ++column) {
      if (row[static_cast<std::size_t>(column)].empty()) continue;
      paths.push_back(row[static_cast<std::size_t>(column)]);
      product_of.push_back(row[0]);
      class_of.push_back(row[4]);
      is_first_shot.push_back(column == 1);
    }
  }
  const PreprocessSpec& spec = images.preprocess();
  const std::size_t floats = static_cast<std::size_t>(3) * spec.size * spec.size;
  std::vector<float> embeddings;
  std::vector<float> batch;
  DecodeLimits limits;
  limits.min_side = spec.size;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    std::ifstream in(scratch.path / "images" / paths[i], std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const DecodeResult decoded = DecodeImage(bytes, limits);
    LB_CHECK(decoded.status == ImageStatus::kOk, "the demo catalog's own image failed to decode: " + paths[i]);
    batch.resize(batch.size() + floats);
    Preprocess(decoded.image, spec, batch.data() + batch.size() - floats);
    if (batch.size() == floats * 64 || i + 1 == paths.size()) {
      const auto rows = images.Encode(batch.data(), static_cast<int>(batch.size() / floats));
      embeddings.insert(embeddings.end(), rows.begin(), rows.end());
      batch.clear();
    }
  }
  std::unordered_map<std::string, std::size_t> row_of_path;
  for (std::size_t i = 0; i < paths.size(); ++i) row_of_path[paths[i]] = i;

  std::map<std::string, double> metrics;
  auto shots_of_first = [&](std::size_t count) {
    std::vector<std::size_t> first;
    for (std::size_t i = 0; i < count; ++i) {
      if (is_first_shot[i]) first.push_back(i);
    }
    return first;
  };
  // Zero-shot classification of the first shots, with CLIP's prompt ensembling: a class's
  // text vector is the normalised mean over a few templates.
  const auto& classes = FashionClassNames();
  const std::vector<std::string> templates = {"a photo of a {}", "a {}", "{}", "a photo of the {}, product photo"};
  std::vector<std::string> prompts;
  for (const char* name : classes) prompts.push_back("a photo of a " + AsciiLower(name));
  const auto single_text = texts.Encode(prompts);
  std::vector<float> class_text(static_cast<std::size_t>(kFashionClasses) * d, 0.0f);
  for (const auto& pattern : templates) {
    std::vector<std::string> filled;
    for (const char* name : classes) {
      std::string text = pattern;
      text.replace(text.find("{}"), 2, AsciiLower(name));
      filled.push_back(text);
    }
    const auto rows = texts.Encode(filled);
    for (std::size_t k = 0; k < rows.size(); ++k) class_text[k] += rows[k];
  }
  for (int c = 0; c < kFashionClasses; ++c) {
    float* row = &class_text[static_cast<std::size_t>(c) * d];
    const float norm = std::sqrt(Dot(row, row, d));
    for (int k = 0; k < d; ++k) row[k] /= norm;
  }
  auto accuracy = [&](const std::vector<float>& text_rows) {
    int right = 0;
    for (const auto i : shots_of_first(paths.size())) {
      int best = 0;
      float best_score = -2;
      for (int c = 0; c < kFashionClasses; ++c) {
        const float score = Dot(&embeddings[i * d], &text_rows[static_cast<std::size_t>(c) * d], d);
        if (score > best_score) best_score = score, best = c;
      }
      right += class_of[i] == classes[static_cast<std::size_t>(best)];
    }
    return right;
  };
  const std::vector<std::size_t> shots = shots_of_first(paths.size());
  metrics["zero_shot_accuracy"] = static_cast<double>(accuracy(class_text)) / static_cast<double>(shots.size());
  metrics["zero_shot_accuracy_single_prompt"] =
      static_cast<double>(accuracy(single_text)) / static_cast<double>(shots.size());

  // Text to image: the 10 nearest first shots of each query.
  auto top10 = [&](const float* query) {
    std::vector<std::pair<float, std::size_t>> scored;
    for (const auto i : shots) scored.emplace_back(Dot(&embeddings[i * d], query, d), i);
    std::partial_sort(scored.begin(), scored.begin() + std::min<std::size_t>(10, scored.size()), scored.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    scored.resize(std::min<std::size_t>(10, scored.size()));
    return scored;
  };
  double precision = 0;
  for (int c = 0; c < kFashionClasses; ++c) {
    int hits = 0;
    for (const auto& [score, i] : top10(&class_text[static_cast<std::size_t>(c) * d]))
      hits += class_of[i] == classes[static_cast<std::size_t>(c)];
    precision += hits / 10.0;
  }
  metrics["class_prompt_precision_at_10"] = precision / kFashionClasses;
  std::set<std::pair<std::string, std::string>> pairs;  // (colour, class)
  for (const auto i : shots) pairs.emplace(colour_of[product_of[i]], class_of[i]);
  std::vector<std::string> queries;
  for (const auto& [colour, name] : pairs) queries.push_back("a photo of a " + colour + " " + AsciiLower(name));
  const auto query_text = texts.Encode(queries);
  int found = 0;
  std::size_t q = 0;
  for (const auto& [colour, name] : pairs) {
    bool hit = false;
    for (const auto& [score, i] : top10(&query_text[q * d]))
      hit |= class_of[i] == name && colour_of[product_of[i]] == colour;
    found += hit;
    ++q;
  }
  metrics["text_to_image_recall_at_10"] = static_cast<double>(found) / static_cast<double>(pairs.size());
  metrics["text_to_image_queries"] = static_cast<double>(pairs.size());

  // Near-duplicates: planted copies against every other same-class pair of products.
  // Copies are transitive (two relistings of one shot are copies of each other too): every
  // pair inside a cluster of planted pairs is a positive.
  std::vector<std::size_t> parent(paths.size());
  std::iota(parent.begin(), parent.end(), 0);
  std::function<std::size_t(std::size_t)> root = [&](std::size_t x) {
    return parent[x] == x ? x : parent[x] = root(parent[x]);
  };
  for (const auto& row : ReadCsvFile(scratch.path / "truth" / "duplicates.csv")) {
    parent[root(row_of_path.at(row[0]))] = root(row_of_path.at(row[1]));
  }
  std::map<std::size_t, std::vector<std::size_t>> clusters;
  for (std::size_t i = 0; i < paths.size(); ++i) clusters[root(i)].push_back(i);
  std::set<std::pair<std::size_t, std::size_t>> planted;
  std::vector<float> positives, negatives;
  for (const auto& [id, members] : clusters) {
    for (std::size_t x = 0; x < members.size(); ++x) {
      for (std::size_t y = x + 1; y < members.size(); ++y) {
        const std::size_t a = members[x], b = members[y];
        planted.emplace(std::min(a, b), std::max(a, b));
        positives.push_back(Dot(&embeddings[a * d], &embeddings[b * d], d));
      }
    }
  }
  float variant_max = -1;
  std::set<std::pair<std::size_t, std::size_t>> variants;
  for (const auto& row : ReadCsvFile(scratch.path / "truth" / "colour_variants.csv")) {
    const std::size_t a = row_of_path.at(row[0]), b = row_of_path.at(row[1]);
    variants.emplace(std::min(a, b), std::max(a, b));
  }
  for (std::size_t x = 0; x < shots.size(); ++x) {
    for (std::size_t y = x + 1; y < shots.size(); ++y) {
      const std::size_t a = shots[x], b = shots[y];
      if (class_of[a] != class_of[b] || planted.count({std::min(a, b), std::max(a, b)})) continue;
      const float cosine = Dot(&embeddings[a * d], &embeddings[b * d], d);
      negatives.push_back(cosine);
      if (variants.count({std::min(a, b), std::max(a, b)})) variant_max = std::max(variant_max, cosine);
    }
  }
  // ROC AUC = P(positive > negative), ties count half.
  std::vector<float> sorted_negatives = negatives;
  std::sort(sorted_negatives.begin(), sorted_negatives.end());
  double wins = 0;
  for (const float p : positives) {
    const auto lower = std::lower_bound(sorted_negatives.begin(), sorted_negatives.end(), p);
    const auto upper = std::upper_bound(sorted_negatives.begin(), sorted_negatives.end(), p);
    wins += static_cast<double>(lower - sorted_negatives.begin()) + 0.5 * static_cast<double>(upper - lower);
  }
  metrics["near_duplicate_auc"] =
      wins / (static_cast<double>(positives.size()) * static_cast<double>(negatives.size()));
  // The lowest threshold with precision >= 0.99 among pairs at or above it.
  std::vector<std::pair<float, bool>> all;
  for (const float p : positives) all.emplace_back(p, true);
  for (const float n : negatives) all.emplace_back(n, false);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  double threshold = 1.0, recall = 0;
  int true_positives = 0, taken = 0;
  for (const auto& [score, positive] : all) {
    ++taken;
    true_positives += positive;
    if (static_cast<double>(true_positives) / taken >= 0.99) {
      threshold = score;
      recall = static_cast<double>(true_positives) / static_cast<double>(positives.size());
    }
  }
  metrics["near_duplicate_threshold_p99"] = threshold;
  metrics["near_duplicate_recall_at_threshold"] = recall;
  metrics["near_duplicate_pairs"] = static_cast<double>(positives.size());
  metrics["same_class_negative_pairs"] = static_cast<double>(negatives.size());
  metrics["colour_variant_max_cosine"] = variant_max;
  metrics["images"] = static_cast<double>(paths.size());
  return metrics;
}

}  // namespace lookbook
