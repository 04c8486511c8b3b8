#include "recs/recs_stage.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "catalog/csv.h"
#include "catalog/sharding.h"
#include "garments/garments.h"
#include "index/index_stage.h"
#include "index/vector_index.h"
#include "model/bundle.h"
#include "model/encoders.h"
#include "recs/product_catalog.h"
#include "recs/product_search.h"
#include "stage/counts.h"
#include "stage/run_status.h"
#include "stage/stage.h"
#include "store/dedup_file.h"
#include "store/embed_run.h"
#include "store/recs_file.h"
#include "util/blas.h"
#include "util/error.h"
#include "util/publish.h"
#include "util/stop.h"
#include "util/text.h"
#include "util/vectors.h"

namespace lookbook {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

std::string Join(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& value : values) out += (out.empty() ? "" : "\x1f") + value;  // unit separator: no collisions
  return out;
}

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

std::map<std::string, std::string> Options(const RecsOptions& options, const std::string& model_identity) {
  std::map<std::string, std::string> out = RecsOptionTable().Identity(options);
  out["model"] = model_identity;  // the text tower zero-shot uses: the embed stage's model
  return out;
}

// The dedup stage as published, verified, and made from this embed and index stage.
DedupFile ReadCurrentDedup(Stage& stage) {
  stage.Upstream("dedup");
  if (const std::string stale = StaleInputs(stage.run(), "dedup"); !stale.empty()) {
    throw InputError("the dedup stage is stale (" + stale + "): rerun lookbook dedup");
  }
  return ReadDedupFile(stage.VerifiedPath("dedup", "dedup.h5"));
}

// --category-names: "Category=words,..." (product_catalog.h SplitCategoryMap) as a map. Throws
// UsageError for an entry without '=' or with nothing on either side.
std::map<std::string, std::string> ParseCategoryNames(const std::string& spec) {
  std::string malformed;
  std::map<std::string, std::string> out;
  for (const auto& [category, words] : SplitCategoryMap(spec, &malformed)) {
    if (malformed.empty() && (category.empty() || words.empty())) malformed = category + "=" + words;
    out[category] = words;
  }
  if (!malformed.empty()) throw UsageError("--category-names: '" + malformed + "' is not Category=words");
  return out;
}

// The words a category is read as: its --category-names description, else its name; lower case.
std::string CategoryWords(const std::map<std::string, std::string>& names, const std::string& category) {
  const auto it = names.find(category);
  return AsciiLower(it == names.end() ? category : it->second);
}

// --category-prompt with `words` in place of its "{}".
std::string CategoryPrompt(const RecsOptions& options, const std::string& words) {
  std::string prompt = options.category_prompt;
  const auto at = prompt.find("{}");
  if (at != std::string::npos) prompt.replace(at, 2, words);
  return prompt;
}

// Zero-shot categories for the products whose catalog row has none. Returns how many got one.
// Collective: each rank classifies the products of its own shards (their vectors are the ones
// it holds), and every rank learns every answer.
std::int64_t ZeroShotCategories(const RecsOptions& options, const EmbedRun& embed, ProductCatalog* catalog,
                                std::int64_t* unreadable_count, const MpiWorld& world) {
  std::vector<Product*> missing;
  for (Product& product : catalog->products) {
    if (product.category.empty() && !product.shots.empty()) missing.push_back(&product);
  }
  if (missing.empty()) return 0;
  std::vector<std::string> labels = options.categories;
  if (labels.empty()) {
    std::set<std::string> named;
    for (const Product& product : catalog->products) {
      if (product.category_source == "catalog") named.insert(product.category);
    }
    labels.assign(named.begin(), named.end());
  }
  if (labels.empty()) {
    spdlog::warn(
        "{} products have no category and there are no categories to choose from (--categories): they get no "
        "substitutes",
        missing.size());
    return 0;
  }
  // Zero-shot needs the text tower of the model that made the image embeddings.
  const ModelBundle bundle = LoadTrustedBundle(options.model, options.models_root, embed.model_sha256, "model");
  const TextEncoder text = TextEncoder::Load(bundle, InferenceOptions{});
  if (text.dim() != catalog->dim)
    throw InputError("the CLIP bundle's text embeddings do not have the image embeddings' size");
  // A category whose every word the text tower does not know embeds like an empty prompt: all
  // such categories would be one vector, and products would be given whichever comes first.
  // They are not offered, and said.
  const std::map<std::string, std::string> names = ParseCategoryNames(options.category_names);
  auto words = [&](const std::string& label) { return CategoryWords(names, label); };
  std::vector<std::string> readable, unreadable;
  for (const auto& label : labels) {
    const TextTokens tokens = text.Count(words(label));
    (tokens.tokens > tokens.unknown ? readable : unreadable).push_back(label);
  }
  *unreadable_count = static_cast<std::int64_t>(unreadable.size());
  if (!unreadable.empty()) {
    std::string names;
    for (const auto& label : unreadable) names += (names.empty() ? "" : ", ") + label;
    spdlog::warn(
        "{} categor{} named only with words the text model does not know, not used for zero-shot (describe them "
        "with --category-names Category=words): {}",
        unreadable.size(), unreadable.size() == 1 ? "y is" : "ies are", names);
  }
  labels = readable;
  if (labels.empty()) {
    spdlog::warn(
        "{} products have no category, and no category has a name the text model can read: they get no "
        "substitutes",
        missing.size());
    return 0;
  }
  std::vector<std::string> prompts;
  for (const auto& label : labels) prompts.push_back(CategoryPrompt(options, words(label)));
  const std::vector<float> label_vectors = text.Encode(prompts);
  const int d = catalog->dim;
  std::vector<float> mean(static_cast<std::size_t>(d));
  std::vector<std::int64_t> chosen(missing.size(), 0);  // label + 1 for this rank's products, else 0
  for (std::size_t m = 0; m < missing.size(); ++m) {
    Product* product = missing[m];
    if (!catalog->owns(*product)) continue;
    std::fill(mean.begin(), mean.end(), 0.0f);
    for (const std::int64_t shot : product->shots) {
      const float* v = catalog->vector(shot);
      for (int i = 0; i < d; ++i) mean[static_cast<std::size_t>(i)] += v[i];
    }
    Normalize(mean.data(), d);
    std::size_t best = 0;
    float best_score = -2;
    for (std::size_t c = 0; c < labels.size(); ++c) {
      const float score = Dot(mean.data(), label_vectors.data() + c * static_cast<std::size_t>(d), d);
      if (score > best_score) {
        best_score = score;
        best = c;
      }
    }
    chosen[m] = static_cast<std::int64_t>(best) + 1;
  }
  chosen = world.SumAll(chosen);
  for (std::size_t m = 0; m < missing.size(); ++m) {
    LB_CHECK(chosen[m] >= 1 && chosen[m] <= static_cast<std::int64_t>(labels.size()), "a product without its rank");
    missing[m]->category = labels[static_cast<std::size_t>(chosen[m] - 1)];
    missing[m]->category_source = "zero-shot";
  }
  return static_cast<std::int64_t>(missing.size());
}

