// lookbook report --run RUN
#include <spdlog/spdlog.h>

#include "jobs/command.h"
#include "report/report_stage.h"
#include "util/error.h"

namespace lookbook {

void DescribeReport(po::options_description* options) {
  options->add_options()("run", po::value<std::string>()->required()->value_name("DIR"),
                         "the run folder (reads every stage; writes DIR/report)")(
      "page-size", po::value<int>()->default_value(100)->value_name("N"),
      "clusters, products or photos per page (outfits: half as many)")(
      "reject-page-size", po::value<int>()->default_value(500)->value_name("N"), "rejected rows per page")(
      "thumb-side", po::value<int>()->default_value(160)->value_name("PX"), "longest side of a thumbnail")(
      "photo-side", po::value<int>()->default_value(360)->value_name("PX"), "longest side of an outfit photo")(
      "force", po::bool_switch(), "redo the report even when it is valid");
}

int RunReportCommand(const po::variables_map& vm, const CommandContext& context) {
  ReportOptions options;
  options.run = vm["run"].as<std::string>();
  options.page_size = vm["page-size"].as<int>();
  options.reject_page_size = vm["reject-page-size"].as<int>();
  options.thumb_side = vm["thumb-side"].as<int>();
  options.photo_side = vm["photo-side"].as<int>();
  for (const auto& [name, value, low, high] :
       {std::tuple<const char*, int, int, int>{"--page-size", options.page_size, 1, 100000},
        {"--reject-page-size", options.reject_page_size, 1, 1000000},
        {"--thumb-side", options.thumb_side, 16, 1024},
        {"--photo-side", options.photo_side, 64, 4096}}) {
    if (value < low || value > high)
      throw UsageError(std::string(name) + " must be in " + std::to_string(low) + ".." + std::to_string(high));
  }
  options.rerun = vm["force"].as<bool>() ? RerunPolicy::kForce : RerunPolicy::kReuseValid;
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
