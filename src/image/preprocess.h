// Model input from a decoded image, and the perceptual hash.
//
// Model input convention: 3 x size x size float32, channel-major (CHW), each channel
// (pixel / 255 - mean) / std, channels in the order the model was trained with.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "image/decode.h"

namespace lookbook {

enum class ResizePolicy {
  kShortSideCenterCrop,  // CLIP: short side to `size`, then the centre square
  kPadToSquare,          // the whole image, letterboxed on white (segmenters: nothing is cut)
  kStretch,              // both sides to `size`, aspect ratio not kept
};
enum class ChannelOrder { kRgb, kBgr };

bool ParseResizePolicy(std::string_view text, ResizePolicy* policy);
bool ParseChannelOrder(std::string_view text, ChannelOrder* order);

struct PreprocessSpec {
  int size = 224;
  ResizePolicy resize = ResizePolicy::kShortSideCenterCrop;
  std::array<float, 3> mean = {0.48145466f, 0.4578275f, 0.40821073f};  // CLIP's, RGB
  std::array<float, 3> std = {0.26862954f, 0.26130258f, 0.27577711f};
  ChannelOrder channels = ChannelOrder::kRgb;
};

// Where Preprocess puts an image's pixels in the model's size x size input:
// model_x = image_x * scale_x + offset_x (likewise y). Offsets are negative where the
// centre crop cuts; model pixels outside the image (letterbox) map back outside it.
struct FrameMapping {
  double scale_x = 1, scale_y = 1, offset_x = 0, offset_y = 0;
};
FrameMapping ModelFrame(int width, int height, const PreprocessSpec& spec);

// Writes 3 * size * size floats to `out`. Downscaling averages (area), upscaling is bicubic,
// the closest OpenCV gets to the PIL bicubic-with-antialias that CLIP was trained with.
void Preprocess(const RgbImage& image, const PreprocessSpec& spec, float* out);

// The part of an image that is not a plain frame around it: when the outermost pixel ring is
// (almost) one colour, the bounding box of the pixels that differ from that colour by more
// than a tolerance; else, or when that box is empty or tiny, the whole image. Product shots
// on a studio background, and the same shot with a border added or the margin cropped,
// share this box's content.
struct PixelBox {
  int x = 0, y = 0, width = 0, height = 0;
};
PixelBox ContentBox(const RgbImage& image);

// 64-bit DCT perceptual hash (OpenCV img_hash PHash) of the image's ContentBox, so that a
// border added or a margin cropped does not move the hash; near-duplicates differ in few bits.
// Decode at least kPerceptualHashMinSide pixels on the short side for it: on a JPEG shrunk in
// the DCT to a tiny model's input, the content box would move by whole pixels between copies.
inline constexpr int kPerceptualHashMinSide = 128;
using PerceptualHash = std::array<std::uint8_t, 8>;
PerceptualHash ComputePerceptualHash(const RgbImage& image);
int HammingDistance(const PerceptualHash& a, const PerceptualHash& b);

}  // namespace lookbook
