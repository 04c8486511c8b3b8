#include "image/preprocess.h"

#include <algorithm>
#include <bitset>
#include <cmath>
#include <cstdlib>
#include <opencv2/core.hpp>
#include <opencv2/img_hash.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "image/cv_view.h"
#include "util/error.h"

namespace lookbook {
namespace {

using image_internal::View;

cv::Mat Resize(const cv::Mat& source, int width, int height) {
  cv::Mat out;
  const bool shrinking = width < source.cols || height < source.rows;
  cv::resize(source, out, {width, height}, 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_CUBIC);
  return out;
}

}  // namespace

bool ParseResizePolicy(std::string_view text, ResizePolicy* policy) {
  if (text == "short_side_center_crop")
    *policy = ResizePolicy::kShortSideCenterCrop;
  else if (text == "pad_to_square")
    *policy = ResizePolicy::kPadToSquare;
  else if (text == "stretch")
    *policy = ResizePolicy::kStretch;
  else
    return false;
  return true;
}

bool ParseChannelOrder(std::string_view text, ChannelOrder* order) {
  if (text == "rgb")
    *order = ChannelOrder::kRgb;
  else if (text == "bgr")
    *order = ChannelOrder::kBgr;
  else
    return false;
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
    case ResizePolicy::kStretch: return {size, size, 0, 0};
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

namespace {

// The model's channel c is the image's channel source[c], as value * scale[c] - shift[c]
// (that is, (value / 255 - mean) / std).
struct Normalization {
  explicit Normalization(const PreprocessSpec& spec) {
    for (int c = 0; c < 3; ++c) {
      source[c] = spec.channels == ChannelOrder::kRgb ? c : 2 - c;
      const auto k = static_cast<std::size_t>(source[c]);
      scale[c] = 1.0f / (255.0f * spec.std[k]);
      shift[c] = spec.mean[k] / spec.std[k];
    }
  }
  int source[3];
  float scale[3], shift[3];
};

// Area (box) resampling along one axis, as OpenCV's INTER_AREA computes it: output o of a
// src -> dst shrink covers source [o * scale, (o + 1) * scale), each source pixel weighted by
// its overlap. Taps for outputs first .. first + count - 1.
struct AreaTaps {
  std::vector<int> begin;     // per output: its first source pixel
  std::vector<int> end;       // per output: one past its last
  std::vector<float> weight;  // per output: end - begin weights, from offset[o]
  std::vector<std::size_t> offset;
};

AreaTaps Taps(int source, int target, int first, int count) {
  const double scale = static_cast<double>(source) / target;
  AreaTaps taps;
  for (int o = first; o < first + count; ++o) {
    const double from = o * scale, to = std::min((o + 1) * scale, static_cast<double>(source));
    const int begin = static_cast<int>(std::floor(from));
    const int end = std::min(source, static_cast<int>(std::ceil(to - 1e-9)));
    taps.begin.push_back(begin);
    taps.end.push_back(end);
    taps.offset.push_back(taps.weight.size());
    for (int j = begin; j < end; ++j) {
      taps.weight.push_back(
          static_cast<float>((std::min(to, j + 1.0) - std::max(from, static_cast<double>(j))) / (to - from)));
    }
  }
  return taps;
}

// The hot path of CLIP-style preprocessing (shrink the short side to size, centre crop,
// normalise): a separable area resample of only the pixels the crop keeps, straight to the
// normalised float planes, a quarter of the time of OpenCV's INTER_AREA over the whole image
// (docs/decisions.md). The result equals that path's up to its rounding to 8 bits (within 0.5
// level).
void ShrinkCropNormalize(const cv::Mat& source, const Placement& p, const PreprocessSpec& spec, float* out) {
  const int size = spec.size;
  const AreaTaps columns = Taps(source.cols, p.width, -p.left, size);
  const AreaTaps rows = Taps(source.rows, p.height, -p.top, size);
  const int first_row = rows.begin.front(), last_row = rows.end.back();
  // Horizontal pass over the source rows the crop needs: [row][x][channel].
  std::vector<float> horizontal(static_cast<std::size_t>(last_row - first_row) * size * 3);
  for (int y = first_row; y < last_row; ++y) {
    const std::uint8_t* row = source.ptr<std::uint8_t>(y);
    float* dst = horizontal.data() + static_cast<std::size_t>(y - first_row) * size * 3;
    for (int x = 0; x < size; ++x) {
      const float* w = columns.weight.data() + columns.offset[static_cast<std::size_t>(x)];
      float r = 0, g = 0, b = 0;
      for (int j = columns.begin[static_cast<std::size_t>(x)]; j < columns.end[static_cast<std::size_t>(x)]; ++j, ++w) {
        r += *w * row[3 * j];
        g += *w * row[3 * j + 1];
        b += *w * row[3 * j + 2];
      }
      dst[3 * x] = r;
      dst[3 * x + 1] = g;
      dst[3 * x + 2] = b;
    }
  }
  // Vertical pass, then normalisation into the model's channel planes.
  const Normalization n(spec);
  const std::size_t plane = static_cast<std::size_t>(size) * size;
  std::vector<float> line(static_cast<std::size_t>(size) * 3);
  for (int y = 0; y < size; ++y) {
    std::fill(line.begin(), line.end(), 0.0f);
    const float* w = rows.weight.data() + rows.offset[static_cast<std::size_t>(y)];
    for (int j = rows.begin[static_cast<std::size_t>(y)]; j < rows.end[static_cast<std::size_t>(y)]; ++j, ++w) {
      const float* src = horizontal.data() + static_cast<std::size_t>(j - first_row) * size * 3;
      for (int i = 0; i < size * 3; ++i) line[static_cast<std::size_t>(i)] += *w * src[i];
    }
    for (int c = 0; c < 3; ++c) {
      float* dst = out + plane * static_cast<std::size_t>(c) + static_cast<std::size_t>(y) * size;
      for (int x = 0; x < size; ++x)
        dst[x] = line[static_cast<std::size_t>(3 * x + n.source[c])] * n.scale[c] - n.shift[c];
    }
  }
}

}  // namespace

void Preprocess(const RgbImage& image, const PreprocessSpec& spec, float* out) {
  LB_CHECK(image.width > 0 && image.height > 0, "preprocessing an empty image");
  const cv::Mat source = View(image);
  const int size = spec.size;
  const Placement p = Place(image.width, image.height, spec);
  if (spec.resize == ResizePolicy::kShortSideCenterCrop && p.width <= image.width && p.height <= image.height) {
    ShrinkCropNormalize(source, p, spec, out);
    return;
  }
  cv::Mat square;
  switch (spec.resize) {
    case ResizePolicy::kShortSideCenterCrop:
      square = Resize(source, p.width, p.height)(cv::Rect(-p.left, -p.top, size, size));
      break;
    case ResizePolicy::kPadToSquare:
      square = cv::Mat(size, size, CV_8UC3, cv::Scalar::all(255));
      Resize(source, p.width, p.height).copyTo(square(cv::Rect(p.left, p.top, p.width, p.height)));
      break;
    case ResizePolicy::kStretch: square = Resize(source, size, size); break;
  }
  const std::size_t plane = static_cast<std::size_t>(size) * size;
  const Normalization n(spec);
  for (int c = 0; c < 3; ++c) {
    float* dst = out + plane * static_cast<std::size_t>(c);
    for (int y = 0; y < size; ++y) {
      const auto* row = square.ptr<cv::Vec3b>(y);
      for (int x = 0; x < size; ++x) *dst++ = row[x][n.source[c]] * n.scale[c] - n.shift[c];
    }
  }
}

namespace {

// One trimming pass over `view` (see ContentBox).
PixelBox TrimPlainFrame(const cv::Mat& view) {
  const PixelBox whole{0, 0, view.cols, view.rows};
  if (view.cols < 8 || view.rows < 8) return whole;
  const int width = view.cols, height = view.rows;
  // The frame colour: the per-channel median of the outermost ring.
  const std::vector<cv::Vec3b> ring = image_internal::Ring<cv::Vec3b>(view);
  const cv::Vec3b frame = image_internal::ChannelMedian(ring);
  constexpr int kTolerance = 24;  // JPEG ringing and sensor noise on a plain background
  auto differs = [&](const cv::Vec3b& p) {
    return std::abs(p[0] - frame[0]) > kTolerance || std::abs(p[1] - frame[1]) > kTolerance ||
           std::abs(p[2] - frame[2]) > kTolerance;
  };
  std::size_t off_frame = 0;
  for (const cv::Vec3b& p : ring) off_frame += differs(p) ? 1 : 0;
  if (off_frame * 10 > ring.size()) return whole;  // no plain frame: a scene, not a shot
  // Rows and columns with content; a few stray pixels (noise, dust) do not count.
  std::vector<int> row_hits(static_cast<std::size_t>(height)), col_hits(static_cast<std::size_t>(width));
  for (int y = 0; y < height; ++y) {
    const cv::Vec3b* row = view.ptr<cv::Vec3b>(y);
    for (int x = 0; x < width; ++x) {
      if (differs(row[x])) {
        ++row_hits[static_cast<std::size_t>(y)];
        ++col_hits[static_cast<std::size_t>(x)];
      }
    }
  }
  auto span = [](const std::vector<int>& hits, int min_hits, int* begin, int* end) {
    *begin = 0;
    *end = static_cast<int>(hits.size());
    while (*begin < *end && hits[static_cast<std::size_t>(*begin)] < min_hits) ++*begin;
    while (*end > *begin && hits[static_cast<std::size_t>(*end - 1)] < min_hits) --*end;
  };
  int x0, x1, y0, y1;
  span(col_hits, std::max(1, height / 100), &x0, &x1);
  span(row_hits, std::max(1, width / 100), &y0, &y1);
  // Too small to hash on its own (a speck on a blank image): keep the whole image.
  if ((x1 - x0) * 8 < width && (y1 - y0) * 8 < height) return whole;
  if (x1 <= x0 || y1 <= y0) return whole;
  return {x0, y0, x1 - x0, y1 - y0};
}

}  // namespace

// Two passes: a border added around a shot on its own light background goes first, then
// that background.
PixelBox ContentBox(const RgbImage& image) {
  PixelBox box{0, 0, image.width, image.height};
  for (int pass = 0; pass < 2; ++pass) {
    const PixelBox inner = TrimPlainFrame(View(image)(cv::Rect(box.x, box.y, box.width, box.height)));
    if (inner.width == box.width && inner.height == box.height) break;
    box = PixelBox{box.x + inner.x, box.y + inner.y, inner.width, inner.height};
  }
  return box;
}

PerceptualHash ComputePerceptualHash(const RgbImage& image) {
  const PixelBox box = ContentBox(image);
  cv::Mat bgr;
  cv::cvtColor(View(image)(cv::Rect(box.x, box.y, box.width, box.height)), bgr, cv::COLOR_RGB2BGR);
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
