#include "image/ecc.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace lookbook::image_internal {
namespace {

// Index into [0, n) reflected without repeating the edge (OpenCV's BORDER_REFLECT_101).
int Reflect101(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

// The separable binomial smoothing OpenCV's GaussianBlur applies for ksize 3 or 5 with sigma 0.
std::vector<float> Smooth(const float* image, int side, int size) {
  static constexpr float k3[] = {0.25f, 0.5f, 0.25f};
  static constexpr float k5[] = {0.0625f, 0.25f, 0.375f, 0.25f, 0.0625f};
  LB_CHECK(size == 3 || size == 5, "EccAligner: blur size 3 or 5");
  const float* kernel = size == 3 ? k3 : k5;
  const int radius = size / 2, padded = side + 2 * radius;
  // Rows padded by reflection, filtered along x into `rows`; then the same along y, a row at a time.
  std::vector<float> line(static_cast<std::size_t>(padded)), rows(static_cast<std::size_t>(padded) * side);
  std::vector<float> out(static_cast<std::size_t>(side) * side);
  for (int y = 0; y < side; ++y) {
    for (int x = -radius; x < side + radius; ++x) line[x + radius] = image[y * side + Reflect101(x, side)];
    float* row = &rows[static_cast<std::size_t>(y + radius) * side];
    for (int x = 0; x < side; ++x) {
      float sum = 0;
      for (int k = 0; k < size; ++k) sum += kernel[k] * line[x + k];
      row[x] = sum;
    }
  }
  for (int r = 0; r < radius; ++r) {  // reflected rows above and below
    std::copy_n(&rows[static_cast<std::size_t>(Reflect101(-1 - r, side) + radius) * side], side,
                &rows[static_cast<std::size_t>(radius - 1 - r) * side]);
    std::copy_n(&rows[static_cast<std::size_t>(Reflect101(side + r, side) + radius) * side], side,
                &rows[static_cast<std::size_t>(side + radius + r) * side]);
  }
  for (int y = 0; y < side; ++y) {
    float* target = &out[static_cast<std::size_t>(y) * side];
    std::fill_n(target, side, 0.0f);
    for (int k = 0; k < size; ++k) {
      const float* source = &rows[static_cast<std::size_t>(y + k) * side];
      for (int x = 0; x < side; ++x) target[x] += kernel[k] * source[x];
    }
  }
  return out;
}

// Solves H d = b for the 6x6 symmetric Hessian by Cholesky; false when H is not positive
// definite (then OpenCV's inverse is the zero matrix, and so is d).
bool SolveSymmetric6(const double (&h)[6][6], const double (&b)[6], double (&d)[6]) {
  double l[6][6] = {};
  double largest = 0;
  for (int i = 0; i < 6; ++i) largest = std::max(largest, h[i][i]);
  for (int j = 0; j < 6; ++j) {
    double diagonal = h[j][j];
    for (int k = 0; k < j; ++k) diagonal -= l[j][k] * l[j][k];
    if (!(diagonal > 1e-12 * largest)) {
      std::fill(d, d + 6, 0.0);
      return false;
    }
    l[j][j] = std::sqrt(diagonal);
    for (int i = j + 1; i < 6; ++i) {
      double sum = h[i][j];
      for (int k = 0; k < j; ++k) sum -= l[i][k] * l[j][k];
      l[i][j] = sum / l[j][j];
    }
  }
  double z[6];
  for (int i = 0; i < 6; ++i) {
    double sum = b[i];
    for (int k = 0; k < i; ++k) sum -= l[i][k] * z[k];
    z[i] = sum / l[i][i];
  }
  for (int i = 5; i >= 0; --i) {
    double sum = z[i];
    for (int k = i + 1; k < 6; ++k) sum -= l[k][i] * d[k];
    d[i] = sum / l[i][i];
  }
  return true;
}

// The sums over k < kept of left * right times x x, x y, y y, x, y and 1 (ECC's Hessian
// moments), in float lanes.
void Moments(const float* __restrict left, const float* __restrict right, const float* __restrict xs,
             const float* __restrict ys, std::size_t kept, float* moment) {
  float xx = 0, xy = 0, yy = 0, x1 = 0, y1 = 0, one = 0;
#pragma omp simd reduction(+ : xx, xy, yy, x1, y1, one)
  for (std::size_t k = 0; k < kept; ++k) {
    const float product = left[k] * right[k];
    const float px = product * xs[k], py = product * ys[k];
    xx += px * xs[k];
    xy += px * ys[k];
    yy += py * ys[k];
    x1 += px;
    y1 += py;
    one += product;
  }
  const float sums[6] = {xx, xy, yy, x1, y1, one};
  std::copy(sums, sums + 6, moment);
}

}  // namespace

Affine ZoomAbout(int side, float scale) {
  const float centre = static_cast<float>(side - 1) / 2.0f;
  return {scale, 0, centre * (1 - scale), 0, scale, centre * (1 - scale)};
}

EccAligner::EccAligner(const float* template_grey, const float* input_grey, int side, int blur_size) : side_(side) {
  LB_CHECK(side >= 2, "EccAligner: side");
  template_ = Smooth(template_grey, side, blur_size);
  const std::vector<float> input = Smooth(input_grey, side, blur_size);
  // The input and its gradients, interleaved, with a ring of zeros around (OpenCV's constant-0
  // border): a bilinear sample at a pixel the mask keeps (within half a pixel of the input) reads
  // its four taps without bounds checks. Central differences, -0.5 0 0.5, edges reflected (so 0
  // on the outermost columns and rows).
  const int padded = side + 2;
  input_.assign(static_cast<std::size_t>(padded) * padded * 3, 0.0f);
  auto at = [&](int xx, int yy) { return input[static_cast<std::size_t>(yy) * side + xx]; };
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      float* cell = &input_[(static_cast<std::size_t>(y + 1) * padded + (x + 1)) * 3];
      cell[0] = at(x, y);
      cell[1] = 0.5f * (at(Reflect101(x + 1, side), y) - at(Reflect101(x - 1, side), y));
      cell[2] = 0.5f * (at(x, Reflect101(y + 1, side)) - at(x, Reflect101(y - 1, side)));
    }
  }
}

