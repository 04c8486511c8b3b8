// gpu_bench: images/s of the TorchScript files the embed stage runs (a CLIP image tower or a
// segmenter), by device, precision and batch size, needing nothing but LibTorch (so it builds on
// a GPU machine that has a CUDA PyTorch and none of FAISS, OpenCV, MPI or HDF5):
//
//   gpu_bench MODULE.pt --kind clip|segmenter --size S [--batches 64,256] [--precisions fp32,fp16,bf16]
//             [--devices cpu,cuda] [--seconds 5] [--check 16] [--threads T]
//
// Input: a fixed batch of preprocessed images (seeded normal noise, what Preprocess would hand
// over: N x 3 x S x S float32), kept in pinned host memory on CUDA and copied to the device
// without blocking on a stream of its own, so the copy of batch i+1 overlaps the inference of
// batch i as in the embed stage. Each configuration: load, one warm-up batch, then batches for
// --seconds; one JSON line each (device, precision, batch, images_per_s, peak device memory).
// --check N: the same N images through every device and precision, compared with CPU fp32 by
// cosine (a CLIP tower's embeddings; a segmenter's per-pixel class probabilities, flattened):
// one JSON line each with the minimum cosine over the N images.
#include <torch/script.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#ifdef LOOKBOOK_GPU_BENCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace {

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

torch::Dtype DtypeOf(const std::string& precision) {
  if (precision == "fp32") return torch::kFloat32;
  if (precision == "fp16") return torch::kFloat16;
  if (precision == "bf16") return torch::kBFloat16;
  std::cerr << "gpu_bench: unknown precision " << precision << "\n";
  std::exit(2);
}

std::string Json(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out = "{";
  for (std::size_t i = 0; i < fields.size(); ++i) {
    out += (i ? ", \"" : "\"") + fields[i].first + "\": " + fields[i].second;
  }
  return out + "}";
}

std::string Quote(const std::string& text) { return "\"" + text + "\""; }

// The model's output as float32 rows on the CPU: a CLIP tower's [N, d] (L2-normalised, as the
// embed stage stores them), a segmenter's per-pixel softmax [N, classes x S x S].
torch::Tensor Rows(const torch::Tensor& output, const std::string& kind) {
  torch::Tensor rows = output.to(torch::kCPU, torch::kFloat32);
  if (kind == "segmenter") return torch::softmax(rows, 1).reshape({rows.size(0), -1});
  return rows / rows.norm(2, 1, true).clamp_min(1e-12);
}

struct Run {
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  torch::Dtype dtype = torch::kFloat32;

  torch::Tensor Forward(const torch::Tensor& host) {
    torch::NoGradGuard no_grad;
    return module.forward({host.to(device, dtype, /*non_blocking=*/device.is_cuda())}).toTensor();
  }
};

Run Load(const std::string& path, const std::string& device, const std::string& precision) {
  Run run;
  run.device = torch::Device(device);
  run.dtype = DtypeOf(precision);
  run.module = torch::jit::load(path, run.device);
  run.module.eval();
  if (run.dtype != torch::kFloat32) run.module.to(run.dtype);
  return run;
}

