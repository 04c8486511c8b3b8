#include "model/segmenter.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <sstream>

#include "model/torch_util.h"
#include "util/error.h"

namespace lookbook {

struct Segmenter::Impl {
  mutable torch::jit::Module module;
  InferenceOptions options;
  PreprocessSpec preprocess;
  int classes = 0;
};

Segmenter::Segmenter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Segmenter::Segmenter(Segmenter&&) noexcept = default;
Segmenter& Segmenter::operator=(Segmenter&&) noexcept = default;
Segmenter::~Segmenter() = default;

Segmenter Segmenter::Load(const ModelBundle& bundle, const InferenceOptions& options) {
  if (bundle.kind != BundleKind::kSegmenter) throw InputError(bundle.dir.string() + " is not a segmenter bundle");
  CheckDevice(options);
  auto impl = std::make_unique<Impl>();
  const std::string path = bundle.Path(bundle.image_encoder).string();
  impl->module = LoadModule(bundle, bundle.image_encoder, options);
  impl->options = options;
  impl->preprocess = bundle.preprocess;
  impl->classes = static_cast<int>(bundle.class_names.size());
  if (impl->classes < 1 || impl->classes > 255) {
    throw InputError(bundle.dir.string() + ": a segmenter has 1..255 classes, this one " +
                     std::to_string(impl->classes));
  }
  const int size = bundle.preprocess.size;
  c10::InferenceMode guard;
  at::Tensor output;
  try {
    output = impl->module
                 .forward({torch::zeros(
                     {2, 3, size, size},
                     torch::TensorOptions().dtype(Dtype(options.precision)).device(TorchDevice(options.device)))})
                 .toTensor();
  } catch (const std::exception& error) {
    throw InputError(path + ": forward failed: " + error.what());
  }
  if (output.dim() != 4 || output.size(0) != 2 || output.size(1) != impl->classes || output.size(2) != size ||
      output.size(3) != size) {
    std::ostringstream shape;
    shape << output.sizes();
    throw InputError(path + ": output is " + shape.str() + ", expected [2, " + std::to_string(impl->classes) + ", " +
                     std::to_string(size) + ", " + std::to_string(size) + "]");
  }
  return Segmenter(std::move(impl));
}

std::vector<std::uint8_t> Segmenter::Segment(const float* pixels, int n, std::vector<float>* confidence) const {
  LB_CHECK(n > 0, "segmenting an empty batch");
  c10::InferenceMode guard;
  const int size = impl_->preprocess.size;
  const auto host = torch::from_blob(const_cast<float*>(pixels), {n, 3, size, size}, torch::kFloat32);
  at::Tensor logits;
  try {
    logits = impl_->module.forward({ToDevice(host, impl_->options)}).toTensor();
  } catch (const c10::Error& error) {
    throw InputError(std::string("segmenter: forward failed: ") + error.what_without_backtrace());
  }
  // Softmax and argmax in fp32 on the device; only labels and confidences come back.
  const auto probabilities = torch::softmax(logits.to(torch::kFloat32), 1);
  const auto best = probabilities.max(1);
  const auto labels = std::get<1>(best).to(torch::kCPU, torch::kUInt8).contiguous();
  if (confidence != nullptr) {
    const auto values = std::get<0>(best).to(torch::kCPU).contiguous();
    confidence->assign(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
  }
  return std::vector<std::uint8_t>(labels.data_ptr<std::uint8_t>(), labels.data_ptr<std::uint8_t>() + labels.numel());
}

const PreprocessSpec& Segmenter::preprocess() const { return impl_->preprocess; }
int Segmenter::classes() const { return impl_->classes; }

}  // namespace lookbook
