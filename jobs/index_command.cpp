// lookbook index --run RUN [--factory SPEC|auto]   (every rank; mpirun for more)
#include <spdlog/spdlog.h>

#include "index/index_stage.h"
#include "index/vector_index.h"
#include "jobs/command.h"
#include "jobs/options.h"
#include "util/error.h"
#include "util/stop.h"

namespace lookbook {

std::vector<OptionSpec> IndexSpecs() { return IndexOptionTable().specs(); }

int RunIndexCommand(const po::variables_map& vm, const CommandContext& context) {
  IndexOptions options;
  IndexOptionTable().Parse(GivenValues(vm, IndexOptionTable().specs()), &options);
  SetIndexThreads(options.threads);
  options.code_version = context.code_version;
  const StageReport report = RunIndex(options, context.world);
  if (context.world.is_root()) {
    if (report.status == "ok") {
      spdlog::info("{} vectors in {} shard index(es), {}; see {}/index", report.counts.at("vectors"),
                   report.counts.at("shards"), report.facts.at("factory"), options.run.string());
    }
    PrintSummaryLine(SummaryJsonLine(report));
    if (report.status == "ok") KeepSummary(options.run, "index", SummaryJsonLine(report));
  }
  return report.status == "stopped" ? kExitStopped : kExitOk;
}

}  // namespace lookbook
