// The MPI world. The only folder that includes <mpi.h>. Each function says whether it is
// collective (every rank must call it, in the same order) or rank-local.
//
// A process started without a launcher is a world of one rank (MPI singleton), so every
// subcommand runs the same way with or without mpirun/srun.
#pragma once

#include <cstdint>
#include <string>

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
  // Rank-local. Ends every rank of the job with `exit_code` (MPI_Abort); for a failure seen
  // by one rank only, where a collective would hang.
  [[noreturn]] void AbortAll(int exit_code) const;

 private:
  MpiWorld(int rank, int size) : rank_(rank), size_(size) {}
  int rank_ = 0;
  int size_ = 1;
  bool owns_ = true;
};

}  // namespace lookbook
