// The --device and --precision options of the commands that run models outside embed (query,
// embed-text, eval model): the same words as embed's (src/embed/embed_stage.cpp), parsed into an
// InferenceOptions. Under MPI a plain "cuda" is the local rank's GPU (BindLocalGpu).
#pragma once

#include <string>

#include "dist/world.h"
#include "model/encoders.h"
#include "util/error.h"
#include "util/options.h"

namespace lookbook {

template <typename O, typename Get>
void AddDeviceOptions(OptionTable<O>* table, Get inference) {
  table->Add(
      OptionSpec{"device", "DEV", "cpu", false, false, "cpu | cuda | cuda:N", "where the models run",
                 OptionEffect::kResource},
      [inference](const std::vector<std::string>& values, O* out) {
        if (!ParseDevice(values.back(), &inference(*out).device)) {
          throw UsageError("--device must be cpu, cuda or cuda:N, not '" + values.back() + "'");
        }
      },
      [inference](const O& o) { return DeviceName(inference(const_cast<O&>(o)).device); });
  table->Add(
      OptionSpec{"precision", "P", "fp32", false, false, "fp32 | bf16 | fp16",
                 "the models' precision: fp32; bf16 (CPU with oneDNN, CUDA); fp16 (CUDA)", OptionEffect::kOutput},
      [inference](const std::vector<std::string>& values, O* out) {
        if (!ParsePrecision(values.back(), &inference(*out).precision)) {
          throw UsageError("--precision must be fp32, bf16 or fp16, not '" + values.back() + "'");
        }
      },
      [inference](const O& o) { return std::string(PrecisionName(inference(const_cast<O&>(o)).precision)); });
}

// One GPU per rank: a plain "cuda" picks the local rank's device.
inline void BindLocalGpu(const std::string& given, const MpiWorld& world, InferenceOptions* options) {
  if (options->device.kind != DeviceKind::kCuda || given != "cuda" || world.size() <= 1) return;
  const int gpus = CudaDeviceCount();
  options->device.index = gpus > 0 ? world.LocalRank() % gpus : 0;
}

}  // namespace lookbook
