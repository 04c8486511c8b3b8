#include "util/fault.h"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "util/error.h"
#include "util/stop.h"

namespace lookbook {
namespace {

struct Fault {
  std::string point;
  std::string action;
  double seconds = 0;
  std::string until_file;  // hold: the file whose appearance ends the wait
  int rank = -1;           // -1: any
  long nth = 0;            // 0: every time
};

int g_rank = 0;

const std::vector<Fault>& Faults() {
  static const std::vector<Fault> faults = [] {
    std::vector<Fault> out;
    const char* spec = std::getenv("LOOKBOOK_FAULT");
    if (spec == nullptr) return out;
    std::istringstream entries(spec);
    for (std::string entry; std::getline(entries, entry, ';');) {
      if (entry.empty()) continue;
      std::istringstream parts(entry);
      std::vector<std::string> fields;
      for (std::string field; std::getline(parts, field, ':');) fields.push_back(field);
      if (fields.size() < 2) throw InputError("LOOKBOOK_FAULT: '" + entry + "' is not POINT:ACTION[:rank=R][:nth=N]");
      Fault fault;
      fault.point = fields[0];
      fault.action = fields[1];
      if (fault.action.rfind("pause=", 0) == 0) {
        fault.seconds = std::atof(fault.action.c_str() + 6);
        fault.action = "pause";
      } else if (fault.action.rfind("hold=", 0) == 0) {
        fault.until_file = fault.action.substr(5);
        fault.seconds = 600;
        fault.action = "pause";
      }
      if (fault.action != "kill" && fault.action != "internal" && fault.action != "input" && fault.action != "pause") {
        throw InputError("LOOKBOOK_FAULT: unknown action '" + fields[1] + "'");
      }
      for (std::size_t i = 2; i < fields.size(); ++i) {
        if (fields[i].rfind("rank=", 0) == 0)
          fault.rank = std::atoi(fields[i].c_str() + 5);
        else if (fields[i].rfind("nth=", 0) == 0)
          fault.nth = std::atol(fields[i].c_str() + 4);
        else
          throw InputError("LOOKBOOK_FAULT: unknown qualifier '" + fields[i] + "'");
      }
      out.push_back(fault);
    }
    return out;
  }();
  return faults;
}

}  // namespace

void SetFaultRank(int rank) { g_rank = rank; }

void FaultPoint(const char* point) {
  const auto& faults = Faults();
  if (faults.empty()) return;
  static std::mutex mutex;
  static std::map<std::string, long> reached;
  long count = 0;
  {
    std::lock_guard<std::mutex> lock(mutex);
    count = ++reached[point];
  }
  for (const auto& fault : faults) {
    if (fault.point != point || (fault.rank >= 0 && fault.rank != g_rank) || (fault.nth > 0 && fault.nth != count)) {
      continue;
    }
    if (fault.action == "kill") {
      std::raise(SIGKILL);
    } else if (fault.action == "internal") {
      ThrowInternalError(__FILE__, __LINE__, point, "fault injected by LOOKBOOK_FAULT");
    } else if (fault.action == "input") {
      throw InputError(std::string("fault injected by LOOKBOOK_FAULT at ") + point);
    } else if (fault.action == "pause") {
      const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(fault.seconds);
      while (std::chrono::steady_clock::now() < until && !StopRequested() &&
             (fault.until_file.empty() || !std::filesystem::exists(fault.until_file))) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
}

}  // namespace lookbook