bool EccAligner::Align(Affine* warp, int max_iterations, double epsilon, double* rho_out) const {
  const int n = side_, padded = n + 2;
  Affine& m = *warp;
  const std::size_t pixels = static_cast<std::size_t>(n) * n;
  // The pixels kept by the current warp, as columns: coordinates, template value, and the input
  // and its gradients sampled there.
  std::vector<float> image(pixels), gx(pixels), gy(pixels), templ(pixels), xs(pixels), ys(pixels);
  double rho = -1, last_rho = -epsilon;
  for (int iteration = 1; iteration <= max_iterations && std::fabs(rho - last_rho) >= epsilon; ++iteration) {
    std::size_t kept = 0;
    double sum_i = 0, sum_t = 0;
    for (int y = 0; y < n; ++y) {
      const float row_x = m[1] * static_cast<float>(y) + m[2], row_y = m[4] * static_cast<float>(y) + m[5];
      for (int x = 0; x < n; ++x) {
        const float px = m[0] * static_cast<float>(x) + row_x, py = m[3] * static_cast<float>(x) + row_y;
        // The mask: the nearest input pixel exists (OpenCV warps an all-ones mask with INTER_NEAREST).
        if (!(px >= -0.5f && px < static_cast<float>(n) - 0.5f && py >= -0.5f && py < static_cast<float>(n) - 0.5f))
          continue;
        // px + 1 > 0: the truncation is the floor, and the padded index of the tap.
        const int x0 = static_cast<int>(px + 1.0f), y0 = static_cast<int>(py + 1.0f);
        const float ax = px + 1.0f - static_cast<float>(x0), ay = py + 1.0f - static_cast<float>(y0);
        const float* top = &input_[(static_cast<std::size_t>(y0) * padded + x0) * 3];
        const float* bottom = top + static_cast<std::size_t>(padded) * 3;
        float sample[3];
        for (int c = 0; c < 3; ++c) {
          const float upper = top[c] + ax * (top[3 + c] - top[c]);
          const float lower = bottom[c] + ax * (bottom[3 + c] - bottom[c]);
          sample[c] = upper + ay * (lower - upper);
        }
        const float t = template_[static_cast<std::size_t>(y) * n + x];
        image[kept] = sample[0];
        gx[kept] = sample[1];
        gy[kept] = sample[2];
        templ[kept] = t;
        xs[kept] = static_cast<float>(x);
        ys[kept] = static_cast<float>(y);
        sum_i += sample[0];
        sum_t += t;
        ++kept;
      }
    }
    if (kept == 0) return false;
    const float mean_i = static_cast<float>(sum_i / static_cast<double>(kept));
    const float mean_t = static_cast<float>(sum_t / static_cast<double>(kept));
    // Sums over the kept pixels, in float lanes (as OpenCV's float matrices; the lanes keep the
    // partial sums short). The Jacobian row, in OpenCV's parameter order d/dm0, d/dm3, d/dm1,
    // d/dm4, d/dm2, d/dm5: (gx x, gy x, gx y, gy y, gx, gy).
    float correlation = 0, image_norm2 = 0, template_norm2 = 0;
    float ip0 = 0, ip1 = 0, ip2 = 0, ip3 = 0, ip4 = 0, ip5 = 0, tp0 = 0, tp1 = 0, tp2 = 0, tp3 = 0, tp4 = 0, tp5 = 0;
#pragma omp simd reduction(+ : correlation, image_norm2, template_norm2, ip0, ip1, ip2, ip3, ip4, ip5, tp0, tp1, \
                               tp2, tp3, tp4, tp5)
    for (std::size_t k = 0; k < kept; ++k) {
      const float i = image[k] - mean_i, t = templ[k] - mean_t;
      const float dxi = gx[k] * i, dyi = gy[k] * i, dxt = gx[k] * t, dyt = gy[k] * t;
      correlation += i * t;
      image_norm2 += i * i;
      template_norm2 += t * t;
      ip0 += dxi * xs[k];
      ip1 += dyi * xs[k];
      ip2 += dxi * ys[k];
      ip3 += dyi * ys[k];
      ip4 += dxi;
      ip5 += dyi;
      tp0 += dxt * xs[k];
      tp1 += dyt * xs[k];
      tp2 += dxt * ys[k];
      tp3 += dyt * ys[k];
      tp4 += dxt;
      tp5 += dyt;
    }
    // The Hessian J'J from moments: each entry is a sum of one gradient product (gx gx, gx gy,
    // gy gy) times one coordinate product (x x, x y, y y, x, y, 1).
    float moment[3][6];
    Moments(gx.data(), gx.data(), xs.data(), ys.data(), kept, moment[0]);
    Moments(gx.data(), gy.data(), xs.data(), ys.data(), kept, moment[1]);
    Moments(gy.data(), gy.data(), xs.data(), ys.data(), kept, moment[2]);
    // Parameter a: its gradient (0 gx, 1 gy) and its coordinate (0 x, 1 y, 2 none).
    static constexpr int kGradient[6] = {0, 1, 0, 1, 0, 1};
    static constexpr int kCoordinate[6] = {0, 0, 1, 1, 2, 2};
    // Coordinate products: [c_a][c_b] -> index into moment's second axis.
    static constexpr int kCoordinateProduct[3][3] = {{0, 1, 3}, {1, 2, 4}, {3, 4, 5}};
    double hessian[6][6];
    for (int a = 0; a < 6; ++a) {
      for (int b = 0; b < 6; ++b) {
        const int gradient_product = kGradient[a] + kGradient[b];  // 0 gx gx, 1 gx gy, 2 gy gy
        hessian[a][b] = moment[gradient_product][kCoordinateProduct[kCoordinate[a]][kCoordinate[b]]];
      }
    }
    const double image_projection[6] = {ip0, ip1, ip2, ip3, ip4, ip5};
    const double template_projection[6] = {tp0, tp1, tp2, tp3, tp4, tp5};
    last_rho = rho;
    rho = static_cast<double>(correlation) /
          (std::sqrt(static_cast<double>(image_norm2)) * std::sqrt(static_cast<double>(template_norm2)));
    if (!std::isfinite(rho)) return false;  // a flat image over the overlap
    double image_step[6];
    SolveSymmetric6(hessian, image_projection, image_step);
    double lambda_n = image_norm2, lambda_d = correlation;
    for (int a = 0; a < 6; ++a) {
      lambda_n -= image_projection[a] * image_step[a];
      lambda_d -= template_projection[a] * image_step[a];
    }
    if (lambda_d <= 0.0) return false;  // the step would minimise the correlation
    const double lambda = lambda_n / lambda_d;
    double error_projection[6], delta[6];
    for (int a = 0; a < 6; ++a) error_projection[a] = lambda * template_projection[a] - image_projection[a];
    SolveSymmetric6(hessian, error_projection, delta);
    m[0] += static_cast<float>(delta[0]);
    m[3] += static_cast<float>(delta[1]);
    m[1] += static_cast<float>(delta[2]);
    m[4] += static_cast<float>(delta[3]);
    m[2] += static_cast<float>(delta[4]);
    m[5] += static_cast<float>(delta[5]);
    // A step from a near-singular system can overflow: no warp to continue from or return.
    if (!std::all_of(m.begin(), m.end(), [](float v) { return std::isfinite(v); })) return false;
  }
  *rho_out = rho;
  return true;
}

