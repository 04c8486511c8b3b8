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

AlignView MakeAlignView(const RgbImage& image) {
  LB_CHECK(image.width > 0 && image.height > 0 &&
               image.rgb.size() == static_cast<std::size_t>(image.width) * image.height * 3,
           "MakeAlignView: empty or inconsistent image");
  cv::Mat small, rgb, grey;
  cv::resize(image_internal::View(image), small, {kSide, kSide}, 0, 0, cv::INTER_AREA);
  small.convertTo(rgb, CV_32FC3, 1.0 / 255.0);
  cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
  AlignView view;
  view.rgb.assign(rgb.ptr<float>(), rgb.ptr<float>() + static_cast<std::size_t>(kSide) * kSide * 3);
  view.grey.assign(grey.ptr<float>(), grey.ptr<float>() + static_cast<std::size_t>(kSide) * kSide);
  return view;
}

float AlignedCorrelation(const AlignView& a, const AlignView& b) {
  LB_CHECK(a.grey.size() == static_cast<std::size_t>(kSide) * kSide && b.grey.size() == a.grey.size() &&
               a.rgb.size() == 3 * a.grey.size() && b.rgb.size() == a.rgb.size(),
           "AlignedCorrelation: views not made by MakeAlignView");
  const cv::Mat grey_a(kSide, kSide, CV_32F, const_cast<float*>(a.grey.data()));
  const cv::Mat grey_b(kSide, kSide, CV_32F, const_cast<float*>(b.grey.data()));
  const cv::Mat rgb_a(kSide, kSide, CV_32FC3, const_cast<float*>(a.rgb.data()));
  const cv::Mat rgb_b(kSide, kSide, CV_32FC3, const_cast<float*>(b.rgb.data()));

  const float centre = (kSide - 1) / 2.0f;
  double best = -2;
  cv::Mat best_warp;
  for (const float scale : kStartScales) {
    cv::Mat warp = (cv::Mat_<float>(2, 3) << scale, 0, centre * (1 - scale), 0, scale, centre * (1 - scale));
    double score = -2;
    try {
      score = cv::findTransformECC(
          grey_a, grey_b, warp, cv::MOTION_AFFINE,
          cv::TermCriteria(cv::TermCriteria::COUNT | cv::TermCriteria::EPS, kIterations, kEpsilon), cv::noArray(), 5);
    } catch (const cv::Exception&) {
      continue;  // no convergence from this start (e.g. a flat image)
    }
    if (std::isfinite(score) && score > best) {
      best = score;
      best_warp = warp;
    }
    if (best >= kGoodEnough) break;
  }
  if (best_warp.empty()) return -1.0f;

  // b resampled onto a's pixels, and which of a's pixels b covers (one pixel in from the edge).
  cv::Mat warped, covered;
  cv::warpAffine(rgb_b, warped, best_warp, {kSide, kSide}, cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                 cv::BORDER_REPLICATE);
  cv::warpAffine(cv::Mat::ones(kSide, kSide, CV_8U), covered, best_warp, {kSide, kSide},
                 cv::INTER_NEAREST | cv::WARP_INVERSE_MAP, cv::BORDER_CONSTANT, 0);
  cv::erode(covered, covered, cv::Mat::ones(3, 3, CV_8U));
  const cv::Vec3f background_a = BorderColour(rgb_a), background_b = BorderColour(warped);

  double sum_x = 0, sum_y = 0, sum_xx = 0, sum_yy = 0, sum_xy = 0;
  double shift[3] = {0, 0, 0};  // per channel: sum of b - a
  std::int64_t n = 0;
  for (int y = 0; y < kSide; ++y) {
    for (int x = 0; x < kSide; ++x) {
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
  if (n < kMinPixels) return -1.0f;
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

}  // namespace lookbook
