#include "index/vector_index.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexFlatCodes.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexShards.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>
#include <regex>
#include <sstream>
#include <unordered_set>

#include "util/error.h"
#include "util/publish.h"

namespace lookbook {

struct VectorIndex::Impl {
  std::unique_ptr<faiss::Index> index;
};

namespace {

// nprobe on every IVF level of `index` (IndexIDMap, IndexPreTransform: FAISS finds it).
void SetNprobe(faiss::Index* index, int nprobe) {
  if (faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index)) {
    ivf->nprobe = static_cast<std::size_t>(std::clamp<std::int64_t>(nprobe, 1, static_cast<std::int64_t>(ivf->nlist)));
  }
}

std::uint64_t CodeBytes(const faiss::Index* index) {
  if (const faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index)) {
    return static_cast<std::uint64_t>(ivf->ntotal) * (ivf->code_size + sizeof(faiss::Index::idx_t));
  }
  return static_cast<std::uint64_t>(index->ntotal) *
         (static_cast<std::uint64_t>(index->d) * sizeof(float) + sizeof(faiss::Index::idx_t));
}

}  // namespace

void SetIndexThreads(int threads) { omp_set_num_threads(std::max(1, threads)); }

std::string AutoFactory(std::int64_t n, int d, std::uint64_t memory_budget) {
  LB_CHECK(n >= 0 && d > 0, "AutoFactory of nothing");
  if (n <= 50'000) return "Flat";
  const double ideal = 4.0 * std::sqrt(static_cast<double>(n));
  const std::int64_t nlist = std::clamp<std::int64_t>(std::llround(std::exp2(std::round(std::log2(ideal)))), 64, 65536);
  // The largest divisor m of d, at most d/8, whose 4-bit codes (m/2 bytes) fit; else the
  // smallest divisor.
  int m = 1;
  for (int candidate = std::max(1, d / 8); candidate >= 1; --candidate) {
    if (d % candidate != 0) continue;
    m = candidate;
    if (static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>((candidate + 1) / 2) <= memory_budget) break;
  }
  return "IVF" + std::to_string(nlist) + ",PQ" + std::to_string(m) + "x4np";
}

std::int64_t TrainingSize(const std::string& factory, std::int64_t n) {
  static const std::regex ivf("IVF([0-9]+)");
  std::smatch match;
  std::int64_t wanted = 0;
  if (std::regex_search(factory, match, ivf)) wanted = 39 * std::stoll(match[1].str());
  if (factory.find("PQ") != std::string::npos) wanted = std::max<std::int64_t>(wanted, 39 * 256);
  return std::min(n, std::max<std::int64_t>(wanted, 1));
}

VectorIndex::VectorIndex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VectorIndex::VectorIndex(VectorIndex&&) noexcept = default;
VectorIndex& VectorIndex::operator=(VectorIndex&&) noexcept = default;
VectorIndex::~VectorIndex() = default;

VectorIndex VectorIndex::Train(const std::string& factory, int d, const float* vectors, std::int64_t n) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->index.reset(faiss::index_factory(d, factory.c_str(), faiss::METRIC_INNER_PRODUCT));
    // Indexes without their own ids (Flat, PQ, HNSW) get an id map so that ids stay image ids.
    if (faiss::ivflib::try_extract_index_ivf(impl->index.get()) == nullptr) {
      auto* map = new faiss::IndexIDMap(impl->index.release());
      map->own_fields = true;
      impl->index.reset(map);
    }
    impl->index->verbose = false;
    if (!impl->index->is_trained) impl->index->train(n, vectors);
  } catch (const faiss::FaissException& error) {
    throw InputError("FAISS cannot build '" + factory + "' from " + std::to_string(n) +
                     " training vectors: " + error.msg);
  }
  return VectorIndex(std::move(impl));
}

VectorIndex VectorIndex::Deserialize(const std::vector<std::uint8_t>& bytes) {
  faiss::VectorIOReader reader;
  reader.data = bytes;
  auto impl = std::make_unique<Impl>();
  try {
    impl->index.reset(faiss::read_index(&reader));
  } catch (const faiss::FaissException& error) {
    throw InputError(std::string("not a FAISS index: ") + error.msg);
  }
  if (impl->index->metric_type != faiss::METRIC_INNER_PRODUCT) throw InputError("FAISS index is not inner product");
  return VectorIndex(std::move(impl));
}

