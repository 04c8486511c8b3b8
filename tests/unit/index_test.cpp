#include "index/vector_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>

#include "store/embed_run.h"
#include "tests/unit/test_support.h"
#include "util/error.h"

namespace lookbook {
namespace {

// n unit vectors around `clusters` centres, like real embeddings.
std::vector<float> Clustered(int n, int d, int clusters, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> centres(static_cast<std::size_t>(clusters * d));
  for (auto& x : centres) x = normal(rng);
  std::vector<float> out(static_cast<std::size_t>(n * d));
  for (int i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng() % static_cast<unsigned>(clusters));
    float norm = 0;
    for (int j = 0; j < d; ++j) {
      float& x = out[static_cast<std::size_t>(i * d + j)];
      x = centres[static_cast<std::size_t>(c * d + j)] + 0.5f * normal(rng);
      norm += x * x;
    }
    for (int j = 0; j < d; ++j) out[static_cast<std::size_t>(i * d + j)] /= std::sqrt(norm);
  }
  return out;
}

TEST(ImageId, ShardAndRowRoundTrip) {
  const std::int64_t id = ImageId(70000, 4000000000ll);
  EXPECT_EQ(ShardOfImageId(id), 70000);
  EXPECT_EQ(RowOfImageId(id), 4000000000ll);
}

TEST(AutoFactory, FollowsTheDocumentedRule) {
  EXPECT_EQ(AutoFactory(480, 128, 8ull << 30), "Flat");
  EXPECT_EQ(AutoFactory(50'000, 512, 8ull << 30), "Flat");
  EXPECT_EQ(AutoFactory(1'000'000, 512, 8ull << 30), "IVF4096,PQ64x4np");   // d/8 sub-vectors, 4 bits each
  EXPECT_EQ(AutoFactory(1'000'000, 512, 20ull << 20), "IVF4096,PQ32x4np");  // what fits 20 MiB: 16 bytes a vector
  EXPECT_EQ(AutoFactory(100'000'000, 512, 1ull << 30), "IVF32768,PQ16x4np");
  EXPECT_EQ(AutoFactory(1'000'000'000, 512, 1ull << 30), "IVF65536,PQ2x4np");  // nlist clamped, 1 byte a vector
  EXPECT_EQ(AutoFactory(1'000'000, 768, 8ull << 30), "IVF4096,PQ96x4np");      // m divides d
  EXPECT_EQ(AutoFactory(1'000'000, 100, 1ull << 20), "IVF4096,PQ2x4np");       // the most that fits 1 MiB
  EXPECT_EQ(AutoFactory(2'000'000, 100, 1ull << 20), "IVF4096,PQ1x4np");       // nothing fits: the smallest
}

TEST(VectorIndex, ShardsSearchedTogetherEqualOneIndexOfEverything) {
  const int d = 32, n = 3000;
  const auto vectors = Clustered(n, d, 20, 1);
  // Flat and IVF shards are merged; fast-scan shards (block lists) are searched one by one.
  for (const std::string factory : {"Flat", "IVF16,Flat", "IVF16,PQ8x4np", "IVF16,PQ8x4fs"}) {
    const VectorIndex trained = VectorIndex::Train(factory, d, vectors.data(), n);
    const auto bytes = trained.Serialize();
    VectorIndex whole = VectorIndex::Deserialize(bytes);
    std::vector<VectorIndex> shards;
    std::vector<std::int64_t> all_ids;
    for (int k = 0; k < 3; ++k) {
      VectorIndex shard = VectorIndex::Deserialize(bytes);
      std::vector<std::int64_t> ids;
      std::vector<float> part;
      for (int i = k; i < n; i += 3) {
        ids.push_back(ImageId(k, i / 3));
        part.insert(part.end(), vectors.begin() + i * d, vectors.begin() + (i + 1) * d);
      }
      shard.Add(part.data(), ids.data(), static_cast<std::int64_t>(ids.size()));
      whole.Add(part.data(), ids.data(), static_cast<std::int64_t>(ids.size()));
      shards.push_back(std::move(shard));
    }
    const ShardedIndex sharded(std::move(shards));
    EXPECT_EQ(sharded.size(), n);
    const int queries = 200, k = 10;
    const SearchResult a = whole.Search(vectors.data(), queries, k, 4);
    const SearchResult b = sharded.Search(vectors.data(), queries, k, 4);
    int differ = 0;
    for (std::size_t i = 0; i < a.ids.size(); ++i) {
      EXPECT_NEAR(a.scores[i], b.scores[i], 1e-5) << factory;
      differ += a.ids[i] != b.ids[i];
    }
    // Only tied scores may swap ids; fast-scan's 4-bit distances tie often, so there the scores alone count.
    if (factory.find("fs") == std::string::npos) EXPECT_LE(differ, 2) << factory;
    // Every query finds itself first (Flat is exact within the probed lists).
    if (factory == "Flat" || factory == "IVF16,Flat") {
      for (int q = 0; q < queries; ++q) EXPECT_EQ(a.ids[static_cast<std::size_t>(q * k)], ImageId(q % 3, q / 3));
    }
  }
}

TEST(VectorIndex, FilesRoundTripAndBadInputIsAnInputError) {
  testing::ScopedTempDir dir;
  const int d = 16;
  const auto vectors = Clustered(500, d, 5, 2);
  VectorIndex index = VectorIndex::Train("IVF4,Flat", d, vectors.data(), 500);
  std::vector<std::int64_t> ids(500);
  for (int i = 0; i < 500; ++i) ids[static_cast<std::size_t>(i)] = 1000 + i;
  index.Add(vectors.data(), ids.data(), 500);
  index.WriteFile(dir.path() / "x.faiss");
  const VectorIndex read = VectorIndex::ReadFile(dir.path() / "x.faiss");
  EXPECT_EQ(read.size(), 500);
  EXPECT_EQ(read.Search(vectors.data(), 1, 1, 4).ids[0], 1000);
  EXPECT_THROW(VectorIndex::Train("NoSuchIndex", d, vectors.data(), 500), InputError);
  EXPECT_THROW(VectorIndex::Train("IVF1024,Flat", d, vectors.data(), 10), InputError);  // too few to train
  EXPECT_THROW(VectorIndex::Deserialize({1, 2, 3, 4}), InputError);
}

// A filtered search returns only allowed ids, and the same neighbours as an exact search over
// the allowed vectors alone: never fewer than k while k allowed vectors exist, even when the
// allowed ones are rare in the probed lists (IVF then searches more lists).
TEST(VectorIndex, FilteredSearchActsInsideTheSearch) {
  const int d = 16, n = 3000, k = 8;
  const auto vectors = Clustered(n, d, 12, 5);
  for (const std::string factory : {"Flat", "IVF32,Flat", "IVF32,PQ4np"}) {
    const auto sample = Clustered(n, d, 12, 5);
    std::vector<VectorIndex> shards;
    const VectorIndex trained = VectorIndex::Train(factory, d, sample.data(), n);
    const auto bytes = trained.Serialize();
    for (int s = 0; s < 2; ++s) {
      VectorIndex shard = VectorIndex::Deserialize(bytes);
      std::vector<float> part;
      std::vector<std::int64_t> ids;
      for (int i = s; i < n; i += 2) {
        part.insert(part.end(), vectors.begin() + i * d, vectors.begin() + (i + 1) * d);
        ids.push_back(ImageId(s, i));
      }
      shard.Add(part.data(), ids.data(), static_cast<std::int64_t>(ids.size()));
      shards.push_back(std::move(shard));
    }
    const ShardedIndex index(std::move(shards));
    // Every 97th vector is allowed: 31 of 3000, so most lists hold none.
    std::vector<std::int64_t> allowed;
    for (int i = 0; i < n; i += 97) allowed.push_back(ImageId(i % 2, i));
    const IdFilter filter = index.Filter(allowed);
    EXPECT_EQ(filter.size(), static_cast<std::int64_t>(allowed.size()));
    const int queries = 20;
    const SearchResult found = index.Search(vectors.data(), queries, k, 1, filter);
    for (int q = 0; q < queries; ++q) {
      // The exact answer over the allowed vectors.
      std::vector<std::pair<float, std::int64_t>> exact;
      for (int i = 0; i < n; i += 97) {
        float dot = 0;
        for (int j = 0; j < d; ++j)
          dot += vectors[static_cast<std::size_t>(q * d + j)] * vectors[static_cast<std::size_t>(i * d + j)];
        exact.emplace_back(dot, ImageId(i % 2, i));
      }
      std::sort(exact.rbegin(), exact.rend());
      int overlap = 0;
      for (int j = 0; j < k; ++j) {
        const std::int64_t id = found.ids[static_cast<std::size_t>(q * k + j)];
        ASSERT_GE(id, 0) << factory << ": a filtered search came back short";
        EXPECT_NE(std::find(allowed.begin(), allowed.end(), id), allowed.end()) << factory;
        for (int e = 0; e < k; ++e) overlap += exact[static_cast<std::size_t>(e)].second == id;
      }
      // Flat is exact; IVF searches only the lists it probed (more when the filter left it short).
      EXPECT_GE(overlap, factory == "Flat" ? k : k / 2) << factory;
    }
  }
  // Fast-scan cannot filter inside the search: a clear error, not a silent post-filter.
  const auto sample = Clustered(n, d, 12, 5);
  VectorIndex a = VectorIndex::Train("IVF8,PQ4x4fs", d, sample.data(), n);
  std::vector<std::int64_t> ids(n);
  for (int i = 0; i < n; ++i) ids[static_cast<std::size_t>(i)] = i;
  a.Add(vectors.data(), ids.data(), n);
  std::vector<VectorIndex> one;
  one.push_back(std::move(a));
  const ShardedIndex fast(std::move(one));
  EXPECT_THROW(fast.Filter({1, 2, 3}), InputError);
}

// Every p != q within the radius, nearest first (fewest bits, then smallest position), compared
// pair by pair: what HashNeighbourIndex::Nearest must return, cut at keep.
std::vector<HashNeighbours> BruteNearest(const std::vector<std::array<std::uint8_t, 8>>& codes,
                                         const std::vector<std::size_t>& queries, int radius, std::size_t keep) {
  auto distance = [&](std::size_t a, std::size_t b) {
    int d = 0;
    for (int k = 0; k < 8; ++k) d += __builtin_popcount(static_cast<unsigned>(codes[a][k] ^ codes[b][k]));
    return d;
  };
  std::vector<HashNeighbours> out;
  for (const std::size_t q : queries) {
    HashNeighbours result;
    for (std::size_t p = 0; p < codes.size(); ++p) {
      if (p != q && distance(q, p) <= radius) result.nearest.emplace_back(distance(q, p), p);
    }
    std::sort(result.nearest.begin(), result.nearest.end());
    result.within_radius = static_cast<std::int64_t>(result.nearest.size());
    if (result.nearest.size() > keep) result.nearest.resize(keep);
    out.push_back(result);
  }
  return out;
}

void ExpectSame(const std::vector<HashNeighbours>& got, const std::vector<HashNeighbours>& want,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].nearest, want[i].nearest) << what << ", query " << i;
    EXPECT_EQ(got[i].within_radius, want[i].within_radius) << what << ", query " << i;
  }
}

TEST(HashNeighbourIndex, FindsTheNearestWithinTheRadiusAsComparingEveryPair) {
  // Random codes, planted near copies (1 to 9 bits flipped) and a few exact repeats: every
  // radius and cut gives what comparing every pair gives.
  std::mt19937_64 random(7);
  std::vector<std::array<std::uint8_t, 8>> codes(600);
  for (auto& code : codes) {
    const std::uint64_t bits = random();
    std::memcpy(code.data(), &bits, 8);
  }
  for (std::size_t i = 0; i < 200; ++i) {
    codes[300 + i] = codes[i];
    for (std::size_t flip = 0; flip < 1 + i % 9; ++flip) {
      const std::size_t bit = random() % 64;
      codes[300 + i][bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }
  }
  for (std::size_t i = 0; i < 20; ++i) codes[550 + i] = codes[3 * i];
  std::vector<std::size_t> queries;
  for (std::size_t i = 0; i < codes.size(); i += 2) queries.push_back(i);
  std::int64_t within = 0;
  for (const int radius : {0, 3, 4, 8, 9}) {
    for (const std::size_t keep : {1, 2, 4, 1000}) {
      const auto want = BruteNearest(codes, queries, radius, keep);
      ExpectSame(HashNeighbourIndex(codes, radius).Nearest(queries, keep), want,
                 "radius " + std::to_string(radius) + ", keep " + std::to_string(keep));
      if (radius == 8 && keep == 1000) {
        for (const auto& w : want) within += w.within_radius;
      }
    }
  }
  EXPECT_GT(within, 50);
  EXPECT_TRUE(HashNeighbourIndex(codes, 3).Nearest({}, 4).empty());
}

TEST(HashNeighbourIndex, ThousandsOfImagesWithOneHashCostWhatOneDoes) {
  // 20,000 images with one placeholder picture's hash among 1,000 others: each keeps its `keep`
  // nearest (the smallest other positions), and counts every one within the radius.
  std::vector<std::array<std::uint8_t, 8>> codes(21000, std::array<std::uint8_t, 8>{1, 2, 3, 4, 5, 6, 7, 8});
  std::mt19937_64 random(3);
  for (std::size_t i = 0; i < 1000; ++i) {
    const std::uint64_t bits = random();
    std::memcpy(codes[20000 + i].data(), &bits, 8);
  }
  std::vector<std::size_t> queries(codes.size());
  std::iota(queries.begin(), queries.end(), std::size_t{0});
  const HashNeighbourIndex index(codes, 4);
  const std::vector<HashNeighbours> found = index.Nearest(queries, 4);
  ASSERT_EQ(found.size(), codes.size());
  EXPECT_EQ(found[0].nearest, (std::vector<std::pair<int, std::size_t>>{{0, 1}, {0, 2}, {0, 3}, {0, 4}}));
  EXPECT_EQ(found[2].nearest, (std::vector<std::pair<int, std::size_t>>{{0, 0}, {0, 1}, {0, 3}, {0, 4}}));
  EXPECT_EQ(found[19999].within_radius, 19999);
  // A spot check of the random ones against every pair.
  const std::vector<std::size_t> some = {20000, 20500, 20999};
  ExpectSame(index.Nearest(some, 4), BruteNearest(codes, some, 4, 4), "random codes among the placeholder");
}

}  // namespace
}  // namespace lookbook