// Collective. Slots for the categories that have none (`unmapped`: neither in --category-slots
// nor named like a slot), from what the segmenter saw. Every product of such a category votes:
// each of its shots where the segmenter ran, with the slot of the shot's largest garment; each of
// its outfit photos, with the slot of the garment most like its shots (its own garment in the
// look). A category takes the slot with more than half of its votes, when it has at least 3.
// Each rank counts the votes of its own products (the vectors are its own); every rank learns
// the sums. Returns category -> (slot, votes for it, votes); the products get their slot, and
// `unmapped` loses the category.
std::map<std::string, std::tuple<std::string, std::int64_t, std::int64_t>> InferSlots(
    ProductCatalog* catalog, std::map<std::string, std::int64_t>* unmapped, const MpiWorld& world) {
  std::map<std::string, std::tuple<std::string, std::int64_t, std::int64_t>> out;
  if (unmapped->empty()) return out;
  std::map<std::string, std::size_t> row;  // category -> its votes' row
  for (const auto& [category, count] : *unmapped) row.emplace(category, row.size());
  std::vector<std::int64_t> votes(row.size() * kSlotCount, 0);
  auto vote = [&](std::size_t r, const std::string& slot) {
    Slot code;
    if (ParseSlot(slot, &code)) ++votes[r * kSlotCount + static_cast<std::size_t>(code)];
  };
  for (const Product& product : catalog->products) {
    const auto it = row.find(product.category);
    if (it == row.end() || !catalog->owns(product)) continue;
    for (const std::int64_t shot : product.shots) {
      const std::vector<std::size_t> garments = catalog->garments_of(shot);
      const GarmentRow* largest = nullptr;
      for (const std::size_t g : garments) {
        const GarmentRow& garment = catalog->shards[static_cast<std::size_t>(product.shard)].garments[g];
        if (largest == nullptr || garment.area > largest->area) largest = &garment;
      }
      if (largest != nullptr) vote(it->second, largest->slot);
    }
    for (const std::int64_t photo : product.outfit_photos) {
      if (product.shots.empty()) continue;
      float best = -2;
      std::string slot;
      for (const std::size_t g : catalog->garments_of(photo)) {
        for (const std::int64_t shot : product.shots) {
          const float score = Dot(catalog->garment_vector(product.shard, g), catalog->vector(shot), catalog->dim);
          if (score > best) {
            best = score;
            slot = catalog->shards[static_cast<std::size_t>(product.shard)].garments[g].slot;
          }
        }
      }
      if (!slot.empty()) vote(it->second, slot);
    }
  }
  votes = world.SumAll(votes);
  for (const auto& [category, r] : row) {
    std::int64_t total = 0, top = 0;
    int best = 0;
    for (int s = 0; s < kSlotCount; ++s) {
      const std::int64_t n = votes[r * kSlotCount + static_cast<std::size_t>(s)];
      total += n;
      if (n > top) {
        top = n;
        best = s;
      }
    }
    if (total < 3 || 2 * top <= total) continue;
    out[category] = {SlotName(static_cast<Slot>(best)), top, total};
  }
  for (const auto& [category, inferred] : out) {
    for (Product& product : catalog->products) {
      if (product.category == category) product.slot = std::get<0>(inferred);
    }
    unmapped->erase(category);
    if (world.is_root()) {
      spdlog::info("category {}: slot {} inferred from the segmenter ({} of {} votes); --category-slots sets it",
                   category, std::get<0>(inferred), std::get<1>(inferred), std::get<2>(inferred));
    }
  }
  return out;
}

// The text model's slot must beat the next by this much cosine, else the category keeps no slot.
// On the demo text tower, Pullover reads as outerwear 0.899 and top 0.897; readings it gets
// right win by 0.08 or more (tests/integration/test_recs.py).
constexpr float kMinTextSlotMargin = 0.02f;

// The words the text tower reads each slot as when it infers a category's slot: common English
// garment words (a CLIP text tower knows most; the demo's knows one or two per slot). A word it
// does not know is left out of the slot's prompts; a slot with no known word is not offered.
const std::vector<std::pair<Slot, std::vector<std::string>>>& SlotWords() {
  static const std::vector<std::pair<Slot, std::vector<std::string>>> words = {
      {Slot::kTop, {"top", "shirt", "t-shirt", "blouse", "sweater", "pullover"}},
      {Slot::kBottom, {"trouser", "trousers", "pants", "jeans", "skirt", "shorts"}},
      {Slot::kDress, {"dress", "gown", "jumpsuit"}},
      {Slot::kOuterwear, {"coat", "jacket", "parka", "blazer"}},
      {Slot::kShoes, {"shoes", "sneaker", "sandal", "boot", "heels"}},
      {Slot::kBag, {"bag", "handbag", "backpack", "purse"}},
      {Slot::kAccessory, {"hat", "scarf", "belt", "sunglasses", "watch"}},
  };
  return words;
}

