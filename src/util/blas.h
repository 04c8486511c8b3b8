// Which BLAS kernel this process runs, for run summaries and benchmark records. Debian's
// OpenBLAS 0.3.21 falls back to generic "Prescott" kernels on CPUs it does not know (about
// 4x slower sgemm); the job scripts choose OPENBLAS_CORETYPE, and every summary says what ran.
#pragma once

#include <string>

namespace lookbook {

// OpenBLAS's core name ("SkylakeX", "Prescott", ...), or "not OpenBLAS" when no OpenBLAS is
// loaded in this process.
std::string BlasCoreName();

// Gives OpenBLAS `threads` threads (its own pool: Debian's OpenBLAS is the pthreads build, so
// LibTorch's set_num_threads does not reach it, and OMP_NUM_THREADS=1 leaves its GEMMs on one
// core). False when no OpenBLAS is loaded. Pair it with OMP_WAIT_POLICY=PASSIVE (jobs/
// lookbook-env.sh): spinning OpenMP threads otherwise take the cores OpenBLAS needs.
bool SetBlasThreads(int threads);

// OpenBLAS's thread count, 0 when no OpenBLAS is loaded.
int BlasThreads();

}  // namespace lookbook