namespace {

// WarpReplicate for a warp whose coordinates over the image stay well inside int's range: the
// floor as an integer, the clamps on ints, the row's products hoisted and the channel count known.
// Same arithmetic, in the same order, as the general loop below: the same floats.
template <int Channels>
void WarpReplicateInRange(const float* image, int n, const Affine& m, float* out) {
  for (int y = 0; y < n; ++y) {
    const float by = m[1] * static_cast<float>(y), dy = m[4] * static_cast<float>(y);
    float* pixel = out + static_cast<std::size_t>(y) * n * Channels;
    for (int x = 0; x < n; ++x, pixel += Channels) {
      const float px = m[0] * static_cast<float>(x) + by + m[2];
      const float py = m[3] * static_cast<float>(x) + dy + m[5];
      int ix = static_cast<int>(px), iy = static_cast<int>(py);
      ix -= px < static_cast<float>(ix) ? 1 : 0;  // truncation to the floor
      iy -= py < static_cast<float>(iy) ? 1 : 0;
      const float ax = px - static_cast<float>(ix), ay = py - static_cast<float>(iy);
      const int x0 = std::clamp(ix, 0, n - 1), x1 = std::clamp(ix + 1, 0, n - 1);
      const int y0 = std::clamp(iy, 0, n - 1), y1 = std::clamp(iy + 1, 0, n - 1);
      const float w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
      const float* p00 = image + (static_cast<std::size_t>(y0) * n + x0) * Channels;
      const float* p01 = image + (static_cast<std::size_t>(y0) * n + x1) * Channels;
      const float* p10 = image + (static_cast<std::size_t>(y1) * n + x0) * Channels;
      const float* p11 = image + (static_cast<std::size_t>(y1) * n + x1) * Channels;
      for (int c = 0; c < Channels; ++c) pixel[c] = w00 * p00[c] + w01 * p01[c] + w10 * p10[c] + w11 * p11[c];
    }
  }
}

}  // namespace

