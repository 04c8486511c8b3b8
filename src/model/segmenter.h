// A segmenter bundle's model, loaded once and run in batches.
//
// Input as the image towers (image/preprocess.h, the bundle's spec); output one class index
// per pixel of the S x S model input, row-major, classes in the bundle's "classes" order.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/bundle.h"
#include "model/encoders.h"

namespace lookbook {

class Segmenter {
 public:
  // Loads and dry-runs the bundle's model: its output must be [2, classes, S, S] floats.
  static Segmenter Load(const ModelBundle& bundle, const InferenceOptions& options);

  Segmenter(Segmenter&&) noexcept;
  Segmenter& operator=(Segmenter&&) noexcept;
  ~Segmenter();

  // n images in, n x S x S class indices out (with each pixel's winning probability in
  // *confidence when it is not null).
  std::vector<std::uint8_t> Segment(const float* pixels, int n, std::vector<float>* confidence) const;

  const PreprocessSpec& preprocess() const;
  int classes() const;

 private:
  struct Impl;
  explicit Segmenter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lookbook
