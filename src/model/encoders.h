// The CLIP towers of a bundle, loaded once per rank and run in fixed batches.
//
// Image input: n x 3 x S x S float32, channel-major, normalised (image/preprocess.h).
// Output of both towers: n x d float32, row-major, every row L2-normalised (the bundle's
// model should already normalise; the rows are normalised again so the contract holds).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/bundle.h"
#include "model/text_tokenizer.h"

namespace lookbook {

enum class DeviceKind { kCpu, kCuda };
struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;
};
// "cpu", "cuda", "cuda:N".
bool ParseDevice(std::string_view text, Device* device);
std::string DeviceName(const Device& device);
int CudaDeviceCount();  // 0 when this LibTorch build has no CUDA

enum class Precision { kFloat32, kBFloat16, kFloat16 };
bool ParsePrecision(std::string_view text, Precision* precision);
const char* PrecisionName(Precision precision);

struct InferenceOptions {
  Device device;
  Precision precision = Precision::kFloat32;
};

// Sets LibTorch's intra-op and inter-op thread counts, and OpenBLAS's to the intra-op count
// (util/blas.h). Call once, before loading a model.
void SetTorchThreads(int intra_op, int inter_op);

class ImageEncoder {
 public:
  // Loads the bundle's image tower (checksums were verified by LoadBundle) and checks its
  // output with a dry run on a dummy batch. Throws InputError naming the file and the
  // expected shape, or when the device or precision is not available.
  static ImageEncoder Load(const ModelBundle& bundle, const InferenceOptions& options);

  ImageEncoder(ImageEncoder&&) noexcept;
  ImageEncoder& operator=(ImageEncoder&&) noexcept;
  ~ImageEncoder();

  // n images in, n x dim() floats out. Not thread-safe: one caller at a time.
  std::vector<float> Encode(const float* pixels, int n) const;

  int dim() const;
  const PreprocessSpec& preprocess() const;

 private:
  struct Impl;
  explicit ImageEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class TextEncoder {
 public:
  // As ImageEncoder::Load, for the text tower and its tokenizer.
  static TextEncoder Load(const ModelBundle& bundle, const InferenceOptions& options);

  TextEncoder(TextEncoder&&) noexcept;
  TextEncoder& operator=(TextEncoder&&) noexcept;
  ~TextEncoder();

  // texts.size() x dim() floats.
  std::vector<float> Encode(const std::vector<std::string>& texts) const;
  // What the tokenizer made of `text` under the model's context length: whether it was cut,
  // and how many of its words the vocabulary does not know (a text of unknown words embeds as
  // an empty one would).
  TextTokens Count(const std::string& text) const;
  int context_length() const;
  int dim() const;

 private:
  struct Impl;
  explicit TextEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lookbook
