// A correctness self-check of the BLAS kernel this process runs: a float32 matrix product
// through LibTorch (which calls OpenBLAS) against a double-precision reference. The job
// scripts run it under a candidate OPENBLAS_CORETYPE before exporting it (jobs/blas-env.sh):
// a kernel that computes wrong results on this CPU is never used.
#pragma once

#include <string>

namespace lookbook {

struct BlasCheck {
  std::string core;           // BlasCoreName()
  double max_relative_error;  // of the float32 product against the reference
  double gflops;              // the product's speed, for the record
  bool ok;                    // error within float32 rounding for this size
};

BlasCheck RunBlasCheck();

}  // namespace lookbook