// Collective. Slots for the categories still without one after InferSlots, from the text tower
// of the model that made the embeddings: the category's words (--category-names, else its name)
// in the zero-shot prompt, against each slot's prompts (SlotWords, averaged): the nearest of all
// slots when it beats the next by kMinTextSlotMargin, and only when the segmenter found garments
// of that slot (or found none at all): a category that reads as a slot no photo shows keeps no
// slot rather than the nearest one shown. Categories the text tower cannot read keep none;
// without the bundle (no --model or --models-root: recs needs none otherwise) none is inferred,
// and that is said. Rank 0 decides and every rank learns its answers (the same slots on every
// rank whatever its CPU's arithmetic). Returns category -> (slot, similarity, runner-up's); the
// products get their slot, `unmapped` loses the category.
std::map<std::string, std::tuple<std::string, float, float>> InferSlotsFromText(
    const RecsOptions& options, const EmbedRun& embed, ProductCatalog* catalog,
    std::map<std::string, std::int64_t>* unmapped, const MpiWorld& world) {
  std::map<std::string, std::tuple<std::string, float, float>> out;
  if (unmapped->empty()) return out;
  std::vector<std::int64_t> found(kSlotCount, 0);
  auto mark = [&](const Product& product, std::int64_t image) {
    for (const std::size_t g : catalog->garments_of(image)) {
      Slot slot;
      if (ParseSlot(catalog->shards[static_cast<std::size_t>(product.shard)].garments[g].slot, &slot))
        found[static_cast<std::size_t>(slot)] = 1;
    }
  };
  for (const Product& product : catalog->products) {
    if (!catalog->owns(product)) continue;
    for (const std::int64_t image : product.shots) mark(product, image);
    for (const std::int64_t image : product.outfit_photos) mark(product, image);
  }
  found = world.SumAll(found);
  const bool any_found = std::any_of(found.begin(), found.end(), [](std::int64_t n) { return n > 0; });
  if (options.model.empty() && options.models_root.empty()) {
    if (world.is_root()) {
      spdlog::info(
          "{} categor{} without a slot could be read by the text model: pass --model or --models-root to let it "
          "infer their slots",
          unmapped->size(), unmapped->size() == 1 ? "y" : "ies");
    }
    return out;
  }
  // Per category in `unmapped` order: chosen slot + 1 (0: none), and the two similarities in
  // millionths; filled on rank 0, summed to every rank.
  std::vector<std::int64_t> decided(unmapped->size() * 3, 0);
  if (world.is_root()) {
    const ModelBundle bundle = LoadTrustedBundle(options.model, options.models_root, embed.model_sha256, "model");
    const TextEncoder text = TextEncoder::Load(bundle, InferenceOptions{});
    // Each slot's vector: the mean of its readable words' prompts, normalised.
    const int d = text.dim();
    std::vector<Slot> slots;
    std::vector<float> slot_vectors;
    for (const auto& [slot, words] : SlotWords()) {
      std::vector<std::string> prompts;
      for (const auto& word : words) {
        const TextTokens tokens = text.Count(word);
        if (tokens.unknown == 0 && tokens.tokens > 0) prompts.push_back(CategoryPrompt(options, word));
      }
      if (prompts.empty()) continue;
      const std::vector<float> encoded = text.Encode(prompts);
      std::vector<float> mean(static_cast<std::size_t>(d), 0.0f);
      for (std::size_t p = 0; p < prompts.size(); ++p) {
        for (int i = 0; i < d; ++i) mean[static_cast<std::size_t>(i)] += encoded[p * static_cast<std::size_t>(d) + i];
      }
      Normalize(mean.data(), d);
      slots.push_back(slot);
      slot_vectors.insert(slot_vectors.end(), mean.begin(), mean.end());
    }
    const std::map<std::string, std::string> names = ParseCategoryNames(options.category_names);
    std::size_t c = 0;
    for (const auto& [category, count] : *unmapped) {
      const std::size_t row = c++;
      const std::string words = CategoryWords(names, category);
      const TextTokens tokens = text.Count(words);
      if (slots.size() < 2 || tokens.tokens <= tokens.unknown) continue;
      const std::vector<float> v = text.Encode({CategoryPrompt(options, words)});
      float best = -2, second = -2;
      std::size_t chosen = 0;
      for (std::size_t k = 0; k < slots.size(); ++k) {
        const float score = Dot(v.data(), slot_vectors.data() + k * static_cast<std::size_t>(d), d);
        if (score > best) {
          second = best;
          best = score;
          chosen = k;
        } else if (score > second) {
          second = score;
        }
      }
      const char* name = SlotName(slots[chosen]);
      if (best - second < kMinTextSlotMargin) {  // a near tie: not a reading, a guess
        spdlog::info("category {}: the text model cannot tell its slot (best {} at {:.3f}, next within {:.2f})",
                     category, name, best, kMinTextSlotMargin);
        continue;
      }
      if (any_found && found[static_cast<std::size_t>(slots[chosen])] == 0) {
        spdlog::info(
            "category {}: reads as slot {} to the text model ({:.3f}), a slot the segmenter found in no photo: "
            "left without a slot",
            category, name, best);
        continue;
      }
      decided[3 * row] = static_cast<std::int64_t>(slots[chosen]) + 1;
      decided[3 * row + 1] = std::llround(1e6 * best);
      decided[3 * row + 2] = std::llround(1e6 * second);
    }
  }
  decided = world.SumAll(decided);
  std::size_t c = 0;
  for (const auto& [category, count] : *unmapped) {
    const std::size_t row = c++;
    if (decided[3 * row] == 0) continue;
    out[category] = {SlotName(static_cast<Slot>(decided[3 * row] - 1)), static_cast<float>(decided[3 * row + 1]) / 1e6f,
                     static_cast<float>(decided[3 * row + 2]) / 1e6f};
  }
  for (const auto& [category, inferred] : out) {
    for (Product& product : catalog->products) {
      if (product.category == category) product.slot = std::get<0>(inferred);
    }
    unmapped->erase(category);
    if (world.is_root()) {
      spdlog::info(
          "category {}: slot {} inferred from the text model (similarity {:.3f}, next slot {:.3f}); "
          "--category-slots sets it",
          category, std::get<0>(inferred), std::get<1>(inferred), std::get<2>(inferred));
    }
  }
  return out;
}

