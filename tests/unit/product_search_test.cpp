#include "recs/product_search.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <vector>

#include "index/vector_index.h"
#include "recs/product_catalog.h"
#include "store/embed_run.h"
#include "util/vectors.h"

namespace lookbook {
namespace {

constexpr int kDim = 4;

// A catalog of one shard: product p has the shots listed in `shots_of[p]`, each a unit vector.
struct Fixture {
  ProductCatalog catalog;
  std::optional<ShardedIndex> index;

  explicit Fixture(const std::vector<std::vector<std::vector<float>>>& shots_of) {
    catalog.dim = kDim;
    catalog.shards.resize(1);
    EmbedShard& shard = catalog.shards[0];
    std::vector<std::int64_t> ids;
    for (std::size_t p = 0; p < shots_of.size(); ++p) {
      Product product;
      product.id = "p" + std::to_string(p);
      product.in_stock = true;
      product.catalog_row = static_cast<std::int64_t>(p);
      for (const auto& shot : shots_of[p]) {
        const std::int64_t id = ImageId(0, static_cast<std::int64_t>(shard.images.size()));
        ImageRow row;
        row.key = product.id + "/image_" + std::to_string(product.shots.size() + 1);
        row.product_id = product.id;
        shard.images.push_back(row);
        std::vector<float> v = shot;
        Normalize(v.data(), kDim);
        shard.embeddings.insert(shard.embeddings.end(), v.begin(), v.end());
        product.shots.push_back(id);
        catalog.product_of_image[id] = static_cast<int>(p);
        ids.push_back(id);
      }
      catalog.product_by_id[product.id] = static_cast<int>(p);
      catalog.products.push_back(product);
    }
    VectorIndex flat = VectorIndex::Train("Flat", kDim, shard.embeddings.data(), static_cast<std::int64_t>(ids.size()));
    flat.Add(shard.embeddings.data(), ids.data(), static_cast<std::int64_t>(ids.size()));
    std::vector<VectorIndex> shards;
    shards.push_back(std::move(flat));
    index.emplace(std::move(shards));
  }