void WarpReplicate(const float* image, int side, int channels, const Affine& m, float* out) {
  const int n = side;
  // An affine map takes its extremes over the square at the corners: when those are finite and
  // within a million pixels, every coordinate is, and the integer floor is exact.
  bool in_range = true;
  for (const float cy : {0.0f, static_cast<float>(n - 1)}) {
    for (const float cx : {0.0f, static_cast<float>(n - 1)}) {
      for (const float v : {m[0] * cx + m[1] * cy + m[2], m[3] * cx + m[4] * cy + m[5]})
        in_range = in_range && std::isfinite(v) && std::fabs(v) < 1e6f;
    }
  }
  if (in_range && channels == 3) return WarpReplicateInRange<3>(image, n, m, out);
  if (in_range && channels == 1) return WarpReplicateInRange<1>(image, n, m, out);
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) {
      const float px = m[0] * static_cast<float>(x) + m[1] * static_cast<float>(y) + m[2];
      const float py = m[3] * static_cast<float>(x) + m[4] * static_cast<float>(y) + m[5];
      const float fx0 = std::floor(px), fy0 = std::floor(py);
      const float ax = std::isfinite(px) ? px - fx0 : 0.0f, ay = std::isfinite(py) ? py - fy0 : 0.0f;
      // Clamped after the floor, as a float (fmax and fmin take a NaN to the bound): a far-off or
      // undefined coordinate never becomes an out-of-range int.
      const float last = static_cast<float>(n - 1);
      auto clamp = [last](float v) { return static_cast<int>(std::fmin(std::fmax(v, 0.0f), last)); };
      const int x0 = clamp(fx0), x1 = clamp(fx0 + 1), y0 = clamp(fy0), y1 = clamp(fy0 + 1);
      const float w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
      float* pixel = out + (static_cast<std::size_t>(y) * n + x) * channels;
      for (int c = 0; c < channels; ++c) {
        auto at = [&](int xx, int yy) { return image[(static_cast<std::size_t>(yy) * n + xx) * channels + c]; };
        pixel[c] = w00 * at(x0, y0) + w01 * at(x1, y0) + w10 * at(x0, y1) + w11 * at(x1, y1);
      }
    }
  }
}

