// lookbook mpi-check --expect N   (every rank): the job scripts' guard that the launcher wired
// the ranks into one MPI world. An srun without a working PMI starts N independent
// single-rank processes; each would then run the whole pipeline alone.
#include <cstdio>

#include "jobs/command.h"
#include "util/error.h"

namespace lookbook {

void DescribeMpiCheck(po::options_description* options) {
  options->add_options()("expect", po::value<int>()->required()->value_name("N"),
                         "the number of ranks the job asked for (SLURM_NTASKS)");
}

int RunMpiCheckCommand(const po::variables_map& vm, const CommandContext& context) {
  const int expect = vm["expect"].as<int>();
  if (expect < 1) throw UsageError("--expect must be at least 1");
  const int size = context.world.size();
  if (size != expect) {
    // Every singleton is its own rank 0: each says so.
    std::fprintf(stderr,
                 "lookbook mpi-check: this MPI world has %d rank(s), the job asked for %d: the launcher did not "
                 "connect the ranks\n",
                 size, expect);
    return kExitInputError;
  }
  if (context.world.is_root()) std::printf("{\"stage\":\"mpi-check\",\"status\":\"ok\",\"ranks\":%d}\n", size);
  return kExitOk;
}

}  // namespace lookbook
