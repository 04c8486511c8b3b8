#include "model/encoders.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <sstream>

#include "model/text_tokenizer.h"
#include "model/torch_util.h"
#include "util/blas.h"
#include "util/error.h"

namespace lookbook {
namespace {

std::string ShapeText(const at::Tensor& tensor) {
  std::ostringstream out;
  out << tensor.sizes();
  return out.str();
}

// Runs the module and checks it returned a floating [n, dim] tensor.
at::Tensor Forward(torch::jit::Module& module, const at::Tensor& input, int n, int dim, const std::string& what) {
  at::Tensor output;
  try {
    output = module.forward({input}).toTensor();
  } catch (const c10::Error& error) {
    throw InputError(what + ": forward failed: " + error.what_without_backtrace());
  } catch (const std::exception& error) {
    throw InputError(what + ": forward did not return a tensor: " + error.what());
  }
  if (output.dim() != 2 || output.size(0) != n || output.size(1) != dim || !output.is_floating_point()) {
    throw InputError(what + ": output is " + ShapeText(output) + " " +
                     std::string(c10::toString(output.scalar_type())) + ", expected [" + std::to_string(n) + ", " +
                     std::to_string(dim) + "] floating point");
  }
  return output;
}

std::vector<float> ToUnitRows(const at::Tensor& output) {
  at::Tensor rows = output.to(torch::kCPU, torch::kFloat32);
  rows = rows / rows.norm(2, 1, true).clamp_min(1e-12);
  rows = rows.contiguous();
  return std::vector<float>(rows.data_ptr<float>(), rows.data_ptr<float>() + rows.numel());
}

}  // namespace

bool ParseDevice(std::string_view text, Device* device) {
  if (text == "cpu") {
    *device = Device{DeviceKind::kCpu, 0};
    return true;
  }
  if (text == "cuda") {
    *device = Device{DeviceKind::kCuda, 0};
    return true;
  }
  if (text.substr(0, 5) == "cuda:" && text.size() > 5 && text.size() < 9) {
    int index = 0;
    for (const char ch : text.substr(5)) {
      if (ch < '0' || ch > '9') return false;
      index = index * 10 + (ch - '0');
    }
    *device = Device{DeviceKind::kCuda, index};
    return true;
  }
  return false;
}

std::string DeviceName(const Device& device) {
  return device.kind == DeviceKind::kCpu ? "cpu" : "cuda:" + std::to_string(device.index);
}

int CudaDeviceCount() { return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0; }

bool ParsePrecision(std::string_view text, Precision* precision) {
  if (text == "fp32")
    *precision = Precision::kFloat32;
  else if (text == "bf16")
    *precision = Precision::kBFloat16;
  else if (text == "fp16")
    *precision = Precision::kFloat16;
  else
    return false;
  return true;
}

const char* PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kFloat32: return "fp32";
    case Precision::kBFloat16: return "bf16";
    case Precision::kFloat16: return "fp16";
  }
  return "unknown";
}

void SetTorchThreads(int intra_op, int inter_op) {
  if (intra_op > 0) {
    torch::set_num_threads(intra_op);
    // LibTorch's GEMMs run in OpenBLAS's own pool: give it the same count (util/blas.h).
    SetBlasThreads(intra_op);
  }
  if (inter_op > 0) {
    // LibTorch allows this once per process, before any inter-op work.
    try {
      torch::set_num_interop_threads(inter_op);
    } catch (const c10::Error&) {
    }
  }
}

struct ImageEncoder::Impl {
  mutable torch::jit::Module module;
  InferenceOptions options;
  PreprocessSpec preprocess;
  int dim = 0;
};

ImageEncoder::ImageEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ImageEncoder::ImageEncoder(ImageEncoder&&) noexcept = default;
ImageEncoder& ImageEncoder::operator=(ImageEncoder&&) noexcept = default;
ImageEncoder::~ImageEncoder() = default;

