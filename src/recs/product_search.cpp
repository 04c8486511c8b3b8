#include "recs/product_search.h"

#include <algorithm>
#include <map>
#include <set>

#include "util/error.h"
#include "util/vectors.h"

namespace lookbook {

ProductFilter MakeProductFilter(const ProductCatalog& catalog, const ShardedIndex& index,
                                const std::vector<int>& eligible) {
  std::vector<std::int64_t> ids;
  int max_shots = 0;
  for (const int p : eligible) {
    const auto& shots = catalog.products[static_cast<std::size_t>(p)].shots;
    ids.insert(ids.end(), shots.begin(), shots.end());
    max_shots = std::max(max_shots, static_cast<int>(shots.size()));
  }
  return ProductFilter{index.Filter(ids), max_shots};
}

std::vector<std::vector<ProductMatch>> TopProducts(const ProductCatalog& catalog, const ShardedIndex& index,
                                                   const ProductFilter& filter,
                                                   const std::vector<ProductRequest>& requests, int k, int nprobe,
                                                   RemoteScores* scores) {
  LB_CHECK(k >= 1, "TopProducts needs k >= 1");
  std::vector<std::vector<ProductMatch>> out(requests.size());
  // Each request's candidate products: every product an image neighbour of any of its query
  // vectors belongs to, less the excluded ones; in catalog order (deterministic).
  std::vector<std::vector<int>> candidates(requests.size());
  if (filter.ids.size() > 0 && !requests.empty()) {
    // How many image neighbours each request needs: k products of at most max_shots shots each,
    // plus the shots of the products it excludes. Requests are searched in groups of equal need,
    // so that what one request gets never depends on which others share its batch (the ranks
    // batch products differently; with an approximate index a larger k changes the candidates).
    std::map<std::int64_t, std::vector<std::size_t>> by_need;
    for (std::size_t r = 0; r < requests.size(); ++r) {
      std::int64_t shots = 0;
      for (const int p : requests[r].excluded) {
        shots += static_cast<std::int64_t>(catalog.products[static_cast<std::size_t>(p)].shots.size());
      }
      by_need[static_cast<std::int64_t>(k) * filter.max_shots + shots].push_back(r);
    }
    for (const auto& [wanted, members] : by_need) {
      std::vector<float> queries;
      for (const std::size_t r : members) {
        for (const float* q : requests[r].queries) queries.insert(queries.end(), q, q + catalog.dim);
      }
      const int k_search = static_cast<int>(std::min<std::int64_t>(wanted, filter.ids.size()));
      const auto n = static_cast<std::int64_t>(queries.size() / static_cast<std::size_t>(catalog.dim));
      const SearchResult found = index.Search(queries.data(), n, k_search, nprobe, filter.ids);
      std::size_t row = 0;
      for (const std::size_t r : members) {
        std::set<int> products;
        for (std::size_t q = 0; q < requests[r].queries.size(); ++q, ++row) {
          for (int j = 0; j < k_search; ++j) {
            const std::int64_t id = found.ids[row * static_cast<std::size_t>(k_search) + static_cast<std::size_t>(j)];
            if (id < 0) continue;
            const auto it = catalog.product_of_image.find(id);
            LB_CHECK(it != catalog.product_of_image.end(), "the index holds an image the catalog does not");
            products.insert(it->second);
          }
        }
        for (const int p : requests[r].excluded) products.erase(p);
        candidates[r].assign(products.begin(), products.end());
      }
    }
  }
  // The exact score of every query vector with every shot of every candidate: asked query by
  // query (one copy of a query travels per rank), answered in one exchange.
  scores->Clear();
  std::vector<std::vector<std::size_t>> tickets(requests.size());  // [shot position][query], per request
  for (std::size_t r = 0; r < requests.size(); ++r) {
    const ProductRequest& request = requests[r];
    std::size_t shots = 0;
    for (const int p : candidates[r]) shots += catalog.products[static_cast<std::size_t>(p)].shots.size();
    tickets[r].resize(shots * request.queries.size());
    for (std::size_t q = 0; q < request.queries.size(); ++q) {
      std::size_t position = 0;
      for (const int p : candidates[r]) {
        for (const std::int64_t shot : catalog.products[static_cast<std::size_t>(p)].shots) {
          tickets[r][position++ * request.queries.size() + q] = scores->Ask(request.queries[q], shot);
        }
      }
    }
  }
  scores->Exchange();
  for (std::size_t r = 0; r < requests.size(); ++r) {
    const std::size_t nq = requests[r].queries.size();
    std::vector<ProductMatch> scored;
    std::size_t position = 0;
    for (const int p : candidates[r]) {
      ProductMatch best{p, -2.0f, -1};
      for (const std::int64_t shot : catalog.products[static_cast<std::size_t>(p)].shots) {
        for (std::size_t q = 0; q < nq; ++q) {
          const float score = scores->Answer(tickets[r][position * nq + q]);
          if (score > best.score) best = ProductMatch{p, score, shot};
        }
        ++position;
      }
      scored.push_back(best);
    }
    std::sort(scored.begin(), scored.end(), [](const ProductMatch& a, const ProductMatch& b) {
      return a.score != b.score ? a.score > b.score : a.product < b.product;
    });
    if (static_cast<int>(scored.size()) > k) scored.resize(static_cast<std::size_t>(k));
    out[r] = std::move(scored);
  }
  return out;
}

std::vector<ProductMatch> WithoutClusterRepeats(const std::vector<ProductMatch>& ranked,
                                                const std::vector<std::vector<int>>& mates, int k,
                                                std::int64_t* dropped) {
  std::vector<ProductMatch> list;
  for (const auto& item : ranked) {
    if (static_cast<int>(list.size()) == k) break;
    const auto& item_mates = mates.at(static_cast<std::size_t>(item.product));
    const bool repeats = std::any_of(list.begin(), list.end(), [&](const ProductMatch& earlier) {
      return std::binary_search(item_mates.begin(), item_mates.end(), earlier.product);
    });
    if (repeats) {
      ++*dropped;
      continue;
    }
    list.push_back(item);
  }
  return list;
}

}  // namespace lookbook
