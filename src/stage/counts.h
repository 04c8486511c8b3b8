// A stage's counts as a typed struct, summed across ranks and reported by name. A struct lists
// its fields once, in ForEach:
//   struct EmbedCounts {
//     std::int64_t images = 0, ok = 0;
//     template <typename F> void ForEach(F&& f) { f("images", images); f("ok", ok); }
//   };
// SumCounts adds every rank's struct field by field (one MPI reduction), so no index into a
// vector of numbers names a count, and a field added to ForEach is summed and reported.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dist/world.h"
#include "util/stage_report.h"

namespace lookbook {

template <typename T>
std::vector<std::int64_t> PackCounts(T counts) {
  std::vector<std::int64_t> out;
  counts.ForEach([&](const char*, std::int64_t& value) { out.push_back(value); });
  return out;
}

// The fields of `counts` from `values`, in ForEach order (PackCounts' inverse).
template <typename T>
T UnpackCounts(const std::vector<std::int64_t>& values, T counts) {
  std::size_t i = 0;
  counts.ForEach([&](const char*, std::int64_t& value) { value = values.at(i++); });
  return counts;
}

// Collective (no-op without a world): the field-by-field sum over every rank, on every rank.
template <typename T>
T SumCounts(const MpiWorld* world, T counts) {
  if (world == nullptr || world->size() == 1) return counts;
  return UnpackCounts(world->SumAll(PackCounts(counts)), counts);
}

// Collective (no-op without a world): rank 0's struct on every rank (counts one rank computed).
template <typename T>
T BroadcastCounts(const MpiWorld* world, T counts) {
  if (world == nullptr || world->size() == 1) return counts;
  return UnpackCounts(world->BroadcastFromRoot(PackCounts(counts)), counts);
}

// Every field into *out under its name (zeros included unless skip_zero): a manifest's counts.
template <typename T>
void CountsInto(T counts, std::map<std::string, std::int64_t>* out, bool skip_zero = false) {
  counts.ForEach([&](const char* name, std::int64_t& value) {
    if (!skip_zero || value != 0) (*out)[name] = value;
  });
}

// Every field into report->counts under its name (zeros included unless skip_zero).
template <typename T>
void ReportCounts(T counts, StageReport* report, bool skip_zero = false) {
  CountsInto(std::move(counts), &report->counts, skip_zero);
}

}  // namespace lookbook