void Synchronize(const torch::Device& device) {
#ifdef LOOKBOOK_GPU_BENCH_CUDA
  if (device.is_cuda()) c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
#else
  (void)device;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: gpu_bench MODULE.pt --kind clip|segmenter --size S [--batches 64,256] "
                 "[--precisions fp32,fp16,bf16] [--devices cpu,cuda] [--seconds 5] [--check 16] [--threads T]\n";
    return 2;
  }
  const std::string path = argv[1];
  std::string kind = "clip", batches = "64", precisions = "fp32", devices = "cpu";
  int size = 224, check = 0, threads = 0;
  double seconds = 5;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--kind")
      kind = value;
    else if (flag == "--size")
      size = std::atoi(value.c_str());
    else if (flag == "--batches")
      batches = value;
    else if (flag == "--precisions")
      precisions = value;
    else if (flag == "--devices")
      devices = value;
    else if (flag == "--seconds")
      seconds = std::atof(value.c_str());
    else if (flag == "--check")
      check = std::atoi(value.c_str());
    else if (flag == "--threads")
      threads = std::atoi(value.c_str());
    else {
      std::cerr << "gpu_bench: unknown option " << flag << "\n";
      return 2;
    }
  }
  if (threads > 0) torch::set_num_threads(threads);
  const bool cuda = torch::cuda::is_available();
  std::cout << Json({{"torch_cuda_available", cuda ? "true" : "false"},
                     {"cuda_devices", std::to_string(cuda ? torch::cuda::device_count() : 0)},
                     {"module", Quote(path)},
                     {"kind", Quote(kind)},
                     {"size", std::to_string(size)}})
            << std::endl;
  torch::manual_seed(1);
  for (const std::string& device : Split(devices)) {
    if (device.rfind("cuda", 0) == 0 && !cuda) {
      std::cout << Json({{"device", Quote(device)}, {"skipped", Quote("this LibTorch has no CUDA device")}})
                << std::endl;
      continue;
    }
    for (const std::string& precision : Split(precisions)) {
      if (device == "cpu" && precision == "fp16") continue;  // no fp16 kernels on CPU
      for (const std::string& batch_text : Split(batches)) {
        const int batch = std::atoi(batch_text.c_str());
        Run run;
        try {
          run = Load(path, device, precision);
        } catch (const std::exception& error) {
          std::cout << Json({{"device", Quote(device)},
                             {"precision", Quote(precision)},
                             {"error", Quote("load failed")}})
                    << std::endl;
          continue;
        }
        torch::Tensor host = torch::randn({batch, 3, size, size});
        if (run.device.is_cuda()) host = host.pin_memory();
        std::string status = "ok";
        double images_per_s = 0;
        long long peak = 0;
        try {
#ifdef LOOKBOOK_GPU_BENCH_CUDA
          std::optional<c10::cuda::CUDAStreamGuard> stream;
          if (run.device.is_cuda()) {
            stream.emplace(c10::cuda::getStreamFromPool(false, run.device.index()));
            c10::cuda::CUDACachingAllocator::resetPeakStats(run.device.index());
          }
#endif
          run.Forward(host);  // warm-up: kernels chosen, memory allocated
          Synchronize(run.device);
          int done = 0;
          const auto start = std::chrono::steady_clock::now();
          double elapsed = 0;
          while (elapsed < seconds) {
            run.Forward(host);
            ++done;
            if (done % 4 == 0 || !run.device.is_cuda()) {
              Synchronize(run.device);
              elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            }
          }
          Synchronize(run.device);
          elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          images_per_s = done * batch / elapsed;
#ifdef LOOKBOOK_GPU_BENCH_CUDA
          if (run.device.is_cuda()) {
            peak = static_cast<long long>(
                c10::cuda::CUDACachingAllocator::getDeviceStats(run.device.index()).allocated_bytes[0].peak);
          }
#endif
        } catch (const std::exception& error) {
          status = "failed (out of memory?)";
        }
        std::cout << Json({{"device", Quote(device)},
                           {"precision", Quote(precision)},
                           {"batch", batch_text},
                           {"status", Quote(status)},
                           {"images_per_s", std::to_string(images_per_s)},
                           {"peak_device_bytes", std::to_string(peak)}})
                  << std::endl;
      }
    }
  }
  if (check > 0) {
    torch::manual_seed(2);
    const torch::Tensor images = torch::randn({check, 3, size, size});
    Run reference = Load(path, "cpu", "fp32");
    const torch::Tensor expected = Rows(reference.Forward(images), kind);
    for (const std::string& device : Split(devices)) {
      if (device.rfind("cuda", 0) == 0 && !cuda) continue;
      for (const std::string& precision : Split(precisions)) {
        if (device == "cpu" && (precision == "fp32" || precision == "fp16")) continue;
        Run run = Load(path, device, precision);
        const torch::Tensor got = Rows(run.Forward(images), kind);
        const torch::Tensor cosine = torch::cosine_similarity(got, expected, 1);
        std::cout << Json({{"check", Quote(device + " " + precision + " vs cpu fp32")},
                           {"images", std::to_string(check)},
                           {"min_cosine", std::to_string(cosine.min().item<double>())},
                           {"mean_cosine", std::to_string(cosine.mean().item<double>())}})
                  << std::endl;
      }
    }
  }
  return 0;
}
