// `lookbook eval recs`: a run's recommendation tables against known outfits and categories.
//
// Outfits: truth CSV `outfit,product_ids` (the demo's truth/outfits.csv): an outfit photo as
// written in the catalog and the space-separated products drawn in it, the photo's own product
// first. Every other product of a photo that is in stock (only in-stock items can be
// recommended; the out-of-stock ones are counted apart) is looked up in RUN/recs' outfit rows of
// that photo: its best rank over the photo's slots.
//   outfit_recall_at_k   share of those items at rank <= k
//   outfit_mrr           mean of 1 / rank (0 when absent; ranks go to the run's outfit_top_k)
// Substitutes: for every product with substitutes, the share of its first 10 that have its
// category, averaged over products (substitute_same_category_precision_at_10). Categories are
// the truth's (`products` CSV with columns product_id and class, the demo's truth/products.csv)
// when given, else the recs stage's own.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace lookbook {

struct RecsEvalOptions {
  std::filesystem::path run;
  std::filesystem::path truth;     // outfits CSV
  std::filesystem::path products;  // optional: product_id,...,class
  int k = 5;
};

// Throws InputError when the run has no valid recs stage or a truth file cannot be read.
std::map<std::string, double> EvaluateRecs(const RecsEvalOptions& options);

}  // namespace lookbook
