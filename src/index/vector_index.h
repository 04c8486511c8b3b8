// Inner-product vector indexes (FAISS inside; no other folder includes it). Embeddings are
// unit-norm, so inner product is cosine similarity.
//
// Ids are 64-bit image ids (store/embed_run.h ImageId: embed shard << 32 | row in /images).
//
// Files are FAISS's own serialisation (faiss.read_index reads them from Python); they are
// written and read as whole byte buffers so that publication stays atomic and the checksum is
// verified before FAISS parses a byte.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lookbook {

// FAISS's OpenMP threads for this process (under MPI: per rank).
void SetIndexThreads(int threads);

// The factory string `auto` picks, for n vectors of dimension d within memory_budget bytes
// for the index's codes (docs/architecture.md#index-in-detail):
//   n <= 50,000   "Flat"  exact (batched queries go through BLAS sgemm)
//   otherwise     "IVF<nlist>,PQ<m>x4np": m = the largest divisor of d, at most d/8, whose 4-bit
//                 codes (n * m/2 bytes) fit (else the smallest divisor), polysemous training off.
//                 nlist = the power of two nearest 4 sqrt(n), clamped to 64..65536.
// PQ, not Flat lists, above 50,000: dedup re-ranks every candidate exactly anyway. 4-bit, not
// 8-bit, codes: Debian's FAISS trains and scans them far faster (docs/decisions.md, "4-bit PQ").
std::string AutoFactory(std::int64_t n, int d, std::uint64_t memory_budget);

// The number of training vectors a factory wants (FAISS warns below 39 per centroid).
std::int64_t TrainingSize(const std::string& factory, std::int64_t n);

struct SearchResult {
  std::vector<float> scores;      // n x k, best first; -inf where fewer than k were found
  std::vector<std::int64_t> ids;  // n x k, -1 where fewer than k were found
};

class VectorIndex {
 public:
  // Trains an empty index of `factory` (FAISS index_factory syntax, inner product) on n
  // vectors. Throws InputError for a factory string FAISS rejects.
  static VectorIndex Train(const std::string& factory, int d, const float* vectors, std::int64_t n);
  // From bytes written by Serialize(). Throws InputError when FAISS cannot read them.
  static VectorIndex Deserialize(const std::vector<std::uint8_t>& bytes);
  static VectorIndex ReadFile(const std::filesystem::path& path);

  VectorIndex(VectorIndex&&) noexcept;
  VectorIndex& operator=(VectorIndex&&) noexcept;
  ~VectorIndex();

  std::vector<std::uint8_t> Serialize() const;
  // Atomically (util/publish.h).
  void WriteFile(const std::filesystem::path& path) const;

  void Add(const float* vectors, const std::int64_t* ids, std::int64_t n);
  // Searches nprobe inverted lists (clamped to the index's lists).
  SearchResult Search(const float* queries, std::int64_t n, int k, int nprobe) const;

  std::int64_t size() const;
  int dim() const;
  std::string description() const;   // e.g. "IndexIVFPQ nlist=1024 m=32"
  std::uint64_t code_bytes() const;  // memory held by the vectors' codes and ids

 private:
  struct Impl;
  explicit VectorIndex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class ShardedIndex;
};

// The nearest 64-bit codes (perceptual hashes) of each query: for each query position q in
// `queries` (indexes into the codes the index was built from), the positions p != q with
// popcount(codes[q] ^ codes[p]) <= radius, nearest first (fewest bits, then smallest position),
// at most `keep` of them, and how many there were in all. Built once over every code; each
// distinct code is searched once per call, with multi-index hashing (the 64 bits cut into
// radius + 1 chunks: two codes within the radius agree exactly on one of them; exact for any
// radius), so memory follows the distinct codes and `keep`: a catalog where 100,000 images share
// one hash (a placeholder picture) costs what one image costs, not 10^10 pairs.
struct HashNeighbours {
  std::vector<std::pair<int, std::size_t>> nearest;  // (bits, position), at most keep
  std::int64_t within_radius = 0;                    // every p != q within the radius
};
class HashNeighbourIndex {
 public:
  HashNeighbourIndex(const std::vector<std::array<std::uint8_t, 8>>& codes, int radius);
  ~HashNeighbourIndex();
  // Thread-compatible (const); queries in any order, answered in theirs.
  std::vector<HashNeighbours> Nearest(const std::vector<std::size_t>& queries, std::size_t keep) const;

 private:
  struct Chunk;
  int radius_;
  std::vector<std::size_t> code_of_, order_, start_;  // position -> distinct code; positions by code
  std::vector<std::uint64_t> value_;                  // distinct code -> its 64 bits
  std::vector<Chunk> table_;
};

// The ids a filtered search may return, prepared for one ShardedIndex (ShardedIndex::Filter).
class IdFilter {
 public:
  IdFilter(IdFilter&&) noexcept;
  IdFilter& operator=(IdFilter&&) noexcept;
  ~IdFilter();
  std::int64_t size() const;  // ids of the filter that the index holds

 private:
  struct Impl;
  explicit IdFilter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class ShardedIndex;
};

// Several indexes with disjoint ids, trained together, searched as one. IVF and flat shards are
// merged into one index (FAISS merge_from: IVF lists share the coarse quantizer, so a query is
// quantized once, not once per shard); other kinds are searched shard by shard and the results
// merged best-first (FAISS IndexShards). Both return what one index of every vector returns.
// Takes the shards' vectors over.
class ShardedIndex {
 public:
  explicit ShardedIndex(std::vector<VectorIndex> shards);
  ShardedIndex(ShardedIndex&&) noexcept;
  ~ShardedIndex();
  SearchResult Search(const float* queries, std::int64_t n, int k, int nprobe) const;

  // Only ids in `ids` may come back. The filter acts inside the search (a FAISS IDSelector),
  // so a query gets min(k, filter.size()) results whenever the filter holds that many: an IVF
  // query that found fewer in its nprobe lists is searched again over 4x the lists, up to all
  // of them. Throws InputError for index kinds that cannot filter (fast-scan).
  IdFilter Filter(const std::vector<std::int64_t>& ids) const;
  SearchResult Search(const float* queries, std::int64_t n, int k, int nprobe, const IdFilter& filter) const;

  std::int64_t size() const;
  std::uint64_t code_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lookbook
