// LibTorch helpers shared by model/*.cpp (never included outside src/model): where a model runs,
// in which precision, and how a bundle's TorchScript file is loaded there.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <string>

#include "model/bundle.h"
#include "model/encoders.h"

namespace lookbook {

torch::Device TorchDevice(const Device& device);

// Throws InputError, before any model is loaded, when the device does not exist in this build or
// machine, or the precision does not suit it.
void CheckDevice(const InferenceOptions& options);

torch::Dtype Dtype(Precision precision);

// The bundle's TorchScript `file` on the options' device and precision, in eval mode.
torch::jit::Module LoadModule(const ModelBundle& bundle, const std::string& file, const InferenceOptions& options);

// A host batch on the options' device and precision: on CUDA from pinned memory, copied without
// blocking the host, on a stream of its own where LibTorch has CUDA (the compute stream waits
// for it only when it needs the batch).
at::Tensor ToDevice(const at::Tensor& host, const InferenceOptions& options);

}  // namespace lookbook
