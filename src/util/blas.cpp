#include "util/blas.h"

#include <dlfcn.h>

namespace lookbook {

std::string BlasCoreName() {
  // Looked up at run time: util does not link BLAS; LibTorch and FAISS bring it.
  using CoreName = char* (*)();
  const auto function = reinterpret_cast<CoreName>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (function == nullptr) return "not OpenBLAS";
  const char* name = function();
  return name == nullptr ? "unknown" : name;
}

bool SetBlasThreads(int threads) {
  using SetThreads = void (*)(int);
  const auto function = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (function == nullptr || threads < 1) return false;
  function(threads);
  return true;
}

int BlasThreads() {
  using GetThreads = int (*)();
  const auto function = reinterpret_cast<GetThreads>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return function == nullptr ? 0 : function();
}

}  // namespace lookbook
