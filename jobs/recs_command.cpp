// lookbook recs --run RUN   (every rank; mpirun for more)
#include <spdlog/spdlog.h>

#include <sstream>

#include "index/vector_index.h"
#include "jobs/command.h"
#include "jobs/options.h"
#include "recs/recs_stage.h"
#include "util/error.h"
#include "util/stop.h"

namespace lookbook {

std::vector<OptionSpec> RecsSpecs() { return RecsOptionTable().specs(); }

int RunRecsCommand(const po::variables_map& vm, const CommandContext& context) {
  RecsOptions options;
  RecsOptionTable().Parse(GivenValues(vm, RecsOptionTable().specs()), &options);
  SetIndexThreads(options.threads);
  options.code_version = context.code_version;
  const StageReport report = RunRecs(options, context.world);
  if (context.world.is_root()) {
    if (report.status == "ok") {
      spdlog::info("{} substitute rows for {} products, {} outfit rows from {} outfit photos; see {}/recs",
                   report.counts.at("substitute_rows"), report.counts.at("products_with_substitutes"),
                   report.counts.at("outfit_rows"), report.counts.at("outfit_photos"), options.run.string());
    }
    PrintSummaryLine(SummaryJsonLine(report));
    if (report.status == "ok") KeepSummary(options.run, "recs", SummaryJsonLine(report));
  }
  return report.status == "stopped" ? kExitStopped : kExitOk;
}

}  // namespace lookbook
