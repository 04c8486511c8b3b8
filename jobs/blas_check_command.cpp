// lookbook blas-check: is the BLAS kernel this process runs correct here? Exit 0 if so.
#include <iostream>
#include <nlohmann/json.hpp>

#include "jobs/command.h"
#include "model/blas_check.h"
#include "util/error.h"

namespace lookbook {

std::vector<OptionSpec> BlasCheckSpecs() { return {}; }

int RunBlasCheckCommand(const po::variables_map& vm, const CommandContext& context) {
  const BlasCheck check = RunBlasCheck();
  std::cout << nlohmann::json{{"blas_core", check.core},
                              {"max_relative_error", check.max_relative_error},
                              {"gflops", check.gflops},
                              {"ok", check.ok}}
                   .dump()
            << std::endl;
  (void)vm;
  (void)context;
  return check.ok ? kExitOk : kExitInputError;
}

}  // namespace lookbook
