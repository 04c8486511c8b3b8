#include "model/blas_check.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "util/blas.h"

namespace lookbook {

BlasCheck RunBlasCheck() {
  constexpr int64_t n = 384;
  torch::manual_seed(1234);
  const auto a = torch::randn({n, n});
  const auto b = torch::randn({n, n});
  const auto start = std::chrono::steady_clock::now();
  const auto product = torch::mm(a, b);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto reference = torch::mm(a.to(torch::kFloat64), b.to(torch::kFloat64));
  const double scale = reference.abs().max().item<double>();
  const double error = (product.to(torch::kFloat64) - reference).abs().max().item<double>() / scale;
  BlasCheck check;
  check.core = BlasCoreName();
  check.max_relative_error = error;
  check.gflops = 2.0 * n * n * n / seconds * 1e-9;
  check.ok = std::isfinite(error) && error < 1e-4;
  return check;
}

}  // namespace lookbook
