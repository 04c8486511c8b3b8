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

}  // namespace lookbook
