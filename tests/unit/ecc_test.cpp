// The hand-written ECC (src/image/ecc.h) against OpenCV's findTransformECC and warpAffine, which
// it replaces in dedup's verification: same warps, same correlations, same failures.
#include "image/ecc.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace lookbook::image_internal {
namespace {

// A textured random picture: Gaussian blobs of random size, place and sign on grey. (A few
// large blobs leave the affine fit ill-conditioned: ECC then oscillates in OpenCV and here alike.)
cv::Mat Blobs(int side, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(0, 1);
  cv::Mat image(side, side, CV_32F, cv::Scalar(0.5));
  for (int k = 0; k < 24; ++k) {
    const float cx = unit(rng) * side, cy = unit(rng) * side, radius = (0.05f + 0.08f * unit(rng)) * side;
    const float amplitude = unit(rng) - 0.5f;
    for (int y = 0; y < side; ++y) {
      for (int x = 0; x < side; ++x) {
        const float d2 = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (radius * radius);
        image.at<float>(y, x) += amplitude * std::exp(-d2);
      }
    }
  }
  return image;
}

cv::Mat AsMat(const Affine& m) { return (cv::Mat_<float>(2, 3) << m[0], m[1], m[2], m[3], m[4], m[5]); }

// A small rotation, zoom and shift about the centre.
Affine Moved(int side, float degrees, float scale, float dx, float dy) {
  const float c = scale * std::cos(degrees * static_cast<float>(CV_PI) / 180),
              s = scale * std::sin(degrees * static_cast<float>(CV_PI) / 180);
  const float centre = (side - 1) / 2.0f;
  return {c, -s, centre - c * centre + s * centre + dx, s, c, centre - s * centre - c * centre + dy};
}

TEST(Ecc, FindsTheSameWarpAndCorrelationAsOpenCv) {
  int compared = 0, converged = 0;
  for (const int side : {32, 64}) {
    const int blur = side == 32 ? 3 : 5;
    for (unsigned seed = 1; seed <= 8; ++seed) {
      const cv::Mat templ = Blobs(side, seed);
      const Affine truth = Moved(side, static_cast<float>(seed % 3) - 1, 1.0f + 0.01f * static_cast<float>(seed % 4),
                                 0.5f * static_cast<float>(seed % 5) - 1, 0.5f);
      // The input is the template seen through the inverse map: warping it back by `truth` gives the template.
      cv::Mat input;
      cv::warpAffine(templ, input, AsMat(truth), templ.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
      const EccAligner ecc(templ.ptr<float>(), input.ptr<float>(), side, blur);
      for (const int iterations : {1, 50}) {
        cv::Mat theirs = AsMat(kIdentity);
        const double their_rho = cv::findTransformECC(
            templ, input, theirs, cv::MOTION_AFFINE,
            cv::TermCriteria(cv::TermCriteria::COUNT | cv::TermCriteria::EPS, iterations, 1e-4), cv::noArray(), blur);
        Affine ours = kIdentity;
        double our_rho = -2;
        ASSERT_TRUE(ecc.Align(&ours, iterations, 1e-4, &our_rho)) << side << " " << seed;
        ++compared;
        // Translations in pixels, the linear part unitless: compared at the far edge.
        auto expect_warps_within = [&](float pixels) {
          for (int i = 0; i < 6; ++i) {
            const float tolerance = (i == 2 || i == 5) ? pixels : pixels / static_cast<float>(side);
            EXPECT_NEAR(ours[static_cast<std::size_t>(i)], theirs.at<float>(i / 3, i % 3), tolerance)
                << side << " seed " << seed << " iterations " << iterations << " parameter " << i;
          }
        };
        if (iterations == 1) {
          // The first step from the identity samples at whole pixels: the same arithmetic.
          EXPECT_NEAR(our_rho, their_rho, 1e-5) << side << " seed " << seed;
          expect_warps_within(1e-3f);
          continue;
        }
        // Later steps differ by OpenCV's 1/32-pixel sampling, which makes its correlation jitter
        // (and stop early or late under the 1e-4 rule): ours ends no worse, and where OpenCV's
        // converged both found the same warp, within 1/5 pixel.
        EXPECT_GE(our_rho, their_rho - 0.01) << side << " seed " << seed;
        if (their_rho >= 0.99) {
          ++converged;
          EXPECT_GE(our_rho, 0.99) << side << " seed " << seed;
          expect_warps_within(0.2f);
        }
      }
    }
  }
  EXPECT_EQ(compared, 32);
  EXPECT_GE(converged, 6) << "too few cases where OpenCV's ECC converged to compare with";
}

TEST(Ecc, AFlatImageDoesNotConvergeInEither) {
  const cv::Mat flat(32, 32, CV_32F, cv::Scalar(0.3)), blobs = Blobs(32, 4);
  for (const auto& [templ, input] : {std::pair{flat, blobs}, std::pair{blobs, flat}}) {
    cv::Mat theirs = AsMat(kIdentity);
    EXPECT_THROW(cv::findTransformECC(templ, input, theirs, cv::MOTION_AFFINE,
                                      cv::TermCriteria(cv::TermCriteria::COUNT | cv::TermCriteria::EPS, 15, 1e-4),
                                      cv::noArray(), 3),
                 cv::Exception);
    Affine ours = kIdentity;
    double rho = 0;
    EXPECT_FALSE(EccAligner(templ.ptr<float>(), input.ptr<float>(), 32, 3).Align(&ours, 15, 1e-4, &rho));
  }
  // A warp that leaves no pixel inside the input.
  Affine away = {1, 0, 500, 0, 1, 500};
  double rho = 0;
  EXPECT_FALSE(EccAligner(blobs.ptr<float>(), blobs.ptr<float>(), 32, 3).Align(&away, 15, 1e-4, &rho));
}

TEST(Ecc, UndefinedAndFarOffWarpsNeitherCrashNorConverge) {
  const int side = 32;
  const cv::Mat blobs = Blobs(side, 5);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const Affine& warp :
       {Affine{nan, 0, 0, 0, 1, 0}, Affine{1, 0, 1e30f, 0, 1, -1e30f}, Affine{1e30f, 0, 0, 0, 1e30f, 0}}) {
    double rho = 0;
    Affine moved = warp;
    EXPECT_FALSE(EccAligner(blobs.ptr<float>(), blobs.ptr<float>(), side, 3).Align(&moved, 15, 1e-4, &rho));
    // Sampling reads the nearest edge pixels, never outside the image.
    std::vector<float> out(static_cast<std::size_t>(side) * side);
    WarpReplicate(blobs.ptr<float>(), side, 1, warp, out.data());
    for (const float v : out) {
      ASSERT_TRUE(std::isfinite(v));
      ASSERT_GE(v, *std::min_element(blobs.begin<float>(), blobs.end<float>()) - 1e-6f);
      ASSERT_LE(v, *std::max_element(blobs.begin<float>(), blobs.end<float>()) + 1e-6f);
    }
    std::vector<std::uint8_t> covered(out.size(), 1);
    CoveredEroded(side, warp, covered.data());
    EXPECT_EQ(std::count(covered.begin(), covered.end(), 1), 0);
  }
}

TEST(Ecc, SamplingMatchesWarpAffineAndResize) {
  const int side = 64;
  cv::Mat rgb;
  cv::merge(std::vector<cv::Mat>{Blobs(side, 1), Blobs(side, 2), Blobs(side, 3)}, rgb);
  const Affine warp = Moved(side, 4.0f, 1.1f, 3.3f, -2.1f);
  cv::Mat theirs, covered;
  cv::warpAffine(rgb, theirs, AsMat(warp), rgb.size(), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REPLICATE);
  std::vector<float> ours(static_cast<std::size_t>(side) * side * 3);
  WarpReplicate(rgb.ptr<float>(), side, 3, warp, ours.data());
  double largest = 0;
  for (std::size_t i = 0; i < ours.size(); ++i)
    largest = std::max(largest, std::fabs(static_cast<double>(ours[i]) - theirs.ptr<float>()[i]));
  EXPECT_LT(largest, 0.01) << "bilinear weights exact here, to 1/32 pixel in OpenCV";

  cv::warpAffine(cv::Mat::ones(side, side, CV_8U), covered, AsMat(warp), {side, side},
                 cv::INTER_NEAREST | cv::WARP_INVERSE_MAP, cv::BORDER_CONSTANT, 0);
  cv::erode(covered, covered, cv::Mat::ones(3, 3, CV_8U));
  std::vector<std::uint8_t> our_covered(static_cast<std::size_t>(side) * side);
  CoveredEroded(side, warp, our_covered.data());
  int differ = 0, inside = 0;
  for (std::size_t i = 0; i < our_covered.size(); ++i) {
    differ += our_covered[i] != covered.data[i] ? 1 : 0;
    inside += our_covered[i];
  }
  EXPECT_LE(differ, 2) << "rounding at exact half pixels only";
  EXPECT_GT(inside, side * side / 2);
  EXPECT_LT(inside, side * side);

  cv::Mat half;
  cv::resize(rgb, half, {side / 2, side / 2}, 0, 0, cv::INTER_AREA);
  const std::vector<float> our_half = HalveImage(rgb.ptr<float>(), side, 3);
  ASSERT_EQ(our_half.size(), half.total() * 3);
  for (std::size_t i = 0; i < our_half.size(); ++i) ASSERT_NEAR(our_half[i], half.ptr<float>()[i], 1e-6);
}

}  // namespace
}  // namespace lookbook::image_internal
