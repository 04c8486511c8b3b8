// What the image modules share on the OpenCV side: a view of an RgbImage, and the outermost
// pixel ring with its per-channel median (the colour of a plain frame or studio background,
// which both the frame trim of the perceptual hash and the alignment's foreground mask need).
// Internal to src/image.
#pragma once

#include <opencv2/core.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "image/decode.h"

namespace lookbook::image_internal {

// The image's pixels as a CV_8UC3 Mat in RGB order, without a copy.
inline cv::Mat View(const RgbImage& image) {
  return cv::Mat(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.rgb.data()));
}

// The outermost ring of a 3-channel image (Pixel: cv::Vec3b or cv::Vec3f), each pixel once.
template <typename Pixel>
std::vector<Pixel> Ring(const cv::Mat& image) {
  const int width = image.cols, height = image.rows;
  std::vector<Pixel> ring;
  if (width == 0 || height == 0) return ring;
  ring.reserve(2 * static_cast<std::size_t>(width + height));
  for (int x = 0; x < width; ++x) {
    ring.push_back(image.at<Pixel>(0, x));
    if (height > 1) ring.push_back(image.at<Pixel>(height - 1, x));
  }
  for (int y = 1; y + 1 < height; ++y) {
    ring.push_back(image.at<Pixel>(y, 0));
    if (width > 1) ring.push_back(image.at<Pixel>(y, width - 1));
  }
  return ring;
}

// Per channel, the median (the upper one of an even count) of `pixels`; not empty.
template <typename Pixel>
Pixel ChannelMedian(const std::vector<Pixel>& pixels) {
  Pixel median;
  std::vector<typename Pixel::value_type> channel(pixels.size());
  const auto middle = channel.begin() + static_cast<std::ptrdiff_t>(channel.size() / 2);
  for (int c = 0; c < Pixel::channels; ++c) {
    for (std::size_t i = 0; i < pixels.size(); ++i) channel[i] = pixels[i][c];
    std::nth_element(channel.begin(), middle, channel.end());
    median[c] = *middle;
  }
  return median;
}

}  // namespace lookbook::image_internal
