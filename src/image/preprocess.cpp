#include "image/preprocess.h"

#include <bitset>
#include <opencv2/core.hpp>
#include <opencv2/img_hash.hpp>
#include <opencv2/imgproc.hpp>

#include "util/error.h"

namespace lookbook {
namespace {

cv::Mat View(const RgbImage& image) {
  return cv::Mat(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.rgb.data()));
}

cv::Mat Resize(const cv::Mat& source, int width, int height) {
  cv::Mat out;
  const bool shrinking = width < source.cols || height < source.rows;
  cv::resize(source, out, {width, height}, 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_CUBIC);
  return out;
}

}  // namespace

bool ParseResizePolicy(std::string_view text, ResizePolicy* policy) {
  if (text == "short_side_center_crop") *policy = ResizePolicy::kShortSideCenterCrop;
  else if (text == "pad_to_square") *policy = ResizePolicy::kPadToSquare;
  else if (text == "stretch") *policy = ResizePolicy::kStretch;
  else return false;
  return true;
}

bool ParseChannelOrder(std::string_view text, ChannelOrder* order) {
  if (text == "rgb") *order = ChannelOrder::kRgb;
  else if (text == "bgr") *order = ChannelOrder::kBgr;
  else return false;
  return true;
}

namespace {

// The resized image's size and its top-left corner in the model input, per policy.
struct Placement {
  int width, height, left, top;
};

Placement Place(int width, int height, const PreprocessSpec& spec) {
  const int size = spec.size;
  switch (spec.resize) {
    case ResizePolicy::kShortSideCenterCrop: {
      const double scale = static_cast<double>(size) / std::min(width, height);
      const int w = std::max(size, static_cast<int>(std::lround(width * scale)));
      const int h = std::max(size, static_cast<int>(std::lround(height * scale)));
      return {w, h, -((w - size) / 2), -((h - size) / 2)};
    }
    case ResizePolicy::kPadToSquare: {
      const double scale = static_cast<double>(size) / std::max(width, height);
      const int w = std::max(1, static_cast<int>(std::lround(width * scale)));
      const int h = std::max(1, static_cast<int>(std::lround(height * scale)));
      return {w, h, (size - w) / 2, (size - h) / 2};
    }
    case ResizePolicy::kStretch:
      return {size, size, 0, 0};
  }
  LB_CHECK(false, "unknown resize policy");
  return {};
}

}  // namespace

FrameMapping ModelFrame(int width, int height, const PreprocessSpec& spec) {
  LB_CHECK(width > 0 && height > 0, "mapping an empty image");
  const Placement p = Place(width, height, spec);
  return {static_cast<double>(p.width) / width, static_cast<double>(p.height) / height, static_cast<double>(p.left),
          static_cast<double>(p.top)};
}

void Preprocess(const RgbImage& image, const PreprocessSpec& spec, float* out) {
  LB_CHECK(image.width > 0 && image.height > 0, "preprocessing an empty image");
  const cv::Mat source = View(image);
  const int size = spec.size;
  const Placement p = Place(image.width, image.height, spec);
  cv::Mat square;
  switch (spec.resize) {
    case ResizePolicy::kShortSideCenterCrop:
      square = Resize(source, p.width, p.height)(cv::Rect(-p.left, -p.top, size, size));
      break;
    case ResizePolicy::kPadToSquare:
      square = cv::Mat(size, size, CV_8UC3, cv::Scalar::all(255));
      Resize(source, p.width, p.height).copyTo(square(cv::Rect(p.left, p.top, p.width, p.height)));
      break;
    case ResizePolicy::kStretch:
      square = Resize(source, size, size);
      break;
  }
  const std::size_t plane = static_cast<std::size_t>(size) * size;
  for (int c = 0; c < 3; ++c) {
    const int source_channel = spec.channels == ChannelOrder::kRgb ? c : 2 - c;
    const float scale = 1.0f / (255.0f * spec.std[static_cast<std::size_t>(source_channel)]);
    const float shift = spec.mean[static_cast<std::size_t>(source_channel)] / spec.std[static_cast<std::size_t>(source_channel)];
    float* dst = out + plane * static_cast<std::size_t>(c);
    for (int y = 0; y < size; ++y) {
      const auto* row = square.ptr<cv::Vec3b>(y);
      for (int x = 0; x < size; ++x) *dst++ = row[x][source_channel] * scale - shift;
    }
  }
}

PerceptualHash ComputePerceptualHash(const RgbImage& image) {
  cv::Mat bgr;
  cv::cvtColor(View(image), bgr, cv::COLOR_RGB2BGR);
  cv::Mat hash;
  cv::img_hash::PHash::create()->compute(bgr, hash);
  LB_CHECK(hash.total() == 8, "PHash is 8 bytes");
  PerceptualHash out;
  std::copy(hash.ptr<std::uint8_t>(), hash.ptr<std::uint8_t>() + 8, out.begin());
  return out;
}

int HammingDistance(const PerceptualHash& a, const PerceptualHash& b) {
  int bits = 0;
  for (std::size_t i = 0; i < a.size(); ++i) bits += static_cast<int>(std::bitset<8>(a[i] ^ b[i]).count());
  return bits;
}

}  // namespace lookbook
