#include "image/align.h"

#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include <algorithm>
#include <cmath>

#include "image/cv_view.h"
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
constexpr int kMinPixels = 32;
// A copy keeps the garment's colour: over the foreground, the mean colour may move by at most
// kMaxBrightnessShift in grey level (a brightened copy moves by 0.14) and by kMaxHueShift
// across channels (copies of the train-split demo catalogs: at most 0.005; a colour variant as
// close as black to grey or brown to maroon moves more in one or the other).
constexpr double kMaxBrightnessShift = 0.2;
constexpr double kMaxHueShift = 0.03;
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

// The best ECC warp of b onto a from the start scales, or an empty matrix; *best its correlation.
// The best ECC warp of b onto a from the given starts, or an empty matrix; *best its correlation.
cv::Mat SearchFrom(const cv::Mat& grey_a, const cv::Mat& grey_b, const std::vector<cv::Mat>& starts, int iterations,
                   double* best) {
  const int side = grey_a.cols;
  *best = -2;
  cv::Mat best_warp;
  for (const cv::Mat& start : starts) {
    cv::Mat warp = start.clone();
    double score = -2;
    try {
      score =
          cv::findTransformECC(grey_a, grey_b, warp, cv::MOTION_AFFINE,
                               cv::TermCriteria(cv::TermCriteria::COUNT | cv::TermCriteria::EPS, iterations, kEpsilon),
                               cv::noArray(), side >= kSide ? 5 : 3);
    } catch (const cv::Exception&) {
      continue;  // no convergence from this start (e.g. a flat image)
    }
    if (std::isfinite(score) && score > *best) {
      *best = score;
      best_warp = warp;
    }
    if (*best >= kGoodEnough) break;
  }
  return best_warp;
}

// A zoom about the centre of a side x side image.
cv::Mat Zoom(int side, float scale) {
  const float centre = (side - 1) / 2.0f;
  return (cv::Mat_<float>(2, 3) << scale, 0, centre * (1 - scale), 0, scale, centre * (1 - scale));
}

// The identity, then a zoom in and out (a crop or an added border of about 15%).
cv::Mat SearchWarp(const cv::Mat& grey_a, const cv::Mat& grey_b, int iterations, double* best) {
  std::vector<cv::Mat> starts;
  for (const float scale : kStartScales) starts.push_back(Zoom(grey_a.cols, scale));
  return SearchFrom(grey_a, grey_b, starts, iterations, best);
}

// The aligned correlation of b onto a under `warp` (image/align.h).
float ScoreWarp(const cv::Mat& rgb_a, const cv::Mat& rgb_b, const cv::Mat& best_warp);

// The two views as OpenCV matrices (no copy).
struct ViewMats {
  cv::Mat grey_a, grey_b, rgb_a, rgb_b;
  ViewMats(const AlignView& a, const AlignView& b, const char* what) {
    LB_CHECK(a.grey.size() == static_cast<std::size_t>(kSide) * kSide && b.grey.size() == a.grey.size() &&
                 a.rgb.size() == 3 * a.grey.size() && b.rgb.size() == a.rgb.size(),
             std::string(what) + ": views not made by MakeAlignView");
    grey_a = cv::Mat(kSide, kSide, CV_32F, const_cast<float*>(a.grey.data()));
    grey_b = cv::Mat(kSide, kSide, CV_32F, const_cast<float*>(b.grey.data()));
    rgb_a = cv::Mat(kSide, kSide, CV_32FC3, const_cast<float*>(a.rgb.data()));
    rgb_b = cv::Mat(kSide, kSide, CV_32FC3, const_cast<float*>(b.rgb.data()));
  }
};

}  // namespace

float AlignedCorrelation(const AlignView& a, const AlignView& b) {
  const ViewMats m(a, b, "AlignedCorrelation");
  const cv::Mat &grey_a = m.grey_a, &grey_b = m.grey_b, &rgb_a = m.rgb_a, &rgb_b = m.rgb_b;
  double best = -2;
  const cv::Mat warp = SearchWarp(grey_a, grey_b, kIterations, &best);
  if (warp.empty()) return -1.0f;
  return ScoreWarp(rgb_a, rgb_b, warp);
}

