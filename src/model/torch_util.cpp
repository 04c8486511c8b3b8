#include "model/torch_util.h"

#include "util/error.h"

#ifdef LOOKBOOK_TORCH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

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
  const torch::Device device = TorchDevice(options.device);
  // Pinned host memory lets the copy run asynchronously, overlapping the next batch's decode.
  const at::Tensor pinned = host.pin_memory();
#ifdef LOOKBOOK_TORCH_CUDA
  // The copy on a stream of its own, so that it overlaps the model still running the previous
  // batch on the compute (current) stream; the compute stream waits for the copy's event only
  // when it needs the batch, and the tensor is marked as used there for the caching allocator.
  const c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(device.index());
  const c10::cuda::CUDAStream copy = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
  at::Tensor out;
  {
    const c10::cuda::CUDAStreamGuard guard(copy);
    out = pinned.to(device, Dtype(options.precision), /*non_blocking=*/true);
  }
  at::cuda::CUDAEvent copied;
  copied.record(copy);
  copied.block(compute);
  out.record_stream(compute);
  return out;
#else
  // This LibTorch has no CUDA library to name streams with: the copy runs on the current stream.
  return pinned.to(device, Dtype(options.precision), /*non_blocking=*/true);
#endif
}

}  // namespace lookbook
