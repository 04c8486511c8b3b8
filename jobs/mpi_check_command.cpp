// lookbook mpi-check --expect N   (every rank): the job scripts' guard that the launcher wired
// the ranks into one MPI world. An srun without a working PMI starts N independent
// single-rank processes; each would then run the whole pipeline alone.
#include <cstdio>

#include "jobs/command.h"
#include "jobs/options.h"
#include "util/error.h"

namespace lookbook {

namespace {

struct MpiCheckArgs {
  int expect = 1;
};

const OptionTable<MpiCheckArgs>& MpiCheckOptionTable() {
  static const OptionTable<MpiCheckArgs> table = [] {
    OptionTable<MpiCheckArgs> t;
    t.Add(
        OptionSpec{"expect", "N", "", true, false, "1..1000000", "the number of ranks the job asked for (SLURM_NTASKS)",
                   OptionEffect::kControl},
        [](const std::vector<std::string>& values, MpiCheckArgs* out) {
          out->expect = static_cast<int>(ParseIntegerOption("expect", values.back(), 1, 1000000));
        },
        [](const MpiCheckArgs& o) { return std::to_string(o.expect); });
    return t;
  }();
  return table;
}

}  // namespace

std::vector<OptionSpec> MpiCheckSpecs() { return MpiCheckOptionTable().specs(); }

int RunMpiCheckCommand(const po::variables_map& vm, const CommandContext& context) {
  MpiCheckArgs args;
  MpiCheckOptionTable().Parse(GivenValues(vm, MpiCheckOptionTable().specs()), &args);
  const int expect = args.expect;
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