void CoveredEroded(int side, const Affine& m, std::uint8_t* out) {
  const int n = side;
  std::vector<std::uint8_t> covered(static_cast<std::size_t>(n) * n), across(covered.size());
  for (int y = 0; y < n; ++y) {
    const float row_x = m[1] * static_cast<float>(y) + m[2], row_y = m[4] * static_cast<float>(y) + m[5];
    for (int x = 0; x < n; ++x) {
      const float px = m[0] * static_cast<float>(x) + row_x, py = m[3] * static_cast<float>(x) + row_y;
      covered[static_cast<std::size_t>(y) * n + x] =
          (px >= -0.5f && px < static_cast<float>(n) - 0.5f && py >= -0.5f && py < static_cast<float>(n) - 0.5f) ? 1
                                                                                                                 : 0;
    }
  }
  // The 3x3 erosion as a minimum along x, then along y; outside the image does not erode.
  for (int y = 0; y < n; ++y) {
    const std::uint8_t* row = &covered[static_cast<std::size_t>(y) * n];
    for (int x = 0; x < n; ++x)
      across[static_cast<std::size_t>(y) * n + x] =
          std::min({row[std::max(0, x - 1)], row[x], row[std::min(n - 1, x + 1)]});
  }
  for (int y = 0; y < n; ++y) {
    const std::uint8_t* above = &across[static_cast<std::size_t>(std::max(0, y - 1)) * n];
    const std::uint8_t* here = &across[static_cast<std::size_t>(y) * n];
    const std::uint8_t* below = &across[static_cast<std::size_t>(std::min(n - 1, y + 1)) * n];
    for (int x = 0; x < n; ++x) out[static_cast<std::size_t>(y) * n + x] = std::min({above[x], here[x], below[x]});
  }
}

std::vector<float> HalveImage(const float* image, int side, int channels) {
  LB_CHECK(side % 2 == 0, "HalveImage: an even side");
  const int half = side / 2;
  std::vector<float> out(static_cast<std::size_t>(half) * half * channels);
  for (int y = 0; y < half; ++y) {
    for (int x = 0; x < half; ++x) {
      for (int c = 0; c < channels; ++c) {
        auto at = [&](int xx, int yy) { return image[(static_cast<std::size_t>(yy) * side + xx) * channels + c]; };
        out[(static_cast<std::size_t>(y) * half + x) * channels + c] =
            0.25f * (at(2 * x, 2 * y) + at(2 * x + 1, 2 * y) + at(2 * x, 2 * y + 1) + at(2 * x + 1, 2 * y + 1));
      }
    }
  }
  return out;
}

}  // namespace lookbook::image_internal
