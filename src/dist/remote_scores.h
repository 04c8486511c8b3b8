// Dot products with vectors that other ranks hold.
//
// A rank of dedup holds the full-precision vectors of the shards it owns, not the whole
// catalog's, so its memory follows its share of the catalog (docs/architecture.md#how-ranks-share-work).
// To score one of its queries against an image of another rank's shard it asks that rank:
// Ask() queues the question, Exchange() (collective) sends each owner every query vector once
// with the images asked of it, in one message per rank pair, and brings the answers back. The
// owner computes the same Dot() in the same argument order, so every score is bit for bit what
// one rank holding every vector computes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "dist/world.h"

namespace lookbook {

class RemoteScores {
 public:
  using OwnerOf = std::function<int(std::int64_t)>;            // image id -> the rank holding its vector
  using VectorOf = std::function<const float*(std::int64_t)>;  // image id -> its vector (this rank's own)

  // `world` null: one process that holds every vector (every question is answered at once).
  RemoteScores(const MpiWorld* world, int dim, OwnerOf owner, VectorOf vector);

  // Rank-local. Asks for Dot(query, vector of `image`); `query` (dim floats) must stay valid until
  // Exchange(). Answered at once when this rank owns `image`. Returns the answer's ticket.
  // Questions about one query asked one after the other travel with one copy of it.
  std::size_t Ask(const float* query, std::int64_t image);
  // Collective: every rank's questions are answered. Every rank calls it the same number of
  // times; a rank without questions still calls it. Callers keep one call's questions to well
  // under 2 GiB of query vectors.
  void Exchange();
  // Rank-local, after Exchange(): the answer of `ticket`.
  float Answer(std::size_t ticket) const;
  // Rank-local: forgets every question and answer (tickets start again at 0).
  void Clear();
  // Bytes this rank sent to others, questions and answers, since it was made.
  std::int64_t bytes_sent() const { return bytes_sent_; }

 private:
  // Questions to one rank about one query, in the order asked.
  struct Block {
    const float* query = nullptr;
    std::vector<std::int64_t> images;
    std::vector<std::size_t> tickets;
  };
  const MpiWorld* world_;
  int rank_ = 0, ranks_ = 1;
  int dim_ = 0;
  OwnerOf owner_;
  VectorOf vector_;
  std::vector<std::vector<Block>> asked_;  // by owner rank
  std::vector<float> answers_;
  std::vector<std::uint8_t> answered_;
  std::int64_t bytes_sent_ = 0;
};

}  // namespace lookbook
