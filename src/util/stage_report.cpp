#include "util/stage_report.h"

#include <sys/resource.h>

#include <nlohmann/json.hpp>

namespace lookbook {

StepTimer::StepTimer(StageReport* report, std::string name)
    : report_(report), name_(std::move(name)), start_(std::chrono::steady_clock::now()) {}

StepTimer::~StepTimer() {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  report_->steps.push_back(StepTiming{name_, seconds, items_});
}

std::string SummaryJsonLine(const StageReport& report) {
  nlohmann::ordered_json root;
  root["stage"] = report.stage;
  root["status"] = report.status;
  for (const auto& [key, value] : report.facts) root[key] = value;
  for (const auto& [key, value] : report.counts) root[key] = value;
  root["seconds"] = report.seconds;
  if (!report.throughput_unit.empty()) {
    root[report.throughput_unit + "_per_s"] =
        report.seconds > 0 ? static_cast<double>(report.throughput_items) / report.seconds : 0.0;
  }
  nlohmann::ordered_json steps = nlohmann::ordered_json::object();
  for (const auto& step : report.steps) {
    steps[step.name] = {{"seconds", step.seconds}, {"items", step.items}};
  }
  root["steps"] = steps;
  return root.dump();
}

std::int64_t PeakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace lookbook
