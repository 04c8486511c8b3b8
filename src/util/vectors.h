// Small vector helpers the stages share (embeddings are float rows, unit norm).
#pragma once

#include <cmath>
#include <cstddef>

namespace lookbook {

// The inner product of two d-float rows: cosine similarity for unit-norm embeddings.
inline float Dot(const float* a, const float* b, int d) {
  float sum = 0;
  for (int i = 0; i < d; ++i) sum += a[i] * b[i];
  return sum;
}

// Scales a d-float row to unit norm (left as is when it is all zeros).
inline void Normalize(float* a, int d) {
  const float norm = std::sqrt(Dot(a, a, d));
  if (norm > 0) {
    for (int i = 0; i < d; ++i) a[i] /= norm;
  }
}

}  // namespace lookbook