ImageEncoder ImageEncoder::Load(const ModelBundle& bundle, const InferenceOptions& options) {
  if (bundle.kind != BundleKind::kClip) throw InputError(bundle.dir.string() + " is not a clip bundle");
  CheckDevice(options);
  auto impl = std::make_unique<Impl>();
  impl->module = LoadModule(bundle, bundle.image_encoder, options);
  impl->options = options;
  impl->preprocess = bundle.preprocess;
  impl->dim = bundle.embedding_dim;
  // Dry run: the output shape must be what bundle.json promises.
  const int size = bundle.preprocess.size;
  c10::InferenceMode guard;
  const at::Tensor dummy = torch::zeros(
      {2, 3, size, size}, torch::TensorOptions().dtype(Dtype(options.precision)).device(TorchDevice(options.device)));
  Forward(impl->module, dummy, 2, impl->dim, bundle.Path(bundle.image_encoder).string());
  return ImageEncoder(std::move(impl));
}

std::vector<float> ImageEncoder::Encode(const float* pixels, int n) const {
  LB_CHECK(n > 0, "encoding an empty batch");
  c10::InferenceMode guard;
  const int size = impl_->preprocess.size;
  const at::Tensor input =
      ToDevice(torch::from_blob(const_cast<float*>(pixels), {n, 3, size, size}, torch::kFloat32), impl_->options);
  return ToUnitRows(Forward(impl_->module, input, n, impl_->dim, "image encoder"));
}

int ImageEncoder::dim() const { return impl_->dim; }
const PreprocessSpec& ImageEncoder::preprocess() const { return impl_->preprocess; }

struct TextEncoder::Impl {
  mutable torch::jit::Module module;
  InferenceOptions options;
  std::unique_ptr<TextTokenizer> tokenizer;
  int context = 0;
  int dim = 0;
};

TextEncoder::TextEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TextEncoder::TextEncoder(TextEncoder&&) noexcept = default;
TextEncoder& TextEncoder::operator=(TextEncoder&&) noexcept = default;
TextEncoder::~TextEncoder() = default;

TextEncoder TextEncoder::Load(const ModelBundle& bundle, const InferenceOptions& options) {
  if (bundle.kind != BundleKind::kClip || bundle.text_encoder.empty()) {
    throw InputError("model bundle " + bundle.dir.string() + " has no text tower");
  }
  CheckDevice(options);
  auto impl = std::make_unique<Impl>();
  impl->tokenizer = LoadTokenizer(bundle);
  // Token ids stay integers; only the weights take the reduced precision.
  impl->module = LoadModule(bundle, bundle.text_encoder, options);
  impl->options = options;
  impl->context = bundle.context_length;
  impl->dim = bundle.embedding_dim;
  c10::InferenceMode guard;
  const at::Tensor dummy =
      torch::zeros({2, impl->context}, torch::TensorOptions().dtype(torch::kInt64).device(TorchDevice(options.device)));
  Forward(impl->module, dummy, 2, impl->dim, bundle.Path(bundle.text_encoder).string());
  return TextEncoder(std::move(impl));
}

std::vector<float> TextEncoder::Encode(const std::vector<std::string>& texts) const {
  LB_CHECK(!texts.empty(), "encoding no text");
  const int n = static_cast<int>(texts.size());
  std::vector<std::int64_t> ids;
  ids.reserve(static_cast<std::size_t>(n) * impl_->context);
  for (const auto& text : texts) {
    for (const std::int32_t id : impl_->tokenizer->EncodeForModel(text, impl_->context)) ids.push_back(id);
  }
  c10::InferenceMode guard;
  at::Tensor input = torch::from_blob(ids.data(), {n, impl_->context}, torch::kInt64);
  input = input.to(TorchDevice(impl_->options.device));
  return ToUnitRows(Forward(impl_->module, input, n, impl_->dim, "text encoder"));
}

TextTokens TextEncoder::Count(const std::string& text) const { return impl_->tokenizer->Count(text, impl_->context); }
int TextEncoder::context_length() const { return impl_->context; }

int TextEncoder::dim() const { return impl_->dim; }

}  // namespace lookbook
