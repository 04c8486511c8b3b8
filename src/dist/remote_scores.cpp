#include "dist/remote_scores.h"

#include <cstring>
#include <utility>

#include "util/error.h"
#include "util/vectors.h"

namespace lookbook {

namespace {

template <typename T>
void Append(std::vector<std::uint8_t>* out, const T* values, std::size_t count) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(values);
  out->insert(out->end(), bytes, bytes + count * sizeof(T));
}

template <typename T>
const std::uint8_t* Take(const std::uint8_t* at, const std::uint8_t* end, T* values, std::size_t count) {
  LB_CHECK(static_cast<std::size_t>(end - at) >= count * sizeof(T), "RemoteScores: a message ends early");
  std::memcpy(values, at, count * sizeof(T));
  return at + count * sizeof(T);
}

}  // namespace

RemoteScores::RemoteScores(const MpiWorld* world, int dim, OwnerOf owner, VectorOf vector)
    : world_(world),
      rank_(world != nullptr ? world->rank() : 0),
      ranks_(world != nullptr ? world->size() : 1),
      dim_(dim),
      owner_(std::move(owner)),
      vector_(std::move(vector)),
      asked_(static_cast<std::size_t>(ranks_)) {}

std::size_t RemoteScores::Ask(const float* query, std::int64_t image) {
  const std::size_t ticket = answers_.size();
  const int owner = owner_(image);
  LB_CHECK(owner >= 0 && owner < ranks_, "RemoteScores: an image without an owner rank");
  if (owner == rank_) {
    answers_.push_back(Dot(query, vector_(image), dim_));
    answered_.push_back(1);
    return ticket;
  }
  answers_.push_back(0);
  answered_.push_back(0);
  auto& blocks = asked_[static_cast<std::size_t>(owner)];
  if (blocks.empty() || blocks.back().query != query) blocks.push_back(Block{query, {}, {}});
  blocks.back().images.push_back(image);
  blocks.back().tickets.push_back(ticket);
  return ticket;
}

void RemoteScores::Exchange() {
  if (world_ == nullptr || ranks_ == 1) return;  // every question was answered when asked
  const auto ranks = static_cast<std::size_t>(ranks_);
  // Questions: per block, its image count, the query, the images.
  std::vector<std::vector<std::uint8_t>> questions(ranks);
  for (std::size_t r = 0; r < ranks; ++r) {
    for (const Block& block : asked_[r]) {
      const auto count = static_cast<std::int64_t>(block.images.size());
      Append(&questions[r], &count, 1);
      Append(&questions[r], block.query, static_cast<std::size_t>(dim_));
      Append(&questions[r], block.images.data(), block.images.size());
    }
    bytes_sent_ += static_cast<std::int64_t>(questions[r].size());
  }
  const std::vector<std::vector<std::uint8_t>> asked_of_me = world_->ExchangeBytes(questions);
  questions.clear();
  // Answers, in the order of the images asked.
  std::vector<std::vector<std::uint8_t>> answers(ranks);
  std::vector<float> query(static_cast<std::size_t>(dim_));
  std::vector<std::int64_t> images;
  for (std::size_t r = 0; r < ranks; ++r) {
    const std::uint8_t* at = asked_of_me[r].data();
    const std::uint8_t* end = at + asked_of_me[r].size();
    while (at < end) {
      std::int64_t count = 0;
      at = Take(at, end, &count, 1);
      LB_CHECK(count >= 0, "RemoteScores: a negative image count");
      at = Take(at, end, query.data(), query.size());
      images.resize(static_cast<std::size_t>(count));
      at = Take(at, end, images.data(), images.size());
      for (const std::int64_t image : images) {
        LB_CHECK(owner_(image) == rank_, "RemoteScores: asked about an image this rank does not hold");
        const float score = Dot(query.data(), vector_(image), dim_);
        Append(&answers[r], &score, 1);
      }
    }
    bytes_sent_ += static_cast<std::int64_t>(answers[r].size());
  }
  const std::vector<std::vector<std::uint8_t>> answered = world_->ExchangeBytes(answers);
  for (std::size_t r = 0; r < ranks; ++r) {
    const std::uint8_t* at = answered[r].data();
    const std::uint8_t* end = at + answered[r].size();
    for (const Block& block : asked_[r]) {
      for (const std::size_t ticket : block.tickets) {
        at = Take(at, end, &answers_[ticket], 1);
        answered_[ticket] = 1;
      }
    }
    LB_CHECK(at == end, "RemoteScores: more answers than questions");
    asked_[r].clear();
  }
}

float RemoteScores::Answer(std::size_t ticket) const {
  LB_CHECK(ticket < answers_.size() && answered_[ticket], "RemoteScores: a ticket without an answer");
  return answers_[ticket];
}

void RemoteScores::Clear() {
  for (auto& blocks : asked_) blocks.clear();
  answers_.clear();
  answered_.clear();
}

}  // namespace lookbook
