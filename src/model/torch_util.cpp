#include "model/torch_util.h"

#include "util/error.h"

namespace lookbook {

torch::Device TorchDevice(const Device& device) {
  if (device.kind == DeviceKind::kCpu) return torch::Device(torch::kCPU);
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(device.index));
}

void CheckDevice(const InferenceOptions& options) {
  if (options.device.kind == DeviceKind::kCuda) {
    const int count = CudaDeviceCount();
    if (count == 0) throw InputError("--device " + DeviceName(options.device) + ": this LibTorch build has no CUDA");
    if (options.device.index >= count) {
      throw InputError("--device " + DeviceName(options.device) + ": only " + std::to_string(count) + " GPU(s)");
    }
  }
  if (options.precision == Precision::kFloat16 && options.device.kind == DeviceKind::kCpu) {
    throw InputError("--precision fp16 needs a CUDA device; on CPU use bf16");
  }
}

torch::Dtype Dtype(Precision precision) {
  switch (precision) {
    case Precision::kFloat32: return torch::kFloat32;
    case Precision::kBFloat16: return torch::kBFloat16;
    case Precision::kFloat16: return torch::kFloat16;
  }
  return torch::kFloat32;
}

torch::jit::Module LoadModule(const ModelBundle& bundle, const std::string& file, const InferenceOptions& options) {
  const std::string path = bundle.Path(file).string();
  try {
    torch::jit::Module module = torch::jit::load(path, TorchDevice(options.device));
    module.eval();
    if (options.precision != Precision::kFloat32) module.to(Dtype(options.precision));
    return module;
  } catch (const c10::Error& error) {
    throw InputError("cannot load TorchScript module " + path + ": " + error.what_without_backtrace());
  }
}

at::Tensor ToDevice(const at::Tensor& host, const InferenceOptions& options) {
  if (options.device.kind == DeviceKind::kCpu) return host.to(Dtype(options.precision));
  // Pinned host memory lets the copy run asynchronously, overlapping the next batch's decode.
  return host.pin_memory().to(TorchDevice(options.device), Dtype(options.precision), /*non_blocking=*/true);
}

}  // namespace lookbook