// For each product, the other products that share a near-duplicate cluster with it.
std::vector<std::vector<int>> ClusterMates(const ProductCatalog& catalog, const DedupFile& dedup) {
  std::map<std::int64_t, std::set<int>> members;
  for (std::size_t i = 0; i < dedup.cluster_image.size(); ++i) {
    const auto it = catalog.product_of_image.find(dedup.cluster_image[i]);
    if (it == catalog.product_of_image.end())
      throw InputError("dedup.h5 names an image the embed stage does not have: rerun lookbook dedup");
    members[dedup.cluster_id[i]].insert(it->second);
  }
  std::vector<std::set<int>> mates(catalog.products.size());
  for (const auto& [cluster, products] : members) {
    for (const int p : products) mates[static_cast<std::size_t>(p)].insert(products.begin(), products.end());
  }
  std::vector<std::vector<int>> out(catalog.products.size());
  for (std::size_t p = 0; p < mates.size(); ++p) {
    mates[p].erase(static_cast<int>(p));
    out[p].assign(mates[p].begin(), mates[p].end());
  }
  return out;
}

// An outfit row as plain values for the gather (the slot as its code, not its name).
struct OutfitHit {
  std::int64_t product = 0, source_image = 0, item = 0;
  std::int32_t slot = 0, rank = 0;
  std::array<std::int32_t, 4> box{};
  float score = 0;
};

// What an outfit request is for.
struct LookRequest {
  int product = 0;
  std::int64_t photo = 0;
  std::array<std::int32_t, 4> box{};
};

}  // namespace

const OptionTable<RecsOptions>& RecsOptionTable() {
  static const OptionTable<RecsOptions> table = [] {
    using O = RecsOptions;
    OptionTable<O> t;
    t.Path(
        "run", "DIR", [](O& o) -> std::filesystem::path& { return o.run; }, true,
        "the run folder (reads DIR/embed, DIR/index, DIR/dedup; writes DIR/recs)");
    t.Integer<int>(
        "top-k", "K", [](O& o) -> int& { return o.top_k; }, 10, 1, 1000, OptionEffect::kOutput,
        "substitutes per product");
    t.Integer<int>(
        "outfit-top-k", "K", [](O& o) -> int& { return o.outfit_top_k; }, 10, 1, 1000, OptionEffect::kOutput,
        "items per slot of an outfit photo");
    t.Add(
        OptionSpec{"substitutes-for", "WHICH", "all", false, false, "all | out-of-stock",
                   "the products that get substitutes", OptionEffect::kOutput},
        [](const std::vector<std::string>& values, O* out) {
          if (values.back() != "all" && values.back() != "out-of-stock") {
            throw UsageError("--substitutes-for must be all or out-of-stock, not '" + values.back() + "'");
          }
          out->only_out_of_stock = values.back() == "out-of-stock";
        },
        [](const O& o) { return std::string(o.only_out_of_stock ? "out-of-stock" : "all"); });
    t.Text(
        "category-slots", "MAP", [](O& o) -> std::string& { return o.category_slots; }, "", OptionEffect::kOutput,
        "Category=slot,... : the garment slot of each catalog category (top, bottom, dress, outerwear, shoes, "
        "bag, accessory or none); a category named like a slot maps to it");
    t.Add(
        OptionSpec{"categories", "LIST", "", false, false, "",
                   "comma-separated categories for products the catalog gives none (zero-shot); empty: the "
                   "catalog's categories",
                   OptionEffect::kOutput},
        [](const std::vector<std::string>& values, O* out) {
          out->categories.clear();
          std::istringstream list(values.back());
          for (std::string category; std::getline(list, category, ',');) {
            const auto begin = category.find_first_not_of(' ');
            if (begin != std::string::npos) {
              out->categories.push_back(category.substr(begin, category.find_last_not_of(' ') - begin + 1));
            }
          }
        },
        [](const O& o) { return Join(o.categories); });
    t.Text(
        "category-names", "MAP", [](O& o) -> std::string& { return o.category_names; }, "", OptionEffect::kOutput,
        "Category=words,... : the words zero-shot puts in the prompt for a category whose name the text model "
        "cannot read (a code); the product still gets the category's name");
    t.Text(
        "category-prompt", "TEXT", [](O& o) -> std::string& { return o.category_prompt; }, "a photo of a {}",
        OptionEffect::kOutput, "zero-shot prompt; {} is the category in lower case");
    t.Path(
        "model", "BUNDLE", [](O& o) -> std::filesystem::path& { return o.model; }, false,
        "CLIP bundle for zero-shot categories; it must be the one the embed stage ran (sha256)");
    t.Path(
        "models-root", "DIR", [](O& o) -> std::filesystem::path& { return o.models_root; }, false,
        "a folder of trusted bundles: the one whose sha256 the embed stage ran is loaded when --model is not given");
    t.Integer<int>(
        "nprobe", "N", [](O& o) -> int& { return o.nprobe; }, 16, 1, 65536, OptionEffect::kOutput,
        "inverted lists searched first (more when a filter leaves too few)");
    t.Integer<int>(
        "batch", "N", [](O& o) -> int& { return o.batch; }, 1024, 1, 1 << 20, OptionEffect::kResource,
        "products per index search call");
    t.Integer<int>(
        "threads", "N", [](O& o) -> int& { return o.threads; }, 1, 1, 256, OptionEffect::kResource,
        "FAISS (OpenMP) threads per rank");
    t.Force([](O& o) -> RerunPolicy& { return o.rerun; }, "redo the stage even when its outputs are valid");
    return t;
  }();
  return table;
}

