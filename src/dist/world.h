// The MPI world. The only folder that includes <mpi.h>. Each function says whether it is
// collective (every rank must call it, in the same order) or rank-local.
//
// A process started without a launcher is a world of one rank (MPI singleton), so every
// subcommand runs the same way with or without mpirun/srun.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace lookbook {

class MpiWorld {
 public:
  // Collective. Initialises MPI (thread level "funneled": only the main thread calls MPI).
  static MpiWorld Init(int* argc, char*** argv);

  MpiWorld(MpiWorld&& other) noexcept;
  MpiWorld& operator=(MpiWorld&&) = delete;
  MpiWorld(const MpiWorld&) = delete;
  ~MpiWorld();  // Collective: MPI_Finalize.

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }

  // Collective. Waits for every rank.
  void Barrier() const;
  // Collective. Rank 0's value on every rank.
  std::int64_t BroadcastFromRoot(std::int64_t value) const;
  // Collective. Rank 0's vector on every rank.
  std::vector<std::int64_t> BroadcastFromRoot(std::vector<std::int64_t> values) const;
  // Collective. Element-wise sums of every rank's `values` (same length everywhere), on every rank.
  std::vector<std::int64_t> SumAll(const std::vector<std::int64_t>& values) const;
  // Collective. The largest of every rank's `value`, on every rank.
  double MaxAll(double value) const;
  // Collective. Whether any rank was asked to stop (util/stop.h): every rank calls it at the
  // same point of a loop it goes through in step, and all leave it together.
  bool AnyStopRequested() const;
  // Collective. Every rank's bytes concatenated in rank order, on rank 0 (empty elsewhere).
  std::vector<std::uint8_t> GatherBytesToRoot(const std::vector<std::uint8_t>& mine) const;
  // Collective. Rank 0's bytes on every rank.
  std::vector<std::uint8_t> BroadcastBytesFromRoot(std::vector<std::uint8_t> bytes) const;
  // The same for vectors of plain values (float, int64, ...).
  template <typename T>
  std::vector<T> GatherToRoot(const std::vector<T>& mine) const {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* begin = reinterpret_cast<const std::uint8_t*>(mine.data());
    const std::vector<std::uint8_t> all =
        GatherBytesToRoot(std::vector<std::uint8_t>(begin, begin + mine.size() * sizeof(T)));
    std::vector<T> out(all.size() / sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), all.data(), out.size() * sizeof(T));
    return out;
  }
  // Collective. Personalised all-to-all: to_each[r] goes to rank r (to_each.size() == size());
  // returns what every rank sent this one, by source rank. Callers batch: one call moves less than
  // 2 GiB into and out of each rank (MPI counts are int).
  std::vector<std::vector<std::uint8_t>> ExchangeBytes(const std::vector<std::vector<std::uint8_t>>& to_each) const;
  // Collective. This rank's index among the ranks on the same node (for GPU assignment).
  int LocalRank() const;
  // Rank-local. Ends every rank of the job with `exit_code` (MPI_Abort); for a failure seen
  // by one rank only, where a collective would hang.
  [[noreturn]] void AbortAll(int exit_code) const;

 private:
  MpiWorld(int rank, int size) : rank_(rank), size_(size) {}
  int rank_ = 0;
  int size_ = 1;
  bool owns_ = true;
};

// Dynamic work handout: a counter that every rank increments atomically (MPI one-sided
// fetch-and-add on rank 0's memory), so that a rank that finishes early takes the next item
// and one slow shard does not idle the others. No rank is given up to coordination.
class WorkCounter {
 public:
  // Collective.
  static WorkCounter Create(const MpiWorld& world);
  WorkCounter(WorkCounter&&) noexcept;
  WorkCounter& operator=(WorkCounter&&) = delete;
  ~WorkCounter();  // Collective: frees the window.
  // Rank-local. 0, 1, 2, ... across all ranks, each value handed out once.
  std::int64_t Next();

 private:
  struct Window;
  explicit WorkCounter(std::unique_ptr<Window> window);
  std::unique_ptr<Window> window_;
};

}  // namespace lookbook
