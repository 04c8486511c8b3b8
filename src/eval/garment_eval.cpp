#include "eval/garment_eval.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "catalog/csv.h"
#include "store/embed_run.h"
#include "util/error.h"
#include "util/manifest.h"
#include "util/vectors.h"

namespace lookbook {
namespace {

std::vector<EmbedShard> ReadRunShards(const std::filesystem::path& run) {
  const EmbedRun embed = ReadEmbedRun(run);
  std::vector<EmbedShard> shards;
  for (int k = 0; k < embed.shard_count; ++k) shards.push_back(ReadVerifiedShard(embed, k));
  return shards;
}

}  // namespace

std::map<std::string, double> EvaluateGarments(const GarmentEvalOptions& options) {
  const auto shards = ReadRunShards(options.run);
  if (shards.empty()) throw InputError("run " + options.run.string() + " has no embed shards");
  const auto d = static_cast<std::size_t>(shards.front().meta.embedding_dim);
  if (shards.front().meta.segmenter_name.empty()) {
    throw InputError("run " + options.run.string() + " was embedded without a segmenter: no garments to evaluate");
  }

  std::unordered_map<std::string, std::string> slot_of_product;
  for (const auto& row : ReadCsvFile(options.truth / "products.csv", "product_id,fashion_index,class,colour,slot")) {
    slot_of_product[row[0]] = row[4];
  }
  struct Truth {
    std::vector<std::string> products;
  };
  std::unordered_map<std::string, Truth> outfits;  // outfit photo path -> its products
  for (const auto& row : ReadCsvFile(options.truth / "outfits.csv", "outfit,product_ids")) {
    std::istringstream ids(row[1]);
    Truth truth;
    for (std::string id; ids >> id;) truth.products.push_back(id);
    outfits[row[0]] = truth;
  }

  // Catalog products: their non-outfit images' embeddings.
  std::vector<std::string> product_ids;
  std::unordered_map<std::string, std::size_t> product_index;
  std::vector<std::vector<const float*>> product_vectors;
  for (const auto& shard : shards) {
    for (std::size_t i = 0; i < shard.images.size(); ++i) {
      const ImageRow& row = shard.images[i];
      if (row.status != 0 || outfits.count(row.path)) continue;
      auto [it, added] = product_index.emplace(row.product_id, product_ids.size());
      if (added) {
        product_ids.push_back(row.product_id);
        product_vectors.emplace_back();
      }
      product_vectors[it->second].push_back(shard.embeddings.data() + i * d);
    }
  }

  double photos = 0, detected_slots = 0, correct_slots = 0, true_slots = 0, garments = 0;
  double pairs = 0, pairs_detected = 0, rank1 = 0, top5 = 0;
  for (const auto& shard : shards) {
    for (std::size_t i = 0; i < shard.images.size(); ++i) {
      const ImageRow& row = shard.images[i];
      const auto truth = outfits.find(row.path);
      if (row.status != 0 || truth == outfits.end()) continue;
      photos += 1;
      // This photo's garments; per slot the largest.
      std::map<std::string, std::size_t> largest;
      for (std::size_t g = 0; g < shard.garments.size(); ++g) {
        if (shard.garments[g].image_index != static_cast<std::int64_t>(i)) continue;
        garments += 1;
        const auto it = largest.find(shard.garments[g].slot);
        if (it == largest.end() || shard.garments[it->second].area < shard.garments[g].area)
          largest[shard.garments[g].slot] = g;
      }
      std::set<std::string> expected;
      for (const auto& product : truth->second.products) {
        if (!slot_of_product.count(product)) {
          throw InputError((options.truth / "outfits.csv").string() + ": product " + product +
                           " is not in products.csv");
        }
        expected.insert(slot_of_product.at(product));
      }
      detected_slots += static_cast<double>(largest.size());
      true_slots += static_cast<double>(expected.size());
      for (const auto& [slot, g] : largest) correct_slots += expected.count(slot) ? 1 : 0;

      for (const auto& product : truth->second.products) {
        pairs += 1;
        const auto found = largest.find(slot_of_product.at(product));
        if (found == largest.end()) continue;
        pairs_detected += 1;
        const float* query = shard.garment_embeddings.data() + found->second * d;
        std::vector<std::pair<float, std::size_t>> scores;
        for (std::size_t p = 0; p < product_ids.size(); ++p) {
          float best = -2;
          for (const float* v : product_vectors[p]) best = std::max(best, Dot(query, v, static_cast<int>(d)));
          scores.emplace_back(best, p);
        }
        const std::size_t k = std::min<std::size_t>(5, scores.size());
        std::partial_sort(scores.begin(), scores.begin() + static_cast<long>(k), scores.end(),
                          [](const auto& a, const auto& b) {
                            return a.first > b.first || (a.first == b.first && a.second < b.second);
                          });
        if (k > 0 && product_ids[scores[0].second] == product) rank1 += 1;
        for (std::size_t r = 0; r < k; ++r) {
          if (product_ids[scores[r].second] == product) top5 += 1;
        }
      }
    }
  }
  if (photos == 0)
    throw InputError("no outfit photo of " + (options.truth / "outfits.csv").string() + " is an ok image of the run");
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  return {
      {"outfit_photos", photos},
      {"slot_precision", ratio(correct_slots, detected_slots)},
      {"slot_recall", ratio(correct_slots, true_slots)},
      {"crop_pairs", pairs},
      {"crop_rank1", ratio(rank1, pairs)},
      {"crop_rank1_detected", ratio(rank1, pairs_detected)},
      {"crop_recall_at_5", ratio(top5, pairs)},
      {"garments_per_photo", ratio(garments, photos)},
  };
}

}  // namespace lookbook