namespace {

// Collective: the keys of `every` (the same on every rank: built from every product) and of
// this rank's `mine`, with the keys of every other rank's `mine`, in order: what the ranks go
// through in step.
template <typename Every, typename Mine>
std::vector<std::string> AllKeys(const Every& every, const Mine& mine, const MpiWorld& world) {
  std::set<std::string> keys;
  for (const auto& [key, unused] : every) keys.insert(key);
  std::string text;
  for (const auto& [key, unused] : mine) {
    if (!keys.count(key)) text += key + '\n';
  }
  // Keys only some ranks have (a category no in-stock product has): every rank learns them.
  const std::vector<std::uint8_t> all =
      world.BroadcastBytesFromRoot(world.GatherBytesToRoot(std::vector<std::uint8_t>(text.begin(), text.end())));
  std::string line;
  for (const std::uint8_t c : all) {
    if (c != '\n') {
      line += static_cast<char>(c);
    } else {
      keys.insert(line);
      line.clear();
    }
  }
  return {keys.begin(), keys.end()};
}

// Collective: per key, the most batches of `batch` requests any rank has.
template <typename Mine>
std::vector<std::int64_t> BatchesPerKey(const std::vector<std::string>& keys, const Mine& mine, int batch,
                                        const MpiWorld& world) {
  std::vector<std::int64_t> counts(keys.size() * static_cast<std::size_t>(world.size()), 0);
  for (std::size_t k = 0; k < keys.size(); ++k) {
    const auto it = mine.find(keys[k]);
    const std::int64_t n = it == mine.end() ? 0 : static_cast<std::int64_t>(it->second.size());
    counts[static_cast<std::size_t>(world.rank()) * keys.size() + k] = (n + batch - 1) / batch;
  }
  counts = world.SumAll(counts);
  std::vector<std::int64_t> out(keys.size(), 0);
  for (std::size_t r = 0; r < static_cast<std::size_t>(world.size()); ++r) {
    for (std::size_t k = 0; k < keys.size(); ++k) out[k] = std::max(out[k], counts[r * keys.size() + k]);
  }
  return out;
}

// What the passes count on each rank, summed over ranks (stage/counts.h); every field is in the
// manifest and the summary.
struct RecsCounts {
  std::int64_t substitute_lists_short = 0, substitutes_near_duplicates_dropped = 0, products_without_category = 0,
               products_without_image = 0, outfit_photos = 0;
  template <typename F>
  void ForEach(F&& f) {
    f("substitute_lists_short", substitute_lists_short);
    f("substitutes_near_duplicates_dropped", substitutes_near_duplicates_dropped);
    f("products_without_category", products_without_category);
    f("products_without_image", products_without_image);
    f("outfit_photos", outfit_photos);
  }
};

// How much work the passes did, summed over ranks: in the summary only (not an output's count).
struct RecsWork {
  std::int64_t substitute_queries = 0, stopped = 0;
  template <typename F>
  void ForEach(F&& f) {
    f("substitute_queries", substitute_queries);
    f("stopped", stopped);
  }
};

// What the catalog pass learned of categories and slots: the same on every rank.
struct CatalogCounts {
  std::int64_t products = 0, categories_zero_shot = 0, categories_unreadable = 0, categories_without_slot = 0,
               categories_slot_inferred = 0, categories_slot_from_text = 0, products_without_slot = 0;
  template <typename F>
  void ForEach(F&& f) {
    f("products", products);
    f("categories_zero_shot", categories_zero_shot);
    f("categories_unreadable", categories_unreadable);
    f("categories_without_slot", categories_without_slot);
    f("categories_slot_inferred", categories_slot_inferred);
    f("categories_slot_from_text", categories_slot_from_text);
    f("products_without_slot", products_without_slot);
  }
};

// What rank 0 published.
struct RecsPublished {
  std::int64_t substitute_rows = 0, products_with_substitutes = 0, outfit_rows = 0;
  template <typename F>
  void ForEach(F&& f) {
    f("substitute_rows", substitute_rows);
    f("products_with_substitutes", products_with_substitutes);
    f("outfit_rows", outfit_rows);
  }
};

// What every pass reads: every product and image row, the vectors of this rank's shards, the
// index, and each product's near-duplicate cluster mates.
struct RecsInputs {
  DedupFile dedup;
  ProductCatalog catalog;
  ShardedIndex index;
  std::vector<std::vector<int>> mates;
  CatalogCounts counts;
};

// Pass 1 (collective): the categories and slots of the products (zero-shot where the catalog
// has none, slots from --category-slots, else inferred from the segmenter, else from the text
// model) and the cluster mates.
void PrepareCatalog(const RecsOptions& options, const EmbedRun& embed, RecsInputs* in, const MpiWorld& world) {
  ProductCatalog& catalog = in->catalog;
  in->counts.products = static_cast<std::int64_t>(catalog.products.size());
  in->counts.categories_zero_shot =
      ZeroShotCategories(options, embed, &catalog, &in->counts.categories_unreadable, world);
  std::map<std::string, std::int64_t> unmapped = AssignSlots(ParseCategorySlots(options.category_slots), &catalog);
  in->counts.categories_slot_inferred = static_cast<std::int64_t>(InferSlots(&catalog, &unmapped, world).size());
  in->counts.categories_slot_from_text =
      static_cast<std::int64_t>(InferSlotsFromText(options, embed, &catalog, &unmapped, world).size());
  in->counts.categories_without_slot = static_cast<std::int64_t>(unmapped.size());
  for (const auto& [category, count] : unmapped) in->counts.products_without_slot += count;
  if (world.is_root() && !unmapped.empty()) {
    std::string names;
    for (const auto& [category, count] : unmapped) {
      if (names.size() > 200) {
        names += ", ...";
        break;
      }
      names += (names.empty() ? "" : ", ") + category + " (" + std::to_string(count) + ")";
    }
    spdlog::warn(
        "{} categor{} ha{} no garment slot: {}. Their products get no outfit matches and are never matched "
        "to an outfit photo's garments; map them with --category-slots Category=slot",
        unmapped.size(), unmapped.size() == 1 ? "y" : "ies", unmapped.size() == 1 ? "s" : "ve", names);
  }
  in->mates = ClusterMates(catalog, in->dedup);
}

// The batch `b` of `count` requests: [begin, end).
std::pair<std::size_t, std::size_t> BatchRange(std::size_t count, std::int64_t b, int batch) {
  const std::size_t begin = std::min(count, static_cast<std::size_t>(b) * static_cast<std::size_t>(batch));
  return {begin, std::min(count, begin + static_cast<std::size_t>(batch))};
}

// Pass 2 (collective): substitutes for this rank's products, one category at a time, its
// in-stock products the filter. The ranks go through every category's batches in step (a rank
// whose askers are done asks nothing): scores against other ranks' shots are answered in each
// batch's exchange. Returns this rank's rows.
std::vector<SubstituteRow> SubstitutePass(const RecsOptions& options, const RecsInputs& in, RemoteScores* scores,
                                          const MpiWorld& world, RecsCounts* counts, RecsWork* work) {
  const ProductCatalog& catalog = in.catalog;
  std::map<std::string, std::vector<int>> askers, stocked;
  for (int p = 0; p < static_cast<int>(catalog.products.size()); ++p) {
    const Product& product = catalog.products[static_cast<std::size_t>(p)];
    if (product.in_stock && !product.category.empty() && !product.shots.empty()) stocked[product.category].push_back(p);
    if (!catalog.owns(product) || (options.only_out_of_stock && product.in_stock)) continue;
    if (product.shots.empty())
      ++counts->products_without_image;
    else if (product.category.empty())
      ++counts->products_without_category;
    else
      askers[product.category].push_back(p);
  }
  std::vector<SubstituteRow> rows;
  const std::vector<std::string> categories = AllKeys(stocked, askers, world);
  const std::vector<std::int64_t> category_batches = BatchesPerKey(categories, askers, options.batch, world);
  for (std::size_t c = 0; c < categories.size(); ++c) {
    const std::vector<int>& products = askers[categories[c]];
    const ProductFilter filter = MakeProductFilter(catalog, in.index, stocked[categories[c]]);
    for (std::int64_t b = 0; b < category_batches[c]; ++b) {
      if (world.AnyStopRequested()) break;
      const auto [begin, end] = BatchRange(products.size(), b, options.batch);
      std::vector<ProductRequest> requests;
      for (std::size_t i = begin; i < end; ++i) {
        const int p = products[i];
        ProductRequest request;
        for (const std::int64_t shot : catalog.products[static_cast<std::size_t>(p)].shots)
          request.queries.push_back(catalog.vector(shot));
        request.excluded = in.mates[static_cast<std::size_t>(p)];
        request.excluded.push_back(p);
        requests.push_back(std::move(request));
      }
      // Twice the list, so that it stays full after dropping near-duplicates of earlier items.
      const auto ranked = TopProducts(catalog, in.index, filter, requests, 2 * options.top_k, options.nprobe, scores);
      for (std::size_t i = begin; i < end; ++i) {
        const std::vector<ProductMatch> list = WithoutClusterRepeats(ranked[i - begin], in.mates, options.top_k,
                                                                     &counts->substitutes_near_duplicates_dropped);
        ++work->substitute_queries;
        if (static_cast<int>(list.size()) < options.top_k) ++counts->substitute_lists_short;
        for (std::size_t r = 0; r < list.size(); ++r) {
          rows.push_back(SubstituteRow{products[i], static_cast<std::int32_t>(r + 1), list[r].product, list[r].score,
                                       list[r].image});
        }
      }
    }
  }
  return rows;
}

// The outfit requests of this rank's products, by slot: for each outfit photo, one request per
// garment slot other than the product's own (its category's, else the slot of the garment that
// looks most like its shots), querying with that slot's garments.
std::map<std::string, std::vector<std::pair<LookRequest, ProductRequest>>> LookRequests(const ProductCatalog& catalog,
                                                                                        RecsCounts* counts) {
  std::map<std::string, std::vector<std::pair<LookRequest, ProductRequest>>> looks;
  for (int p = 0; p < static_cast<int>(catalog.products.size()); ++p) {
    const Product& product = catalog.products[static_cast<std::size_t>(p)];
    if (!catalog.owns(product)) continue;
    for (const std::int64_t photo : product.outfit_photos) {
      ++counts->outfit_photos;
      const EmbedShard& shard = catalog.shards[static_cast<std::size_t>(ShardOfImageId(photo))];
      const std::vector<std::size_t> garments = catalog.garments_of(photo);
      std::string own = product.slot;
      if (own.empty() && !product.shots.empty()) {
        float best = -2;
        for (const std::size_t g : garments) {
          for (const std::int64_t shot : product.shots) {
            const float score = Dot(catalog.garment_vector(product.shard, g), catalog.vector(shot), catalog.dim);
            if (score > best) {
              best = score;
              own = shard.garments[g].slot;
            }
          }
        }
      }
      std::map<std::string, std::pair<LookRequest, ProductRequest>> by_slot;
      for (const std::size_t g : garments) {
        const GarmentRow& garment = shard.garments[g];
        if (garment.slot == own) continue;
        auto [it, added] = by_slot.try_emplace(garment.slot);
        if (added) {
          it->second.first = LookRequest{p, photo, garment.box};
          it->second.second.excluded = {p};
        }
        it->second.second.queries.push_back(catalog.garment_vector(product.shard, g));
      }
      for (auto& [slot, request] : by_slot) looks[slot].push_back(std::move(request));
    }
  }
  return looks;
}

// Pass 3 (collective): "complete the look": each request's slot searched among that slot's
// in-stock products, the ranks in step as in SubstitutePass. Returns this rank's hits.
std::vector<OutfitHit> OutfitPass(const RecsOptions& options, const RecsInputs& in, RemoteScores* scores,
                                  const MpiWorld& world, RecsCounts* counts) {
  const ProductCatalog& catalog = in.catalog;
  std::map<std::string, std::vector<int>> slot_stocked;
  for (int p = 0; p < static_cast<int>(catalog.products.size()); ++p) {
    const Product& product = catalog.products[static_cast<std::size_t>(p)];
    if (product.in_stock && !product.slot.empty() && !product.shots.empty()) slot_stocked[product.slot].push_back(p);
  }
  auto looks = LookRequests(catalog, counts);
  std::vector<OutfitHit> hits;
  const std::vector<std::string> slots = AllKeys(slot_stocked, looks, world);
  const std::vector<std::int64_t> slot_batches = BatchesPerKey(slots, looks, options.batch, world);
  for (std::size_t c = 0; c < slots.size(); ++c) {
    const std::string& slot = slots[c];
    const auto& requests = looks[slot];
    Slot code;
    LB_CHECK(ParseSlot(slot, &code), "garment slots are slot names");
    const ProductFilter filter = MakeProductFilter(catalog, in.index, slot_stocked[slot]);
    for (std::int64_t b = 0; b < slot_batches[c]; ++b) {
      if (world.AnyStopRequested()) break;
      const auto [begin, end] = BatchRange(requests.size(), b, options.batch);
      std::vector<ProductRequest> batch;
      for (std::size_t i = begin; i < end; ++i) batch.push_back(requests[i].second);
      const auto lists = TopProducts(catalog, in.index, filter, batch, options.outfit_top_k, options.nprobe, scores);
      for (std::size_t i = begin; i < end; ++i) {
        const LookRequest& look = requests[i].first;
        const auto& list = lists[i - begin];
        for (std::size_t r = 0; r < list.size(); ++r) {
          hits.push_back(OutfitHit{look.product, look.photo, list[r].product, static_cast<std::int32_t>(code),
                                   static_cast<std::int32_t>(r + 1), look.box, list[r].score});
        }
      }
    }
  }
  return hits;
}

// Pass 4 (rank 0): every rank's rows, sorted, as substitutes.csv, outfits.csv and recs.h5 in
// the stage's staging folder. Returns what it wrote.
RecsPublished WriteTables(const RecsOptions& options, const std::map<std::string, std::string>& option_map,
                          const ProductCatalog& catalog, std::vector<SubstituteRow> substitutes,
                          const std::vector<OutfitHit>& outfits, Stage& stage) {
  const std::filesystem::path& stage_dir = stage.Staging();
  RecsFile out;
  out.top_k = options.top_k;
  out.outfit_top_k = options.outfit_top_k;
  out.substitutes_for = option_map.at("substitutes-for");
  for (const Product& product : catalog.products) {
    out.products.push_back(RecsProduct{product.id, product.category, product.category_source, product.slot,
                                       static_cast<std::int8_t>(product.in_stock ? 1 : 0)});
  }
  out.substitutes = std::move(substitutes);
  std::sort(out.substitutes.begin(), out.substitutes.end(), [](const SubstituteRow& a, const SubstituteRow& b) {
    return std::tie(a.product, a.rank) < std::tie(b.product, b.rank);
  });
  for (const OutfitHit& hit : outfits) {
    out.outfits.push_back(OutfitRow{hit.product, hit.source_image, SlotName(static_cast<Slot>(hit.slot)), hit.box,
                                    hit.rank, hit.item, hit.score});
  }
  std::sort(out.outfits.begin(), out.outfits.end(), [](const OutfitRow& a, const OutfitRow& b) {
    return std::tie(a.product, a.source_image, a.slot, a.rank) < std::tie(b.product, b.source_image, b.slot, b.rank);
  });

  auto product_id = [&](std::int64_t p) -> const std::string& {
    return catalog.products[static_cast<std::size_t>(p)].id;
  };
  std::string substitutes_csv = "product_id,rank,substitute_id,score\n";
  std::set<std::int64_t> with_substitutes;
  for (const auto& row : out.substitutes) {
    with_substitutes.insert(row.product);
    AppendCsvRow(
        {product_id(row.product), std::to_string(row.rank), product_id(row.substitute), Format("%.6f", row.score)},
        &substitutes_csv);
  }
  std::string outfits_csv = "product_id,slot,rank,item_id,score,source_image\n";
  for (const auto& row : out.outfits) {
    AppendCsvRow({product_id(row.product), row.slot, std::to_string(row.rank), product_id(row.item),
                  Format("%.6f", row.score), catalog.image(row.source_image).key},
                 &outfits_csv);
  }
  PublishFile(stage_dir / "substitutes.csv", substitutes_csv);
  PublishFile(stage_dir / "outfits.csv", outfits_csv);
  WriteRecsFile(stage_dir / "recs.h5", out);

  RecsPublished published;
  published.substitute_rows = static_cast<std::int64_t>(out.substitutes.size());
  published.outfit_rows = static_cast<std::int64_t>(out.outfits.size());
  published.products_with_substitutes = static_cast<std::int64_t>(with_substitutes.size());
  stage.AddOutput("substitutes.csv", published.substitute_rows);
  stage.AddOutput("outfits.csv", published.outfit_rows);
  stage.AddOutput("recs.h5", static_cast<std::int64_t>(out.products.size()));
  return published;
}

}  // namespace