VectorIndex VectorIndex::ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot read " + path.string());
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    return Deserialize(bytes);
  } catch (const InputError& error) {
    throw InputError(path.string() + ": " + error.what());
  }
}

std::vector<std::uint8_t> VectorIndex::Serialize() const {
  faiss::VectorIOWriter writer;
  faiss::write_index(impl_->index.get(), &writer);
  return std::move(writer.data);
}

void VectorIndex::WriteFile(const std::filesystem::path& path) const {
  const std::vector<std::uint8_t> bytes = Serialize();
  PublishFile(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void VectorIndex::Add(const float* vectors, const std::int64_t* ids, std::int64_t n) {
  static_assert(sizeof(faiss::Index::idx_t) == sizeof(std::int64_t));
  if (n == 0) return;
  impl_->index->add_with_ids(n, vectors, reinterpret_cast<const faiss::Index::idx_t*>(ids));
}

SearchResult VectorIndex::Search(const float* queries, std::int64_t n, int k, int nprobe) const {
  SearchResult result;
  result.scores.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(k));
  result.ids.resize(result.scores.size());
  if (n == 0) return result;
  SetNprobe(impl_->index.get(), nprobe);
  impl_->index->search(n, queries, k, result.scores.data(), reinterpret_cast<faiss::Index::idx_t*>(result.ids.data()));
  return result;
}

std::int64_t VectorIndex::size() const { return impl_->index->ntotal; }
int VectorIndex::dim() const { return impl_->index->d; }
std::uint64_t VectorIndex::code_bytes() const { return CodeBytes(impl_->index.get()); }

std::string VectorIndex::description() const {
  std::ostringstream out;
  if (const faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(impl_->index.get())) {
    out << "IVF nlist=" << ivf->nlist << " code_size=" << ivf->code_size;
  } else {
    out << "flat d=" << impl_->index->d;
  }
  out << " ntotal=" << impl_->index->ntotal;
  return out.str();
}

struct ShardedIndex::Impl {
  std::vector<VectorIndex> shards;
  std::unique_ptr<faiss::IndexShards> fan_out;  // when the shards cannot be merged
};

namespace {

// Whether FAISS can move `index`'s vectors into another index of the same training.
bool Mergeable(const faiss::Index* index) {
  if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index)) {
    return dynamic_cast<const faiss::ArrayInvertedLists*>(ivf->invlists) != nullptr;
  }
  if (const auto* map = dynamic_cast<const faiss::IndexIDMap*>(index)) {
    return dynamic_cast<const faiss::IndexFlatCodes*>(map->index) != nullptr;
  }
  return false;
}

}  // namespace

// IVF shards share their coarse quantizer: their inverted lists are merged into one index, so
// each query is quantized once (fan-out would quantize it once per shard). Other kinds are
// searched shard by shard and merged best-first.
ShardedIndex::ShardedIndex(std::vector<VectorIndex> shards) : impl_(std::make_unique<Impl>()) {
  LB_CHECK(!shards.empty(), "a sharded index of no shards");
  bool mergeable = true;
  for (const auto& shard : shards) mergeable = mergeable && Mergeable(shard.impl_->index.get());
  if (mergeable) {
    try {
      for (std::size_t k = 1; k < shards.size(); ++k)
        shards.front().impl_->index->check_compatible_for_merge(*shards[k].impl_->index);
    } catch (const faiss::FaissException& error) {
      throw InputError(std::string("index shards were not trained together: ") + error.msg);
    }
    for (std::size_t k = 1; k < shards.size(); ++k) shards.front().impl_->index->merge_from(*shards[k].impl_->index, 0);
    shards.erase(shards.begin() + 1, shards.end());
    impl_->shards = std::move(shards);
    return;
  }
  impl_->shards = std::move(shards);
  impl_->fan_out = std::make_unique<faiss::IndexShards>(impl_->shards.front().dim(), /*threaded=*/false,
                                                        /*successive_ids=*/false);
  impl_->fan_out->metric_type = faiss::METRIC_INNER_PRODUCT;  // merge best-first by similarity
  for (auto& shard : impl_->shards) impl_->fan_out->add_shard(shard.impl_->index.get());
}
ShardedIndex::ShardedIndex(ShardedIndex&&) noexcept = default;
ShardedIndex::~ShardedIndex() = default;

