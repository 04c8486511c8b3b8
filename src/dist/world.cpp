#include "dist/world.h"

#include <algorithm>
#include <limits>

#include <mpi.h>

#include <cstdlib>

#include "util/error.h"
#include "util/stop.h"

namespace lookbook {

MpiWorld MpiWorld::Init(int* argc, char*** argv) {
  int provided = 0;
  LB_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS, "MPI_Init_thread failed");
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return MpiWorld(rank, size);
}

MpiWorld::MpiWorld(MpiWorld&& other) noexcept : rank_(other.rank_), size_(other.size_), owns_(other.owns_) {
  other.owns_ = false;
}

MpiWorld::~MpiWorld() {
  if (owns_) MPI_Finalize();
}

void MpiWorld::Barrier() const { MPI_Barrier(MPI_COMM_WORLD); }

std::int64_t MpiWorld::BroadcastFromRoot(std::int64_t value) const {
  MPI_Bcast(&value, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  return value;
}

std::vector<std::int64_t> MpiWorld::BroadcastFromRoot(std::vector<std::int64_t> values) const {
  std::int64_t size = static_cast<std::int64_t>(values.size());
  MPI_Bcast(&size, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  values.resize(static_cast<std::size_t>(size));
  if (size > 0) MPI_Bcast(values.data(), static_cast<int>(size), MPI_INT64_T, 0, MPI_COMM_WORLD);
  return values;
}

std::vector<std::int64_t> MpiWorld::SumAll(const std::vector<std::int64_t>& values) const {
  std::vector<std::int64_t> sums(values.size(), 0);
  if (!values.empty()) {
    MPI_Allreduce(values.data(), sums.data(), static_cast<int>(values.size()), MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  }
  return sums;
}

bool MpiWorld::AnyStopRequested() const { return SumAll({StopRequested() ? 1 : 0})[0] > 0; }

double MpiWorld::MaxAll(double value) const {
  double result = value;
  MPI_Allreduce(&value, &result, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return result;
}

std::vector<std::uint8_t> MpiWorld::GatherBytesToRoot(const std::vector<std::uint8_t>& mine) const {
  LB_CHECK(mine.size() < static_cast<std::size_t>(std::numeric_limits<int>::max()),
           "gathering more than 2 GiB from one rank");
  const int count = static_cast<int>(mine.size());
  std::vector<int> counts(is_root() ? static_cast<std::size_t>(size_) : 0);
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<int> offsets(counts.size());
  std::int64_t total = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    LB_CHECK(total < std::numeric_limits<int>::max(), "gathering more than 2 GiB in all");
    offsets[r] = static_cast<int>(total);
    total += counts[r];
  }
  std::vector<std::uint8_t> all(static_cast<std::size_t>(total));
  MPI_Gatherv(mine.data(), count, MPI_BYTE, all.data(), counts.data(), offsets.data(), MPI_BYTE, 0, MPI_COMM_WORLD);
  return all;
}

std::vector<std::uint8_t> MpiWorld::BroadcastBytesFromRoot(std::vector<std::uint8_t> bytes) const {
  std::int64_t size = static_cast<std::int64_t>(bytes.size());
  MPI_Bcast(&size, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  bytes.resize(static_cast<std::size_t>(size));
  // In pieces below 2 GiB: MPI counts are int.
  constexpr std::int64_t kPiece = 1 << 30;
  for (std::int64_t offset = 0; offset < size; offset += kPiece) {
    MPI_Bcast(bytes.data() + offset, static_cast<int>(std::min(kPiece, size - offset)), MPI_BYTE, 0, MPI_COMM_WORLD);
  }
  return bytes;
}

std::vector<std::vector<std::uint8_t>> MpiWorld::ExchangeBytes(
    const std::vector<std::vector<std::uint8_t>>& to_each) const {
  LB_CHECK(to_each.size() == static_cast<std::size_t>(size_), "ExchangeBytes needs one buffer per rank");
  const auto ranks = static_cast<std::size_t>(size_);
  std::vector<int> send_counts(ranks), send_offsets(ranks), receive_counts(ranks), receive_offsets(ranks);
  std::vector<std::uint8_t> send;
  for (std::size_t r = 0; r < ranks; ++r) {
    LB_CHECK(send.size() + to_each[r].size() < static_cast<std::size_t>(std::numeric_limits<int>::max()),
             "exchanging more than 2 GiB from one rank in one call");
    send_offsets[r] = static_cast<int>(send.size());
    send_counts[r] = static_cast<int>(to_each[r].size());
    send.insert(send.end(), to_each[r].begin(), to_each[r].end());
  }
  MPI_Alltoall(send_counts.data(), 1, MPI_INT, receive_counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::int64_t total = 0;
  for (std::size_t r = 0; r < ranks; ++r) {
    LB_CHECK(total + receive_counts[r] < std::numeric_limits<int>::max(),
             "receiving more than 2 GiB on one rank in one call");
    receive_offsets[r] = static_cast<int>(total);
    total += receive_counts[r];
  }
  std::vector<std::uint8_t> received(static_cast<std::size_t>(total));
  MPI_Alltoallv(send.data(), send_counts.data(), send_offsets.data(), MPI_BYTE, received.data(), receive_counts.data(),
                receive_offsets.data(), MPI_BYTE, MPI_COMM_WORLD);
  std::vector<std::vector<std::uint8_t>> out(ranks);
  for (std::size_t r = 0; r < ranks; ++r) {
    const auto begin = received.begin() + receive_offsets[r];
    out[r].assign(begin, begin + receive_counts[r]);
  }
  return out;
}

int MpiWorld::LocalRank() const {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
  int local = 0;
  MPI_Comm_rank(node, &local);
  MPI_Comm_free(&node);
  return local;
}

void MpiWorld::AbortAll(int exit_code) const {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

}  // namespace lookbook

namespace lookbook {

struct WorkCounter::Window {
  MPI_Win window = MPI_WIN_NULL;
  std::int64_t* memory = nullptr;
};

WorkCounter::WorkCounter(std::unique_ptr<Window> window) : window_(std::move(window)) {}
WorkCounter::WorkCounter(WorkCounter&&) noexcept = default;

WorkCounter WorkCounter::Create(const MpiWorld& world) {
  auto window = std::make_unique<Window>();
  const MPI_Aint bytes = world.is_root() ? static_cast<MPI_Aint>(sizeof(std::int64_t)) : 0;
  MPI_Win_allocate(bytes, sizeof(std::int64_t), MPI_INFO_NULL, MPI_COMM_WORLD, &window->memory, &window->window);
  if (world.is_root()) {
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, window->window);
    *window->memory = 0;
    MPI_Win_unlock(0, window->window);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return WorkCounter(std::move(window));
}

WorkCounter::~WorkCounter() {
  if (window_ && window_->window != MPI_WIN_NULL) MPI_Win_free(&window_->window);
}

std::int64_t WorkCounter::Next() {
  const std::int64_t one = 1;
  std::int64_t previous = 0;
  MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, window_->window);
  MPI_Fetch_and_op(&one, &previous, MPI_INT64_T, 0, 0, MPI_SUM, window_->window);
  MPI_Win_unlock(0, window_->window);
  return previous;
}

}  // namespace lookbook
