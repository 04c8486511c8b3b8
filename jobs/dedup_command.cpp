// lookbook dedup --run RUN   (every rank; mpirun for more)
#include <spdlog/spdlog.h>

#include <algorithm>
#include "dedup/dedup_stage.h"
#include "index/vector_index.h"

#include "jobs/command.h"
#include "jobs/options.h"
#include "util/error.h"
#include "util/stop.h"

namespace lookbook {

std::vector<OptionSpec> DedupSpecs() { return DedupOptionTable().specs(); }

int RunDedupCommand(const po::variables_map& vm, const CommandContext& context) {
  DedupOptions options;
  DedupOptionTable().Parse(GivenValues(vm, DedupOptionTable().specs()), &options);
  if (!options.rule.verify && options.candidate_floor > std::min(options.rule.cosine, options.rule.phash_cosine)) {
    throw UsageError("--candidate-floor must not be above --cosine or --phash-cosine");
  }
  SetIndexThreads(options.threads);
  options.code_version = context.code_version;
  const StageReport report = RunDedup(options, context.world);
  if (context.world.is_root()) {
    if (report.status == "ok") {
      spdlog::info("{} duplicate pairs ({} same product, {} across products) in {} clusters; see {}/dedup",
                   report.counts.at("pairs"), report.counts.at("pairs_same_product"),
                   report.counts.at("pairs_cross_product"), report.counts.at("clusters"), options.run.string());
    }
    PrintSummaryLine(SummaryJsonLine(report));
    if (report.status == "ok") KeepSummary(options.run, "dedup", SummaryJsonLine(report));
  }
  return report.status == "stopped" ? kExitStopped : kExitOk;
}

}  // namespace lookbook
