#include "eval/recs_eval.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <unordered_map>

#include "catalog/csv.h"
#include "eval/metrics.h"
#include "stage/run_status.h"
#include "stage/stage.h"
#include "store/embed_run.h"
#include "store/recs_file.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/manifest.h"

namespace lookbook {

std::map<std::string, double> EvaluateRecs(const RecsEvalOptions& options) {
  const std::filesystem::path stage_dir = options.run / "recs";
  std::string why;
  const auto manifest = ReadManifest(stage_dir, &why);
  if (!manifest) throw InputError("run " + options.run.string() + " has no recs stage (" + why + ")");
  const std::string damaged = VerifyOutputs(stage_dir, *manifest);
  if (!damaged.empty()) throw InputError(stage_dir.string() + ": " + damaged);
  const EmbedRun embed = ReadEmbedRun(options.run);
  if (const std::string stale = StaleInputs(options.run, "recs"); !stale.empty()) {
    throw InputError("the recs stage of " + options.run.string() + " is stale (" + stale + "): rerun lookbook recs");
  }
  const RecsFile recs = ReadRecsFile(stage_dir / "recs.h5");
  std::unordered_map<std::string, std::int64_t> product_index;
  for (std::size_t p = 0; p < recs.products.size(); ++p)
    product_index[recs.products[p].id] = static_cast<std::int64_t>(p);

  // Image references as written in the catalog -> image ids.
  std::unordered_map<std::string, std::vector<std::int64_t>> ids_of_path;
  for (int k = 0; k < embed.shard_count; ++k) {
    const EmbedShard shard = ReadVerifiedShard(embed, k);
    for (std::size_t row = 0; row < shard.images.size(); ++row) {
      ids_of_path[shard.images[row].path].push_back(ImageId(k, static_cast<std::int64_t>(row)));
    }
  }

  // Outfits: the best rank of each truth item among its photo's rows.
  std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, int> rank_of;  // (product, photo, item) -> best rank
  for (const auto& row : recs.outfits) {
    const auto key = std::make_tuple(row.product, row.source_image, row.item);
    const auto it = rank_of.find(key);
    if (it == rank_of.end() || row.rank < it->second) rank_of[key] = row.rank;
  }
  double out_of_stock = 0, photos = 0;
  std::vector<int> best_ranks;  // per in-stock truth item
  const auto truth = ReadCsvFile(options.truth, "outfit,product_ids");
  for (const auto& fields : truth) {
    const auto found = ids_of_path.find(fields[0]);
    if (found == ids_of_path.end())
      throw InputError(options.truth.string() + ": outfit photo '" + fields[0] + "' is not in the run");
    std::istringstream list(fields[1]);
    std::vector<std::string> products;
    for (std::string id; list >> id;) products.push_back(id);
    if (products.size() < 2) continue;
    const auto anchor = product_index.find(products[0]);
    if (anchor == product_index.end())
      throw InputError(options.truth.string() + ": product '" + products[0] + "' is not in the run");
    photos += 1;
    for (std::size_t i = 1; i < products.size(); ++i) {
      const auto item = product_index.find(products[i]);
      if (item == product_index.end())
        throw InputError(options.truth.string() + ": product '" + products[i] + "' is not in the run");
      if (!recs.products[static_cast<std::size_t>(item->second)].in_stock) {
        out_of_stock += 1;
        continue;
      }
      int best = 0;
      for (const std::int64_t photo : found->second) {
        const auto it = rank_of.find(std::make_tuple(anchor->second, photo, item->second));
        if (it != rank_of.end() && (best == 0 || it->second < best)) best = it->second;
      }
      best_ranks.push_back(best);
    }
  }

  // Substitutes: same-category precision of each product's first 10.
  std::vector<std::string> category(recs.products.size());
  for (std::size_t p = 0; p < recs.products.size(); ++p) category[p] = recs.products[p].category;
  std::string source = "recs";
  if (!options.products.empty()) {
    source = "truth";
    CsvReader reader = CsvReader::Open(options.products);
    CsvRecord record;
    if (!reader.Next(&record)) throw InputError(options.products.string() + " is empty");
    const std::vector<std::string> header = record.fields;
    const auto column = [&](const char* name) {
      const auto at = std::find(header.begin(), header.end(), name);
      if (at == header.end()) throw InputError(options.products.string() + " lacks the column " + name);
      return static_cast<std::size_t>(at - header.begin());
    };
    const std::size_t id_column = column("product_id"), class_column = column("class");
    std::fill(category.begin(), category.end(), "");
    while (reader.Next(&record)) {
      if (record.error != CsvError::kNone || record.fields.size() != header.size()) {
        throw InputError(options.products.string() + ": record " + std::to_string(record.index) + " is damaged");
      }
      const auto it = product_index.find(record.fields[id_column]);
      if (it != product_index.end()) category[static_cast<std::size_t>(it->second)] = record.fields[class_column];
    }
  }
  std::map<std::int64_t, std::pair<int, int>> same;  // product -> (same category, listed) within rank 10
  for (const auto& row : recs.substitutes) {
    if (row.rank > 10) continue;
    const auto& mine = category[static_cast<std::size_t>(row.product)];
    if (mine.empty()) continue;
    auto& tally = same[row.product];
    tally.second += 1;
    tally.first += category[static_cast<std::size_t>(row.substitute)] == mine ? 1 : 0;
  }
  double precision = 0;
  for (const auto& [product, tally] : same) precision += static_cast<double>(tally.first) / tally.second;

  return {
      {"outfit_photos", photos},
      {"outfit_items", static_cast<double>(best_ranks.size())},
      {"outfit_items_out_of_stock", out_of_stock},
      {"outfit_k", static_cast<double>(options.k)},
      {"outfit_recall_at_k", RecallAtK(best_ranks, options.k)},
      {"outfit_mrr", MeanReciprocalRank(best_ranks)},
      {"substitute_products", static_cast<double>(same.size())},
      {"substitute_same_category_precision_at_10", same.empty() ? 0.0 : precision / static_cast<double>(same.size())},
      {"substitute_categories_from_truth", source == "truth" ? 1.0 : 0.0}};
}

}  // namespace lookbook
