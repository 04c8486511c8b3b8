// lookbook ingest --catalog CSV --images DIR --run RUN [--shards N]
#include <spdlog/spdlog.h>

#include "catalog/ingest.h"
#include "jobs/command.h"
#include "jobs/options.h"
#include "util/error.h"

namespace lookbook {

std::vector<OptionSpec> IngestSpecs() { return IngestOptionTable().specs(); }

int RunIngestCommand(const po::variables_map& vm, const CommandContext& context) {
  IngestOptions options;
  IngestOptionTable().Parse(GivenValues(vm, IngestOptionTable().specs()), &options);
  options.code_version = context.code_version;

  const StageReport report = RunIngest(options);
  if (report.status == "skipped") {
    spdlog::info("outputs in {}/ingest are valid for this catalog and options: nothing to do (--force redoes)",
                 options.run.string());
  } else {
    spdlog::info("{} rows: {} accepted, {} rejected; {} images: {} accepted, {} rejected; see {}/ingest/rejects.csv",
                 report.counts.at("rows_in"), report.counts.at("rows_ok"), report.counts.at("rows_rejected"),
                 report.counts.at("images_in"), report.counts.at("images_ok"), report.counts.at("images_rejected"),
                 options.run.string());
  }
  PrintSummaryLine(SummaryJsonLine(report));
  if (report.status == "ok") KeepSummary(options.run, "ingest", SummaryJsonLine(report));
  return kExitOk;
}

}  // namespace lookbook