AlignResult AlignCoarseToFine(const AlignView& a, const AlignView& b, const AlignSearch& search,
                              const ThumbStats* box_a, const ThumbStats* box_b) {
  const ViewMats m(a, b, "AlignCoarseToFine");
  const cv::Mat &grey_a = m.grey_a, &grey_b = m.grey_b, &rgb_a = m.rgb_a, &rgb_b = m.rgb_b;
  constexpr int kHalf = kSide / 2;
  cv::Mat half_a, half_b;
  cv::resize(grey_a, half_a, {kHalf, kHalf}, 0, 0, cv::INTER_AREA);
  cv::resize(grey_b, half_b, {kHalf, kHalf}, 0, 0, cv::INTER_AREA);
  AlignResult out;
  double best = -2;
  // Starts: the map of a's content box onto b's when it is not the identity (a crop or a border
  // on a plain background), then the identity; without boxes (or when they agree) the identity and
  // the zooms.
  std::vector<cv::Mat> starts;
  if (box_a != nullptr && box_b != nullptr) {
    const auto& p = box_a->box;
    const auto& q = box_b->box;
    const float sx = static_cast<float>(q[2] - q[0]) / static_cast<float>(std::max(1, p[2] - p[0]));
    const float sy = static_cast<float>(q[3] - q[1]) / static_cast<float>(std::max(1, p[3] - p[1]));
    const float tx = (q[0] - sx * p[0]) / 2.0f, ty = (q[1] - sy * p[1]) / 2.0f;  // in half-size pixels
    if (std::fabs(sx - 1) > 0.02f || std::fabs(sy - 1) > 0.02f || std::fabs(tx) > 0.5f || std::fabs(ty) > 0.5f) {
      starts.push_back((cv::Mat_<float>(2, 3) << sx, 0, tx, 0, sy, ty));
    }
  }
  for (const float scale : kStartScales) {
    if (scale != 1.0f && (!search.zoom_starts || !starts.empty())) continue;
    starts.push_back(Zoom(kHalf, scale));
  }
  cv::Mat warp = SearchFrom(half_a, half_b, starts, search.half_iterations, &best);
  out.half_score = static_cast<float>(std::max(best, -1.0));
  if (warp.empty()) {  // no convergence at half size (rare, real photos): the full-size search decides
    out.aligned = AlignedCorrelation(a, b);
    out.aligned_full = true;
    return out;
  }
  if (search.min_half_colour > -2) {
    cv::Mat half_rgb_a, half_rgb_b;
    cv::resize(rgb_a, half_rgb_a, {kHalf, kHalf}, 0, 0, cv::INTER_AREA);
    cv::resize(rgb_b, half_rgb_b, {kHalf, kHalf}, 0, 0, cv::INTER_AREA);
    out.half_colour = ScoreWarp(half_rgb_a, half_rgb_b, warp);
    if (out.half_colour < search.min_half_colour) return out;  // aligned -1: not copies at half size
  }
  // The half-size warp at full size: pixel centres x64 = 2 x32 + 0.5.
  for (int r = 0; r < 2; ++r) {
    warp.at<float>(r, 2) = 2 * warp.at<float>(r, 2) + 0.5f * (1 - warp.at<float>(r, 0) - warp.at<float>(r, 1));
  }
  try {
    cv::findTransformECC(
        grey_a, grey_b, warp, cv::MOTION_AFFINE,
        cv::TermCriteria(cv::TermCriteria::COUNT | cv::TermCriteria::EPS, search.refine_iterations, kEpsilon),
        cv::noArray(), 5);
  } catch (const cv::Exception&) {
    // the half-size warp stands
  }
  out.aligned = ScoreWarp(rgb_a, rgb_b, warp);
  out.aligned_full = true;
  return out;
}

namespace {

float ScoreWarp(const cv::Mat& rgb_a, const cv::Mat& rgb_b, const cv::Mat& best_warp) {
  const int side = rgb_a.cols;
  // b resampled onto a's pixels, and which of a's pixels b covers (one pixel in from the edge).
  cv::Mat warped, covered;
  cv::warpAffine(rgb_b, warped, best_warp, {side, side}, cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REPLICATE);
  cv::warpAffine(cv::Mat::ones(side, side, CV_8U), covered, best_warp, {side, side},
                 cv::INTER_NEAREST | cv::WARP_INVERSE_MAP, cv::BORDER_CONSTANT, 0);
  cv::erode(covered, covered, cv::Mat::ones(3, 3, CV_8U));
  const cv::Vec3f background_a = BorderColour(rgb_a), background_b = BorderColour(warped);

  double sum_x = 0, sum_y = 0, sum_xx = 0, sum_yy = 0, sum_xy = 0;
  double shift[3] = {0, 0, 0};  // per channel: sum of b - a
  std::int64_t n = 0;
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      if (!covered.at<std::uint8_t>(y, x)) continue;
      const cv::Vec3f& p = rgb_a.at<cv::Vec3f>(y, x);
      const cv::Vec3f& q = warped.at<cv::Vec3f>(y, x);
      if (!Foreground(p, background_a) && !Foreground(q, background_b)) continue;
      for (int c = 0; c < 3; ++c) {
        sum_x += p[c];
        sum_y += q[c];
        sum_xx += static_cast<double>(p[c]) * p[c];
        sum_yy += static_cast<double>(q[c]) * q[c];
        sum_xy += static_cast<double>(p[c]) * q[c];
        shift[c] += static_cast<double>(q[c]) - p[c];
      }
      ++n;
    }
  }
  if (n < kMinPixels * side * side / (kSide * kSide)) return -1.0f;
  const double brightness = (shift[0] + shift[1] + shift[2]) / (3.0 * static_cast<double>(n));
  double hue = 0;
  for (const double channel : shift) hue += std::pow(channel / static_cast<double>(n) - brightness, 2);
  if (std::fabs(brightness) > kMaxBrightnessShift || std::sqrt(hue) > kMaxHueShift) return -1.0f;
  const double count = 3.0 * static_cast<double>(n);
  const double cov = sum_xy - sum_x * sum_y / count;
  const double var_x = sum_xx - sum_x * sum_x / count, var_y = sum_yy - sum_y * sum_y / count;
  if (var_x <= 1e-12 || var_y <= 1e-12) return -1.0f;
  return static_cast<float>(std::clamp(cov / std::sqrt(var_x * var_y), -1.0, 1.0));
}

}  // namespace

}  // namespace lookbook