SearchResult ShardedIndex::Search(const float* queries, std::int64_t n, int k, int nprobe) const {
  if (!impl_->fan_out) return impl_->shards.front().Search(queries, n, k, nprobe);
  SearchResult result;
  result.scores.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(k));
  result.ids.resize(result.scores.size());
  if (n == 0) return result;
  for (auto& shard : impl_->shards) SetNprobe(shard.impl_->index.get(), nprobe);
  impl_->fan_out->search(n, queries, k, result.scores.data(),
                         reinterpret_cast<faiss::Index::idx_t*>(result.ids.data()));
  return result;
}

struct IdFilter::Impl {
  std::unique_ptr<faiss::IDSelector> selector;
  std::vector<std::uint8_t> bitmap;  // IDSelectorBitmap's storage (flat indexes: positions)
  std::int64_t count = 0;
};

IdFilter::IdFilter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IdFilter::IdFilter(IdFilter&&) noexcept = default;
IdFilter& IdFilter::operator=(IdFilter&&) noexcept = default;
IdFilter::~IdFilter() = default;
std::int64_t IdFilter::size() const { return impl_->count; }

// IVF indexes test their own (external) ids against the selector. FAISS 1.7.3's IndexIDMap
// refuses search parameters, so a flat index's filter is a bitmap over its positions, and
// the inner index is searched directly with the positions mapped back to ids.
IdFilter ShardedIndex::Filter(const std::vector<std::int64_t>& ids) const {
  if (impl_->fan_out)
    throw InputError(
        "this index kind (fast-scan) cannot filter inside the search: rebuild the index with a Flat, IVF-Flat or "
        "IVF-PQ factory");
  auto impl = std::make_unique<IdFilter::Impl>();
  const faiss::Index* index = impl_->shards.front().impl_->index.get();
  if (const auto* map = dynamic_cast<const faiss::IndexIDMap*>(index)) {
    const std::unordered_set<std::int64_t> wanted(ids.begin(), ids.end());
    impl->bitmap.assign((map->id_map.size() + 7) / 8, 0);
    for (std::size_t i = 0; i < map->id_map.size(); ++i) {
      if (wanted.count(map->id_map[i])) {
        impl->bitmap[i >> 3] |= static_cast<std::uint8_t>(1u << (i & 7));
        ++impl->count;
      }
    }
    impl->selector = std::make_unique<faiss::IDSelectorBitmap>(map->id_map.size(), impl->bitmap.data());
  } else {
    LB_CHECK(faiss::ivflib::try_extract_index_ivf(index) != nullptr, "a merged index is IVF or flat");
    std::vector<faiss::Index::idx_t> sorted(ids.begin(), ids.end());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    impl->count = static_cast<std::int64_t>(sorted.size());  // an upper bound: ids the index lacks count too
    impl->selector = std::make_unique<faiss::IDSelectorBatch>(sorted.size(), sorted.data());
  }
  return IdFilter(std::move(impl));
}

