// What a stage did, for its one JSON summary line: counts, named steps with seconds and
// items/s (mold-style RAII StepTimer), total seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lookbook {

struct StepTiming {
  std::string name;
  double seconds = 0;
  std::int64_t items = 0;
};

struct StageReport {
  std::string stage;
  std::string status = "ok";  // ok | skipped (outputs already valid)
  std::map<std::string, std::int64_t> counts;
  std::map<std::string, std::string> facts;  // e.g. {"run": "/runs/x"}
  std::vector<StepTiming> steps;
  double seconds = 0;
  std::string throughput_unit;  // e.g. "rows": the summary then carries rows_per_s
  std::int64_t throughput_items = 0;
};

// Times one named step into `report` when it goes out of scope.
class StepTimer {
 public:
  StepTimer(StageReport* report, std::string name);
  ~StepTimer();
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;
  void set_items(std::int64_t items) { items_ = items; }

 private:
  StageReport* report_;
  std::string name_;
  std::int64_t items_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// One line of JSON: {"stage":..., "status":..., counts..., "seconds":..., "<unit>_per_s":...,
// "steps": {"name": {"seconds":..., "items":...}}}.
std::string SummaryJsonLine(const StageReport& report);

// This process's peak resident memory so far, in bytes (getrusage).
std::int64_t PeakRssBytes();

}  // namespace lookbook
