// Affine image alignment by the enhanced correlation coefficient (ECC; Evangelidis and Psarakis,
// "Parametric image alignment using enhanced correlation coefficient maximization", IEEE PAMI
// 30(10), 2008): the algorithm of OpenCV's cv::findTransformECC with MOTION_AFFINE and no mask,
// written for dedup's small square grey views (32 and 64 pixels a side).
//
// Why not OpenCV's: at these sizes its call spends most of its time outside the arithmetic
// (a dozen temporary matrices, library calls and trace regions per iteration, and the smoothing
// and gradients redone for every start). Here each image pair is smoothed and differentiated
// once for all starts, and an iteration is one pass over the pixels the warp keeps inside the
// input. Same steps and stopping rule as OpenCV 4.6's (smoothing kernel, central differences,
// the illumination factor lambda, the warp update, the correlation returned being the one before
// the last update). Two differences: sampling uses exact bilinear weights where OpenCV rounds
// them to 1/32 pixel, and the sums run over the pixels the mask keeps only, where OpenCV's also
// take in a fringe (template pixels mapped within half a pixel outside the input, whose sample
// partly covers it, enter its Hessian and projections). From the identity the first step is
// the same (tests/unit/ecc_test.cpp); later steps part by a little. The speed-up and its effect
// on dedup's answers: docs/performance.md#ecc-written-for-the-views. Internal to src/image.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace lookbook::image_internal {

// A 2x3 affine map, row-major: the template's pixel (x, y) samples the input at
// (m[0] x + m[1] y + m[2], m[3] x + m[4] y + m[5]) (OpenCV's WARP_INVERSE_MAP convention).
using Affine = std::array<float, 6>;

inline constexpr Affine kIdentity = {1, 0, 0, 0, 1, 0};

// A zoom by `scale` about the centre of a side x side image.
Affine ZoomAbout(int side, float scale);

class EccAligner {
 public:
  // template_grey and input_grey: side x side, row-major. blur_size 3 or 5 (OpenCV's
  // gaussFiltSize: the fixed binomial kernels 1 2 1 / 4 and 1 4 6 4 1 / 16).
  EccAligner(const float* template_grey, const float* input_grey, int side, int blur_size);

  // Runs ECC from *warp for at most max_iterations, stopping earlier when the correlation moves
  // by less than epsilon. True with *warp updated and *rho the correlation (also when the
  // iterations ran out); false (*warp unspecified) when it cannot go on: an image flat over the
  // overlap, no overlap, a step that would minimise the correlation (OpenCV's StsNoConv cases),
  // or a step that overflowed.
  bool Align(Affine* warp, int max_iterations, double epsilon, double* rho) const;

  int side() const { return side_; }

 private:
  int side_;
  std::vector<float> template_;  // smoothed, side x side
  std::vector<float> input_;     // smoothed, with its x and y gradients: (side + 2)^2 x 3, zero ring
};

// An image resampled through `warp` (bilinear, coordinates clamped to the image: OpenCV's
// BORDER_REPLICATE), channels interleaved: out[(y * side + x) * channels + c] samples `image`
// at warp(x, y).
void WarpReplicate(const float* image, int side, int channels, const Affine& warp, float* out);

// Which template pixels the warp maps inside the input (nearest-pixel rounding, as OpenCV warps
// a mask with INTER_NEAREST), eroded by one pixel (3x3, the image edge not eroding): 1 or 0.
void CoveredEroded(int side, const Affine& warp, std::uint8_t* out);

// The 2x2 mean of a side x side image (side even), channels interleaved: cv::resize with
// INTER_AREA to half size.
std::vector<float> HalveImage(const float* image, int side, int channels);

}  // namespace lookbook::image_internal