  std::vector<std::vector<ProductMatch>> Top(const std::vector<ProductRequest>& requests,
                                             const std::vector<int>& eligible, int k) {
    const ProductFilter filter = MakeProductFilter(catalog, *index, eligible);
    RemoteScores scores = catalog.Scores(nullptr);
    return TopProducts(catalog, *index, filter, requests, k, 1, &scores);
  }
};

TEST(TopProducts, AProductScoresItsBestShotAndExclusionsNeverComeBack) {
  // p0 the query; p1 has one shot near it and one far; p2 a single middling shot; p3 far.
  Fixture f({{{1, 0, 0, 0}}, {{0, 0, 1, 0}, {1, 0.1f, 0, 0}}, {{1, 1, 0, 0}}, {{0, 0, 0, 1}}});
  ProductRequest request;
  request.queries.push_back(f.catalog.vector(f.catalog.products[0].shots[0]));
  request.excluded = {0};
  const auto lists = f.Top({request}, {0, 1, 2, 3}, 2);
  ASSERT_EQ(lists.size(), 1u);
  ASSERT_EQ(lists[0].size(), 2u);
  EXPECT_EQ(lists[0][0].product, 1);  // its near shot wins, though its other one is far
  EXPECT_EQ(lists[0][0].image, f.catalog.products[1].shots[1]);
  EXPECT_NEAR(lists[0][0].score, 1.0f / std::sqrt(1.01f), 1e-6f);
  EXPECT_EQ(lists[0][1].product, 2);
  EXPECT_NEAR(lists[0][1].score, 1.0f / std::sqrt(2.0f), 1e-6f);
  // Excluding p1 (a near-duplicate's product) brings the next one up; the list stays full.
  request.excluded = {0, 1};
  const auto without = f.Top({request}, {0, 1, 2, 3}, 2);
  ASSERT_EQ(without[0].size(), 2u);
  EXPECT_EQ(without[0][0].product, 2);
  EXPECT_EQ(without[0][1].product, 3);
}

TEST(TopProducts, OnlyTheFilterCountsAndSeveralQueriesTakeTheBest) {
  Fixture f({{{1, 0, 0, 0}}, {{0.9f, 0.1f, 0, 0}}, {{0, 1, 0, 0}}, {{0, 0, 1, 0}}});
  ProductRequest request;
  request.queries = {f.catalog.vector(f.catalog.products[0].shots[0]),
                     f.catalog.vector(f.catalog.products[3].shots[0])};
  // p1 is out of the filter (out of stock): never returned, however near.
  const auto lists = f.Top({request}, {2, 3}, 5);
  ASSERT_EQ(lists[0].size(), 2u);
  EXPECT_EQ(lists[0][0].product, 3);  // the second query is p3's own shot: cosine 1
  EXPECT_NEAR(lists[0][0].score, 1.0f, 1e-6f);
  EXPECT_EQ(lists[0][1].product, 2);
  // With nothing eligible a request comes back empty.
  EXPECT_TRUE(f.Top({request}, {}, 3)[0].empty());
}

TEST(TopProducts, WhatARequestGetsDoesNotDependOnItsBatch) {
  Fixture f({{{1, 0, 0, 0}}, {{1, 0.2f, 0, 0}}, {{1, 0, 0.3f, 0}}, {{0, 1, 0, 0}}, {{0, 1, 0.2f, 0}}});
  std::vector<ProductRequest> requests(3);
  for (int p = 0; p < 3; ++p) {
    requests[static_cast<std::size_t>(p)].queries.push_back(
        f.catalog.vector(f.catalog.products[static_cast<std::size_t>(p)].shots[0]));
    requests[static_cast<std::size_t>(p)].excluded = {p};
  }
  requests[2].excluded.push_back(4);  // a different need (more excluded shots): another search group
  const auto together = f.Top(requests, {0, 1, 2, 3, 4}, 2);
  for (std::size_t r = 0; r < requests.size(); ++r) {
    const auto alone = f.Top({requests[r]}, {0, 1, 2, 3, 4}, 2);
    ASSERT_EQ(alone[0].size(), together[r].size());
    for (std::size_t i = 0; i < alone[0].size(); ++i) {
      EXPECT_EQ(alone[0][i].product, together[r][i].product);
      EXPECT_EQ(alone[0][i].score, together[r][i].score);
    }
  }
}

}  // namespace
}  // namespace lookbook

namespace lookbook {
namespace {

TEST(WithoutClusterRepeats, OneMemberOfEachClusterAndTheListStaysFull) {
  // Products 1 and 2 are one cluster (a relisting), 3, 4 and 5 another.
  const std::vector<std::vector<int>> mates = {{}, {2}, {1}, {4, 5}, {3, 5}, {3, 4}, {}};
  const std::vector<ProductMatch> ranked = {{1, 0.99f, 10}, {2, 0.98f, 20}, {3, 0.9f, 30},
                                            {4, 0.89f, 40}, {6, 0.8f, 60},  {5, 0.7f, 50}};
  std::int64_t dropped = 0;
  const auto list = WithoutClusterRepeats(ranked, mates, 3, &dropped);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ((std::vector<int>{list[0].product, list[1].product, list[2].product}), (std::vector<int>{1, 3, 6}));
  EXPECT_EQ(list[1].image, 30) << "items keep their scores and images";
  EXPECT_EQ(dropped, 2) << "2 (a mate of 1) and 4 (a mate of 3); 5 is never reached";
  // Without clusters it is the first k.
  dropped = 0;
  const std::vector<std::vector<int>> none(7);
  EXPECT_EQ(WithoutClusterRepeats(ranked, none, 4, &dropped).size(), 4u);
  EXPECT_EQ(dropped, 0);
  // A ranked list shorter than k after the drops comes back short.
  EXPECT_EQ(WithoutClusterRepeats({ranked[0], ranked[1]}, mates, 3, &dropped).size(), 1u);
}

}  // namespace
}  // namespace lookbook
