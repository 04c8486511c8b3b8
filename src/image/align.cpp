#include "image/align.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "image/cv_view.h"
#include "image/ecc.h"
#include "util/error.h"

namespace lookbook {
namespace {

constexpr int kSide = AlignView::kSide;
// A pixel is foreground when one of its channels differs from the border colour by this much.
constexpr float kForeground = 0.06f;
// Starts of the ECC search: the identity, then a zoom in and out by a 15% crop's factor.
constexpr float kStartScales[] = {1.0f, 1.0f / 0.85f, 0.85f};
// An ECC result above this is taken without trying the other starts.
constexpr double kGoodEnough = 0.95;
// A half-size aligned correlation from which a pair looks like a copy, for the extra checks only
// (the gain model, the box map; the demo's copies scored 0.942 and above, its look-alikes a
// median of 0.81: a copy between 0.942 and 0.95 keeps the offset-only hue check at half size, as
// before these checks existed).
constexpr float kHalfLooksLikeCopy = 0.95f;
constexpr int kMinPixels = 32;
// A copy keeps the garment's colour: over the foreground, the mean colour may move by at most
// kMaxBrightnessShift in grey level (a brightened copy moves by 0.14) and by kMaxHueShift
// across channels (copies of the train-split demo catalogs: at most 0.005; a colour variant as
// close as black to grey or brown to maroon moves more in one or the other). A brighter copy
// may be brightened by a gain instead of an offset (real photos relisted 8-20% brighter move
// each channel in proportion, up to 0.04 across channels): the hue shift is the smaller of the
// channels' spread around a common offset and around a common gain (within kMaxGain) and
// offset, which a change of colour fits neither (brown to maroon: 0.15).
constexpr double kMaxBrightnessShift = 0.2;
constexpr double kMaxHueShift = 0.03;
constexpr double kMaxGain = 1.3;
// ECC stops after kIterations or when the correlation moves by less than kEpsilon. A copy
// converges in a few iterations; other pairs use them all (50 instead of 100 halves their cost
// and moved no pair of the train-split demo catalogs across the rule).
constexpr int kIterations = 50;

constexpr double kEpsilon = 1e-4;

// The background colour: the per-channel median of the outermost pixel ring.
cv::Vec3f BorderColour(const cv::Mat& rgb) {
  return image_internal::ChannelMedian(image_internal::Ring<cv::Vec3f>(rgb));
}

bool Foreground(const cv::Vec3f& pixel, const cv::Vec3f& background) {
  for (int c = 0; c < 3; ++c) {
    if (std::fabs(pixel[c] - background[c]) > kForeground) return true;
  }
  return false;
}

}  // namespace

std::vector<std::uint8_t> MakeAlignThumb(const RgbImage& image) {
  LB_CHECK(image.width > 0 && image.height > 0 &&
               image.rgb.size() == static_cast<std::size_t>(image.width) * image.height * 3,
           "MakeAlignThumb: empty or inconsistent image");
  cv::Mat small;
  cv::resize(image_internal::View(image), small, {kSide, kSide}, 0, 0, cv::INTER_AREA);
  LB_CHECK(small.isContinuous() && small.total() * small.elemSize() == kAlignThumbBytes, "MakeAlignThumb: shape");
  return std::vector<std::uint8_t>(small.data, small.data + kAlignThumbBytes);
}

AlignView ViewFromThumb(const std::uint8_t* thumb) {
  const cv::Mat small(kSide, kSide, CV_8UC3, const_cast<std::uint8_t*>(thumb));
  cv::Mat rgb, grey;
  small.convertTo(rgb, CV_32FC3, 1.0 / 255.0);
  cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
  AlignView view;
  view.rgb.assign(rgb.ptr<float>(), rgb.ptr<float>() + static_cast<std::size_t>(kSide) * kSide * 3);
  view.grey.assign(grey.ptr<float>(), grey.ptr<float>() + static_cast<std::size_t>(kSide) * kSide);
  return view;
}

AlignView MakeAlignView(const RgbImage& image) { return ViewFromThumb(MakeAlignThumb(image).data()); }

ThumbStats DescribeThumb(const std::uint8_t* thumb) {
  const cv::Mat small(kSide, kSide, CV_8UC3, const_cast<std::uint8_t*>(thumb));
  cv::Mat rgb;
  small.convertTo(rgb, CV_32FC3, 1.0 / 255.0);
  const cv::Vec3f background = BorderColour(rgb);
  ThumbStats stats;
  int x0 = kSide, y0 = kSide, x1 = 0, y1 = 0;
  for (int y = 0; y < kSide; ++y) {
    for (int x = 0; x < kSide; ++x) {
      if (!Foreground(rgb.at<cv::Vec3f>(y, x), background)) continue;
      x0 = std::min(x0, x);
      y0 = std::min(y0, y);
      x1 = std::max(x1, x + 1);
      y1 = std::max(y1, y + 1);
    }
  }
  const bool empty = x1 <= x0 || y1 <= y0;
  if (!empty)
    stats.box = {static_cast<std::int16_t>(x0), static_cast<std::int16_t>(y0), static_cast<std::int16_t>(x1),
                 static_cast<std::int16_t>(y1)};
  double sum[3] = {0, 0, 0}, squares[3] = {0, 0, 0};
  std::int64_t n = 0;
  for (int y = stats.box[1]; y < stats.box[3]; ++y) {
    for (int x = stats.box[0]; x < stats.box[2]; ++x) {
      const cv::Vec3f& p = rgb.at<cv::Vec3f>(y, x);
      if (!empty && !Foreground(p, background)) continue;
      for (int c = 0; c < 3; ++c) {
        sum[c] += p[c];
        squares[c] += static_cast<double>(p[c]) * p[c];
      }
      ++n;
    }
  }
  for (int c = 0; c < 3; ++c) {
    const double mean = sum[c] / static_cast<double>(n);
    stats.colour[c] = static_cast<float>(mean);
    stats.colour[3 + c] =
        static_cast<float>(std::sqrt(std::max(0.0, squares[c] / static_cast<double>(n) - mean * mean)));
  }
  return stats;
}

float NonWhiteShare(const std::uint8_t* thumb) {
  constexpr int kPixels = kSide * kSide;
  int content = 0;
  for (int i = 0; i < kPixels; ++i) {
    const std::uint8_t* p = thumb + 3 * i;
    content += (p[0] < kNearWhite || p[1] < kNearWhite || p[2] < kNearWhite) ? 1 : 0;
  }
  return static_cast<float>(content) / static_cast<float>(kPixels);
}

ColourShift CompareColour(const ThumbStats& a, const ThumbStats& b) {
  double shift[3];
  for (int c = 0; c < 3; ++c) shift[c] = static_cast<double>(b.colour[c]) - a.colour[c];
  const double brightness = (shift[0] + shift[1] + shift[2]) / 3.0;
  double hue = 0;
  for (const double channel : shift) hue += (channel - brightness) * (channel - brightness);
  return {static_cast<float>(std::fabs(brightness)), static_cast<float>(std::sqrt(hue))};
}

namespace {

// The content box of a thumbnail in grey, shrunk to kCoarseSide square.
cv::Mat CoarseBox(const std::uint8_t* thumb, const ThumbStats& stats) {
  const cv::Mat small(kSide, kSide, CV_8UC3, const_cast<std::uint8_t*>(thumb));
  const cv::Rect box(stats.box[0], stats.box[1], stats.box[2] - stats.box[0], stats.box[3] - stats.box[1]);
  LB_CHECK(box.width > 0 && box.height > 0 && box.x >= 0 && box.y >= 0 && box.x + box.width <= kSide &&
               box.y + box.height <= kSide,
           "CoarseCorrelation: a content box outside the thumbnail");
  cv::Mat grey, coarse;
  cv::cvtColor(small(box), grey, cv::COLOR_RGB2GRAY);
  cv::resize(grey, coarse, {kCoarseSide, kCoarseSide}, 0, 0, cv::INTER_AREA);
  coarse.convertTo(coarse, CV_32F);
  return coarse;
}

}  // namespace

float CoarseCorrelation(const std::uint8_t* thumb_a, const ThumbStats& a, const std::uint8_t* thumb_b,
                        const ThumbStats& b) {
  const cv::Mat x = CoarseBox(thumb_a, a), y = CoarseBox(thumb_b, b);
  const double n = static_cast<double>(kCoarseSide) * kCoarseSide;
  const double mean_x = cv::sum(x)[0] / n, mean_y = cv::sum(y)[0] / n;
  const double cov = x.dot(y) / n - mean_x * mean_y;
  const double var_x = x.dot(x) / n - mean_x * mean_x, var_y = y.dot(y) / n - mean_y * mean_y;
  if (var_x <= 1e-6 || var_y <= 1e-6) return (var_x <= 1e-6 && var_y <= 1e-6) ? 1.0f : 0.0f;  // flat boxes
  return static_cast<float>(std::clamp(cov / std::sqrt(var_x * var_y), -1.0, 1.0));
}

namespace {

using image_internal::Affine;
using image_internal::EccAligner;

// The best ECC warp of b onto a from the given starts (*found false when none converges); *best
// its correlation. Stops at the first start whose correlation is kGoodEnough.
Affine SearchFrom(const EccAligner& ecc, const std::vector<Affine>& starts, int iterations, double* best, bool* found) {
  *best = -2;
  *found = false;
  Affine best_warp = image_internal::kIdentity;
  for (const Affine& start : starts) {
    Affine warp = start;
    double score = -2;
    if (!ecc.Align(&warp, iterations, kEpsilon, &score)) continue;  // no convergence from this start
    if (std::isfinite(score) && score > *best) {
      *best = score;
      best_warp = warp;
      *found = true;
    }
    if (*best >= kGoodEnough) break;
  }
  return best_warp;
}

// The identity, then a zoom in and out (a crop or an added border of about 15%).
std::vector<Affine> ZoomStarts(int side) {
  std::vector<Affine> starts;
  for (const float scale : kStartScales) starts.push_back(image_internal::ZoomAbout(side, scale));
  return starts;
}

// The aligned correlation of b onto a under `warp` (image/align.h): side x side RGB, interleaved.
float ScoreWarp(const float* rgb_a, const float* rgb_b, int side, const Affine& warp);

void CheckViews(const AlignView& a, const AlignView& b, const char* what) {
  LB_CHECK(a.grey.size() == static_cast<std::size_t>(kSide) * kSide && b.grey.size() == a.grey.size() &&
               a.rgb.size() == 3 * a.grey.size() && b.rgb.size() == a.rgb.size(),
           std::string(what) + ": views not made by MakeAlignView");
}

}  // namespace

float AlignedCorrelation(const AlignView& a, const AlignView& b) {
  CheckViews(a, b, "AlignedCorrelation");
  const EccAligner ecc(a.grey.data(), b.grey.data(), kSide, 5);
  double best = -2;
  bool found = false;
  const Affine warp = SearchFrom(ecc, ZoomStarts(kSide), kIterations, &best, &found);
  if (!found) return -1.0f;
  return ScoreWarp(a.rgb.data(), b.rgb.data(), kSide, warp);
}

namespace image_internal {

std::vector<std::array<float, 6>> HalfSizeStarts(const AlignSearch& search, const ThumbStats* box_a,
                                                 const ThumbStats* box_b, std::size_t* box_starts) {
  constexpr int kHalf = kSide / 2;
  std::vector<Affine> starts;
  if (box_a != nullptr && box_b != nullptr) {
    const auto& p = box_a->box;
    const auto& q = box_b->box;
    const float sx = static_cast<float>(q[2] - q[0]) / static_cast<float>(std::max(1, p[2] - p[0]));
    const float sy = static_cast<float>(q[3] - q[1]) / static_cast<float>(std::max(1, p[3] - p[1]));
    const float tx = (q[0] - sx * p[0]) / 2.0f, ty = (q[1] - sy * p[1]) / 2.0f;  // in half-size pixels
    if (std::fabs(sx - 1) > 0.02f || std::fabs(sy - 1) > 0.02f || std::fabs(tx) > 0.5f || std::fabs(ty) > 0.5f) {
      starts.push_back({sx, 0, tx, 0, sy, ty});
    }
  }
  *box_starts = starts.size();
  for (const float scale : kStartScales) {
    if (scale != 1.0f && (!search.zoom_starts || *box_starts > 0)) continue;
    starts.push_back(ZoomAbout(kHalf, scale));
  }
  return starts;
}

}  // namespace image_internal

AlignResult AlignCoarseToFine(const AlignView& a, const AlignView& b, const AlignSearch& search,
                              const ThumbStats* box_a, const ThumbStats* box_b) {
  CheckViews(a, b, "AlignCoarseToFine");
  constexpr int kHalf = kSide / 2;
  const std::vector<float> half_a = image_internal::HalveImage(a.grey.data(), kSide, 1);
  const std::vector<float> half_b = image_internal::HalveImage(b.grey.data(), kSide, 1);
  AlignResult out;
  std::size_t box_starts = 0;
  const std::vector<Affine> starts = image_internal::HalfSizeStarts(search, box_a, box_b, &box_starts);
  double best = -2;
  bool found = false;
  Affine warp =
      SearchFrom(EccAligner(half_a.data(), half_b.data(), kHalf, 3), starts, search.half_iterations, &best, &found);
  out.half_score = static_cast<float>(std::max(best, -1.0));
  // The starts scored as they are, when the search found nothing or nothing that looks like a copy
  // at half size: on a textured real photo the ECC search can drift off from a right start (a
  // border's content-box map, exact to a pixel; the identity for a downscaled or re-encoded copy
  // on wood: 0.50 after the search), while the start itself already lines the two up. A start
  // replaces the search's warp when it looks like a copy and scores higher (a look-alike's start
  // rarely does: it goes no further than it did).
  std::vector<float> half_rgb_a, half_rgb_b;
  float half_colour = -2.0f;
  if (search.min_half_colour > -2 || box_starts > 0) {
    half_rgb_a = image_internal::HalveImage(a.rgb.data(), kSide, 3);
    half_rgb_b = image_internal::HalveImage(b.rgb.data(), kSide, 3);
    if (found && search.min_half_colour > -2)
      half_colour = ScoreWarp(half_rgb_a.data(), half_rgb_b.data(), kHalf, warp);
    const bool rescue = !found || (search.min_half_colour > -2 && half_colour < kHalfLooksLikeCopy);
    for (std::size_t i = 0; rescue && i < starts.size(); ++i) {
      const float colour = ScoreWarp(half_rgb_a.data(), half_rgb_b.data(), kHalf, starts[i]);
      if (colour >= kHalfLooksLikeCopy && colour > half_colour) {
        half_colour = colour;
        warp = starts[i];
        found = true;
      }
    }
  }
  if (!found) {  // no convergence at half size (rare, real photos): the full-size search decides
    out.aligned = AlignedCorrelation(a, b);
    out.aligned_full = true;
    return out;
  }
  if (search.min_half_colour > -2) {
    out.half_colour = half_colour;
    if (out.half_colour < search.min_half_colour) return out;  // aligned -1: not copies at half size
  }
  // The half-size warp at full size: pixel centres x64 = 2 x32 + 0.5.
  for (const int r : {0, 3}) warp[r + 2] = 2 * warp[r + 2] + 0.5f * (1 - warp[r] - warp[r + 1]);
  Affine refined = warp;
  double refined_score = -2;
  if (EccAligner(a.grey.data(), b.grey.data(), kSide, 5)
          .Align(&refined, search.refine_iterations, kEpsilon, &refined_score)) {
    out.aligned = ScoreWarp(a.rgb.data(), b.rgb.data(), kSide, refined);
    // On real photos the refinement can drift from a half-size warp that was right (a framed
    // copy: 0.997 at half size, 0.83 after refining): when the half size looked like a copy,
    // the half-size warp is scored at full size too and the better counts.
    if (half_colour >= kHalfLooksLikeCopy && out.aligned < half_colour) {
      out.aligned = std::max(out.aligned, ScoreWarp(a.rgb.data(), b.rgb.data(), kSide, warp));
    }
  } else {
    out.aligned = ScoreWarp(a.rgb.data(), b.rgb.data(), kSide, warp);  // the half-size warp stands
  }
  out.aligned_full = true;
  return out;
}

namespace {

// How unevenly the mean colour moved across the channels (see kMaxHueShift): sum_a and shift are
// per-channel sums over n pixels of a and of b - a.
double HueShift(const double* sum_a, const double* shift, std::int64_t n, bool gain_too) {
  double a[3], b[3];
  for (int c = 0; c < 3; ++c) {
    a[c] = sum_a[c] / static_cast<double>(n);
    b[c] = a[c] + shift[c] / static_cast<double>(n);
  }
  // The spread of the residual b - gain * a around its mean, for the gain of a common offset (1)
  // and the least-squares gain through the origin, kept within [1 / kMaxGain, kMaxGain].
  const auto spread = [&](double gain) {
    double r[3], mean = 0;
    for (int c = 0; c < 3; ++c) mean += (r[c] = b[c] - gain * a[c]) / 3.0;
    double sum = 0;
    for (const double v : r) sum += (v - mean) * (v - mean);
    return std::sqrt(sum);
  };
  const double aa = a[0] * a[0] + a[1] * a[1] + a[2] * a[2];
  const double gain =
      aa > 1e-12 ? std::clamp((a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / aa, 1.0 / kMaxGain, kMaxGain) : 1.0;
  return gain_too ? std::min(spread(1.0), spread(gain)) : spread(1.0);
}

float ScoreWarp(const float* rgb_a, const float* rgb_b, int side, const Affine& warp) {
  // b resampled onto a's pixels, and which of a's pixels b covers (one pixel in from the edge).
  const std::size_t pixels = static_cast<std::size_t>(side) * side;
  std::vector<float> warped(pixels * 3);
  std::vector<std::uint8_t> covered(pixels);
  image_internal::WarpReplicate(rgb_b, side, 3, warp, warped.data());
  image_internal::CoveredEroded(side, warp, covered.data());
  const cv::Vec3f background_a = BorderColour(cv::Mat(side, side, CV_32FC3, const_cast<float*>(rgb_a)));
  const cv::Vec3f background_b = BorderColour(cv::Mat(side, side, CV_32FC3, warped.data()));

  double sum_x = 0, sum_y = 0, sum_xx = 0, sum_yy = 0, sum_xy = 0;
  double shift[3] = {0, 0, 0};    // per channel: sum of b - a
  double channel[3] = {0, 0, 0};  // per channel: sum of a
  std::int64_t n = 0;
  for (std::size_t i = 0; i < pixels; ++i) {
    if (!covered[i]) continue;
    const cv::Vec3f p(rgb_a[3 * i], rgb_a[3 * i + 1], rgb_a[3 * i + 2]);
    const cv::Vec3f q(warped[3 * i], warped[3 * i + 1], warped[3 * i + 2]);
    if (!Foreground(p, background_a) && !Foreground(q, background_b)) continue;
    for (int c = 0; c < 3; ++c) {
      sum_x += p[c];
      sum_y += q[c];
      sum_xx += static_cast<double>(p[c]) * p[c];
      sum_yy += static_cast<double>(q[c]) * q[c];
      sum_xy += static_cast<double>(p[c]) * q[c];
      shift[c] += static_cast<double>(q[c]) - p[c];
      channel[c] += p[c];
    }
    ++n;
  }
  if (n < kMinPixels * side * side / (kSide * kSide)) return -1.0f;
  const double count = 3.0 * static_cast<double>(n);
  const double cov = sum_xy - sum_x * sum_y / count;
  const double var_x = sum_xx - sum_x * sum_x / count, var_y = sum_yy - sum_y * sum_y / count;
  if (var_x <= 1e-12 || var_y <= 1e-12) return -1.0f;
  const double correlation = std::clamp(cov / std::sqrt(var_x * var_y), -1.0, 1.0);
  // The gain model of the hue check at full size, and at half size only for a pair that looks
  // like a copy there: a look-alike garment of the same colour often fits a gain too, and would
  // go on to the full-size alignment for nothing (+16% verification time on the demo).
  const bool gain_too = side == kSide || correlation >= kHalfLooksLikeCopy;
  const double brightness = (shift[0] + shift[1] + shift[2]) / (3.0 * static_cast<double>(n));
  if (std::fabs(brightness) > kMaxBrightnessShift || HueShift(channel, shift, n, gain_too) > kMaxHueShift) return -1.0f;
  return static_cast<float>(correlation);
}

}  // namespace

}  // namespace lookbook