StageReport RunRecs(const RecsOptions& options, const MpiWorld& world) {
  const auto start = Clock::now();
  StageReport report;
  report.stage = "recs";
  report.throughput_unit = "products";
  report.facts["run"] = options.run.string();
  LB_CHECK(options.top_k >= 1 && options.outfit_top_k >= 1, "top-k of at least 1");
  ParseCategoryNames(options.category_names);  // a malformed map is a usage error before any work
  Stage stage(&world, options.run, "recs", options.code_version);
  const EmbedRun embed = ReadEmbedRun(options.run);
  // The inputs and the key: every embed shard, index file, ingest shard (category, stock,
  // catalog order) and the dedup table.
  stage.Upstream("embed");
  const StageManifest& index_manifest = stage.Upstream("index");
  stage.Upstream("dedup");
  stage.Upstream("ingest");
  for (int k = 0; k < embed.shard_count; ++k) stage.UseInput("embed", ShardFileName(k, ".h5"));
  for (const auto& output : index_manifest.outputs) stage.UseInput("index", output.path);
  for (int k = 0; k < embed.shard_count; ++k) stage.UseInput("ingest", ShardFileName(k, ".csv"));
  stage.UseInput("dedup", "dedup.h5");
  const std::map<std::string, std::string> option_map = Options(options, embed.model_sha256);
  const std::string options_hash = OptionsHash(option_map);
  stage.Key().Add("options", options_hash);
  std::string why = "--force";
  const bool fresh = options.rerun == RerunPolicy::kReuseValid && stage.Fresh(&why);
  if (world.is_root()) {
    if (!fresh)
      spdlog::info("recommendations over {} shard(s) ({})", embed.shard_count, why);
    else
      spdlog::info("recs outputs are valid: nothing to do");
  }
  if (fresh) {
    report.status = "skipped";
    report.seconds = Seconds(start);
    return report;
  }

  const auto load_start = Clock::now();
  RecsInputs in{ReadCurrentDedup(stage),
                LoadProductCatalog(options.run, embed, &world),
                ReadRunIndex(options.run, embed),
                {},
                {}};
  PrepareCatalog(options, embed, &in, world);
  const double load_seconds = world.MaxAll(Seconds(load_start));

  RecsCounts counted;
  RecsWork work;
  RemoteScores scores = in.catalog.Scores(&world);
  const auto substitutes_start = Clock::now();
  const std::vector<SubstituteRow> substitutes = SubstitutePass(options, in, &scores, world, &counted, &work);
  const double substitutes_seconds = world.MaxAll(Seconds(substitutes_start));
  const auto outfits_start = Clock::now();
  const std::vector<OutfitHit> outfits = OutfitPass(options, in, &scores, world, &counted);
  const double outfits_seconds = world.MaxAll(Seconds(outfits_start));

  work.stopped = StopRequested() ? 1 : 0;
  const RecsCounts totals = SumCounts(&world, counted);
  const RecsWork total_work = SumCounts(&world, work);
  if (total_work.stopped > 0) {
    if (world.is_root()) spdlog::warn("stop requested: nothing of the recs stage is published; rerun lookbook recs");
    report.status = "stopped";
    report.seconds = Seconds(start);
    return report;
  }
  std::vector<SubstituteRow> all_substitutes = world.GatherToRoot(substitutes);
  const std::vector<OutfitHit> all_outfits = world.GatherToRoot(outfits);
  const double peak = world.MaxAll(static_cast<double>(PeakRssBytes()));

  RecsPublished published;
  StageManifest manifest;
  stage.Staging();  // collective: every rank takes part in making the staging folder
  if (world.is_root()) {
    const auto write_start = Clock::now();
    published = WriteTables(options, option_map, in.catalog, std::move(all_substitutes), all_outfits, stage);
    manifest.options = option_map;
    manifest.options_hash = options_hash;
    CountsInto(in.counts, &manifest.counts);
    CountsInto(published, &manifest.counts);
    CountsInto(totals, &manifest.counts);
    report.steps.push_back(
        StepTiming{"publish (rank 0)", Seconds(write_start), published.substitute_rows + published.outfit_rows});
  }
  stage.Publish(manifest);
  published = BroadcastCounts(&world, published);

  ReportCounts(in.counts, &report);
  ReportCounts(totals, &report);
  ReportCounts(published, &report);
  report.counts["substitute_queries"] = total_work.substitute_queries;
  report.counts["peak_rss_bytes_max_rank"] = static_cast<std::int64_t>(peak);
  report.facts["ranks"] = std::to_string(world.size());
  report.facts["blas_core"] = BlasCoreName();
  report.steps.insert(report.steps.begin(),
                      StepTiming{"outfits (slowest rank)", outfits_seconds, totals.outfit_photos});
  report.steps.insert(report.steps.begin(),
                      StepTiming{"substitutes (slowest rank)", substitutes_seconds, total_work.substitute_queries});
  report.steps.insert(report.steps.begin(),
                      StepTiming{"load catalog + index (slowest rank)", load_seconds, in.counts.products});
  report.steps.push_back(StepTiming{"stage skeleton (rank 0)", stage.skeleton_seconds(), 0});
  report.seconds = Seconds(start);
  report.throughput_items = in.counts.products;
  return report;
}

}  // namespace lookbook
