// Which BLAS kernel this process runs, for run summaries and benchmark records. Debian's
// OpenBLAS 0.3.21 falls back to generic "Prescott" kernels on CPUs it does not know (about
// 4x slower sgemm); the job scripts choose OPENBLAS_CORETYPE, and every summary says what ran.
#pragma once

#include <string>

namespace lookbook {

// OpenBLAS's core name ("SkylakeX", "Prescott", ...), or "not OpenBLAS" when no OpenBLAS is
// loaded in this process.
std::string BlasCoreName();

}  // namespace lookbook