SearchResult ShardedIndex::Search(const float* queries, std::int64_t n, int k, int nprobe,
                                  const IdFilter& filter) const {
  LB_CHECK(!impl_->fan_out, "filters are made by Filter(), which refuses fan-out indexes");
  SearchResult result;
  result.scores.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(k));
  result.ids.resize(result.scores.size());
  if (n == 0) return result;
  faiss::Index* index = impl_->shards.front().impl_->index.get();
  auto* scores = result.scores.data();
  auto* ids = reinterpret_cast<faiss::Index::idx_t*>(result.ids.data());
  try {
    if (auto* map = dynamic_cast<faiss::IndexIDMap*>(index)) {
      faiss::SearchParameters params;
      params.sel = filter.impl_->selector.get();
      map->index->search(n, queries, k, scores, ids, &params);
      for (std::size_t i = 0; i < result.ids.size(); ++i) {
        if (ids[i] >= 0) ids[i] = map->id_map[static_cast<std::size_t>(ids[i])];
      }
      return result;
    }
    faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index);
    LB_CHECK(ivf != nullptr && ivf == index, "a merged IVF index is searched directly");
    const auto nlist = static_cast<std::int64_t>(ivf->nlist);
    const std::int64_t wanted = std::min<std::int64_t>(k, filter.size());
    std::vector<std::int64_t> short_rows(static_cast<std::size_t>(n));
    for (std::int64_t q = 0; q < n; ++q) short_rows[static_cast<std::size_t>(q)] = q;
    std::int64_t probes = std::clamp<std::int64_t>(nprobe, 1, nlist);
    std::vector<float> batch, batch_scores;
    std::vector<faiss::Index::idx_t> batch_ids;
    for (;;) {
      // Searches the rows still short of `wanted` results with `probes` lists.
      batch.clear();
      for (const std::int64_t q : short_rows)
        batch.insert(batch.end(), queries + q * ivf->d, queries + (q + 1) * ivf->d);
      const auto m = static_cast<std::int64_t>(short_rows.size());
      batch_scores.resize(static_cast<std::size_t>(m * k));
      batch_ids.resize(batch_scores.size());
      faiss::SearchParametersIVF params;
      params.sel = filter.impl_->selector.get();
      params.nprobe = static_cast<std::size_t>(probes);
      ivf->search(m, batch.data(), k, batch_scores.data(), batch_ids.data(), &params);
      std::vector<std::int64_t> still_short;
      for (std::int64_t r = 0; r < m; ++r) {
        const std::int64_t q = short_rows[static_cast<std::size_t>(r)];
        std::copy_n(batch_scores.begin() + r * k, k, scores + q * k);
        std::copy_n(batch_ids.begin() + r * k, k, ids + q * k);
        const auto found =
            std::count_if(ids + q * k, ids + (q + 1) * k, [](faiss::Index::idx_t id) { return id >= 0; });
        if (found < wanted) still_short.push_back(q);
      }
      if (still_short.empty() || probes >= nlist) break;
      short_rows = std::move(still_short);
      probes = std::min(nlist, probes * 4);
    }
  } catch (const faiss::FaissException& error) {
    throw InputError(std::string("FAISS filtered search failed: ") + error.msg);
  }
  return result;
}

std::int64_t ShardedIndex::size() const {
  std::int64_t total = 0;
  for (const auto& shard : impl_->shards) total += shard.size();
  return total;
}

std::uint64_t ShardedIndex::code_bytes() const {
  std::uint64_t total = 0;
  for (const auto& shard : impl_->shards) total += shard.code_bytes();
  return total;
}

// Multi-index hashing (Norouzi, Punjani and Fleet, CVPR 2012): the 64 bits cut into radius + 1
// chunks; two codes within `radius` bits agree exactly on at least one chunk, so the codes
// sharing one of a query's chunks hold every neighbour (exact, without probing flipped bits).
// A chunk of up to 16 bits is a counting-sort bucket table; a wider one (radius 0 to 2) a
// sorted list searched by value.
struct HashNeighbourIndex::Chunk {
  int shift = 0, width = 0;
  std::vector<std::uint32_t> offsets, members;                // width <= 16
  std::vector<std::pair<std::uint64_t, std::uint32_t>> list;  // width > 16
  std::uint64_t Of(std::uint64_t code) const {
    return width == 64 ? code : (code >> shift) & ((std::uint64_t{1} << width) - 1);
  }
};

HashNeighbourIndex::HashNeighbourIndex(const std::vector<std::array<std::uint8_t, 8>>& codes, int radius)
    : radius_(radius), code_of_(codes.size()), order_(codes.size()) {
  LB_CHECK(radius >= 0 && radius < 64, "a Hamming radius of 0 to 63 bits");
  // The distinct codes, as flat arrays (a catalog's worth of small maps and vectors would cost
  // more than the codes): positions sorted by (code, position); distinct code d is value_[d] and
  // holds order_[start_[d] .. start_[d + 1]), in increasing position.
  std::vector<std::pair<std::uint64_t, std::size_t>> sorted(codes.size());
  for (std::size_t p = 0; p < codes.size(); ++p) {
    std::uint64_t key = 0;
    std::memcpy(&key, codes[p].data(), 8);
    sorted[p] = {key, p};
  }
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i == 0 || sorted[i].first != sorted[i - 1].first) {
      start_.push_back(i);
      value_.push_back(sorted[i].first);
    }
    order_[i] = sorted[i].second;
    code_of_[sorted[i].second] = start_.size() - 1;
  }
  start_.push_back(sorted.size());
  const std::size_t distinct = value_.size();
  LB_CHECK(distinct < (std::size_t{1} << 32), "more than 2^32 distinct hashes");
  const int chunks = radius + 1;
  table_.resize(static_cast<std::size_t>(chunks));
  for (int c = 0, shift = 0; c < chunks; ++c) {
    Chunk& t = table_[static_cast<std::size_t>(c)];
    t.width = 64 / chunks + (c < 64 % chunks ? 1 : 0);
    t.shift = shift;
    shift += t.width;
    if (t.width <= 16) {
      t.offsets.assign((std::size_t{1} << t.width) + 1, 0);
      for (std::size_t d = 0; d < distinct; ++d) ++t.offsets[t.Of(value_[d]) + 1];
      for (std::size_t v = 1; v < t.offsets.size(); ++v) t.offsets[v] += t.offsets[v - 1];
      std::vector<std::uint32_t> fill(t.offsets.begin(), t.offsets.end() - 1);
      t.members.resize(distinct);
      for (std::size_t d = 0; d < distinct; ++d) t.members[fill[t.Of(value_[d])]++] = static_cast<std::uint32_t>(d);
    } else {
      t.list.reserve(distinct);
      for (std::size_t d = 0; d < distinct; ++d) t.list.emplace_back(t.Of(value_[d]), static_cast<std::uint32_t>(d));
      std::sort(t.list.begin(), t.list.end());
    }
  }
}

