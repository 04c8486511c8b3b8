#include "dist/world.h"

#include <mpi.h>

#include <cstdlib>

#include "util/error.h"

namespace lookbook {

MpiWorld MpiWorld::Init(int* argc, char*** argv) {
  int provided = 0;
  LB_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS,
           "MPI_Init_thread failed");
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return MpiWorld(rank, size);
}

MpiWorld::MpiWorld(MpiWorld&& other) noexcept
    : rank_(other.rank_), size_(other.size_), owns_(other.owns_) {
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

void MpiWorld::AbortAll(int exit_code) const {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

}  // namespace lookbook
