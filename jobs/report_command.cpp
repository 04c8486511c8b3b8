// lookbook report --run RUN
#include <spdlog/spdlog.h>

#include "jobs/command.h"
#include "jobs/options.h"
#include "report/report_stage.h"
#include "util/error.h"

namespace lookbook {

std::vector<OptionSpec> ReportSpecs() { return ReportOptionTable().specs(); }

int RunReportCommand(const po::variables_map& vm, const CommandContext& context) {
  ReportOptions options;
  ReportOptionTable().Parse(GivenValues(vm, ReportOptionTable().specs()), &options);
  options.code_version = context.code_version;
  const StageReport report = RunReport(options);
  if (report.status == "ok") {
    spdlog::info("report: {} pages, {} thumbnails; open {}", report.counts.at("pages"), report.counts.at("thumbnails"),
                 report.facts.at("index"));
  }
  PrintSummaryLine(SummaryJsonLine(report));
  return kExitOk;
}

}  // namespace lookbook