HashNeighbourIndex::~HashNeighbourIndex() = default;

std::vector<HashNeighbours> HashNeighbourIndex::Nearest(const std::vector<std::size_t>& queries,
                                                        std::size_t keep) const {
  std::vector<HashNeighbours> out(queries.size());
  if (queries.empty() || keep == 0) return out;
  for (const std::size_t q : queries) LB_CHECK(q < code_of_.size(), "a query outside the codes");
  // The distinct codes within the radius of one code, as (bits, distinct code), nearest first.
  std::vector<std::pair<int, std::size_t>> near;
  auto find_near = [&](std::size_t code) {
    near.clear();
    const std::uint64_t query = value_[code];
    auto consider = [&](std::size_t d) {
      const int bits = __builtin_popcountll(value_[d] ^ query);
      if (bits <= radius_) near.emplace_back(bits, d);
    };
    for (const Chunk& t : table_) {
      const std::uint64_t v = t.Of(query);
      if (t.width <= 16) {
        for (std::uint32_t k = t.offsets[v]; k < t.offsets[v + 1]; ++k) consider(t.members[k]);
      } else {
        auto it = std::lower_bound(t.list.begin(), t.list.end(), std::make_pair(v, std::uint32_t{0}));
        for (; it != t.list.end() && it->first == v; ++it) consider(it->second);
      }
    }
    std::sort(near.begin(), near.end());
    near.erase(std::unique(near.begin(), near.end()), near.end());
  };
  // The queries grouped by code (each code's neighbours found once), then per query its near
  // codes' positions, bits group by bits group, smallest positions first.
  std::vector<std::size_t> by_code(queries.size());
  std::iota(by_code.begin(), by_code.end(), std::size_t{0});
  std::sort(by_code.begin(), by_code.end(), [&](std::size_t x, std::size_t y) {
    return std::make_pair(code_of_[queries[x]], x) < std::make_pair(code_of_[queries[y]], y);
  });
  std::vector<std::size_t> group;
  std::size_t found_for = value_.size();  // the code `near` holds
  for (const std::size_t slot : by_code) {
    const std::size_t q = queries[slot];
    if (code_of_[q] != found_for) {
      find_near(code_of_[q]);
      found_for = code_of_[q];
    }
    HashNeighbours& result = out[slot];
    for (std::size_t g = 0; g < near.size();) {
      const int bits = near[g].first;
      group.clear();
      const std::size_t room = keep - std::min(keep, result.nearest.size());
      for (; g < near.size() && near[g].first == bits; ++g) {
        const std::size_t code = near[g].second;
        result.within_radius +=
            static_cast<std::int64_t>(start_[code + 1] - start_[code]) - (code == code_of_[q] ? 1 : 0);
        // Enough of each code's positions (ascending) to fill the list whatever the others hold.
        for (std::size_t k = start_[code], taken = 0; k < start_[code + 1] && taken < room; ++k) {
          if (order_[k] == q) continue;
          group.push_back(order_[k]);
          ++taken;
        }
      }
      std::sort(group.begin(), group.end());
      for (std::size_t k = 0; k < group.size() && result.nearest.size() < keep; ++k)
        result.nearest.emplace_back(bits, group[k]);
    }
  }
  return out;
}

}  // namespace lookbook
