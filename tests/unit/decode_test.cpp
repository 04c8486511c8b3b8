#include "image/decode.h"

#include <gtest/gtest.h>
#include <turbojpeg.h>

#include <atomic>
#include <chrono>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <thread>
#include <tuple>

#include "image/preprocess.h"

namespace lookbook {
namespace {

std::string Encode(const cv::Mat& image, const std::string& ext, std::vector<int> params = {}) {
  std::vector<std::uint8_t> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes, params));
  return std::string(bytes.begin(), bytes.end());
}

// A colourful test picture (BGR), so that orientation and channel mistakes show.
cv::Mat Picture(int width, int height) {
  cv::Mat image(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      image.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uchar>(255 * x / width), 40, static_cast<uchar>(255 * y / height));
    }
  }
  cv::rectangle(image, {0, 0, width / 4, height / 4}, cv::Scalar(0, 0, 255), cv::FILLED);  // red top-left
  return image;
}

cv::Vec3b RgbAt(const RgbImage& image, int x, int y) {
  const std::uint8_t* p = image.rgb.data() + (static_cast<std::size_t>(y) * image.width + x) * 3;
  return cv::Vec3b(p[0], p[1], p[2]);
}

TEST(DecodeImage, DecodesJpegToRgb) {
  const DecodeResult result = DecodeImage(Encode(Picture(64, 48), ".jpg"), {});
  ASSERT_EQ(result.status, ImageStatus::kOk) << result.detail;
  EXPECT_EQ(result.image.width, 64);
  EXPECT_EQ(result.image.height, 48);
  const cv::Vec3b corner = RgbAt(result.image, 2, 2);
  EXPECT_GT(corner[0], 200) << "red stays in the R channel";
  EXPECT_LT(corner[2], 60);
}

TEST(DecodeImage, DownscalesJpegInTheDctJustAboveTheTarget) {
  const std::string jpeg = Encode(Picture(1000, 1333), ".jpg");
  const DecodeResult result = DecodeImage(jpeg, DecodeLimits{64ull << 20, 100'000'000, 224});
  ASSERT_EQ(result.status, ImageStatus::kOk) << result.detail;
  EXPECT_EQ(result.source_width, 1000);
  EXPECT_GE(std::min(result.image.width, result.image.height), 224);
  EXPECT_LT(std::min(result.image.width, result.image.height), 448) << "a smaller scale would do";
}

TEST(DecodeImage, GrayscaleJpegAnd16BitPngBecomeRgb) {
  cv::Mat gray(20, 30, CV_8U, cv::Scalar(100));
  DecodeResult result = DecodeImage(Encode(gray, ".jpg"), {});
  ASSERT_EQ(result.status, ImageStatus::kOk);
  EXPECT_NEAR(RgbAt(result.image, 5, 5)[1], 100, 2);
  cv::Mat deep(20, 30, CV_16UC3, cv::Scalar(65535, 0, 32896));
  result = DecodeImage(Encode(deep, ".png"), {});
  ASSERT_EQ(result.status, ImageStatus::kOk) << result.detail;
  EXPECT_EQ(RgbAt(result.image, 3, 3), cv::Vec3b(128, 0, 255));
}

TEST(DecodeImage, AlphaIsCompositedOnWhite) {
  cv::Mat rgba(10, 10, CV_8UC4, cv::Scalar(0, 0, 0, 0));          // fully transparent black
  rgba(cv::Rect(0, 0, 5, 10)).setTo(cv::Scalar(255, 0, 0, 255));  // opaque blue left half
  const DecodeResult result = DecodeImage(Encode(rgba, ".png"), {});
  ASSERT_EQ(result.status, ImageStatus::kOk);
  EXPECT_EQ(RgbAt(result.image, 8, 5), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(RgbAt(result.image, 1, 5), cv::Vec3b(0, 0, 255));
}

TEST(DecodeImage, CmykJpegIsConverted) {
  // Adobe-style inverted CMYK: C=255 means no cyan ink. Pure red = no cyan, full M and Y.
  const int w = 16, h = 16;
  std::vector<unsigned char> cmyk(static_cast<std::size_t>(w) * h * 4);
  for (std::size_t i = 0; i < cmyk.size(); i += 4) {
    cmyk[i] = 255;
    cmyk[i + 1] = 0;
    cmyk[i + 2] = 0;
    cmyk[i + 3] = 255;
  }
  tjhandle tj = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  ASSERT_EQ(tjCompress2(tj, cmyk.data(), w, 0, h, TJPF_CMYK, &jpeg, &size, TJSAMP_444, 95, 0), 0);
  const std::string bytes(reinterpret_cast<char*>(jpeg), size);
  tjFree(jpeg);
  tjDestroy(tj);
  const DecodeResult result = DecodeImage(bytes, {});
  ASSERT_EQ(result.status, ImageStatus::kOk) << result.detail;
  const cv::Vec3b pixel = RgbAt(result.image, 8, 8);
  EXPECT_GT(pixel[0], 230);
  EXPECT_LT(pixel[1], 25);
  EXPECT_LT(pixel[2], 25);
}

// Inserts an EXIF APP1 segment with the given orientation right after SOI.
std::string WithOrientation(const std::string& jpeg, int orientation) {
  std::string tiff = std::string("MM\0\x2a\0\0\0\x08", 8) + std::string("\0\x01", 2) +
                     std::string("\x01\x12\0\x03\0\0\0\x01", 8) + std::string(1, '\0') +
                     std::string(1, static_cast<char>(orientation)) + std::string("\0\0", 2) + std::string(4, '\0');
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const std::size_t length = payload.size() + 2;
  std::string segment = "\xFF\xE1";
  segment += static_cast<char>(length >> 8);
  segment += static_cast<char>(length & 0xFF);
  return jpeg.substr(0, 2) + segment + payload + jpeg.substr(2);
}

TEST(DecodeImage, ExifOrientationIsApplied) {
  const std::string jpeg = Encode(Picture(60, 40), ".jpg");
  EXPECT_EQ(JpegExifOrientation(jpeg), 1);
  const std::string rotated = WithOrientation(jpeg, 6);  // display rotated 90 degrees clockwise
  EXPECT_EQ(JpegExifOrientation(rotated), 6);
  const DecodeResult result = DecodeImage(rotated, {});
  ASSERT_EQ(result.status, ImageStatus::kOk) << result.detail;
  EXPECT_EQ(result.image.width, 40);
  EXPECT_EQ(result.image.height, 60);
  EXPECT_GT(RgbAt(result.image, 37, 2)[0], 200) << "the red corner moved to the top right";
}

TEST(DecodeImage, RejectsHugeDimensionsBeforeDecoding) {
  std::string png = Encode(cv::Mat(8, 8, CV_8UC3, cv::Scalar::all(7)), ".png");
  // IHDR claims 30000 x 30000: rejected from the header, nothing allocated.
  const unsigned char big[] = {0x00, 0x00, 0x75, 0x30, 0x00, 0x00, 0x75, 0x30};
  png.replace(16, 8, reinterpret_cast<const char*>(big), 8);
  DecodeResult result = DecodeImage(png, {});
  EXPECT_EQ(result.status, ImageStatus::kTooManyPixels);
  EXPECT_EQ(result.detail, "30000x30000");
  const std::string jpeg = Encode(Picture(400, 300), ".jpg");
  result = DecodeImage(jpeg, DecodeLimits{64ull << 20, 100'000, 0});
  EXPECT_EQ(result.status, ImageStatus::kTooManyPixels);
}

TEST(DecodeImage, RejectsHostileFilesWithAReason) {
  const std::string jpeg = Encode(Picture(200, 150), ".jpg", {cv::IMWRITE_JPEG_QUALITY, 90});
  EXPECT_EQ(DecodeImage("", {}).status, ImageStatus::kEmptyFile);
  EXPECT_EQ(DecodeImage(jpeg.substr(0, jpeg.size() * 6 / 10), {}).status, ImageStatus::kCorrupt) << "truncated";
  EXPECT_EQ(DecodeImage(jpeg.substr(0, 40), {}).status, ImageStatus::kCorrupt) << "header only";
  std::string flipped = jpeg;
  std::mt19937 rng(5);
  for (int i = 0; i < 60; ++i) flipped[700 + rng() % (flipped.size() - 800)] ^= static_cast<char>(1 << (rng() % 8));
  EXPECT_EQ(DecodeImage(flipped, {}).status, ImageStatus::kCorrupt) << "bit-flipped";
  std::string noise(5000, '\0');
  for (auto& ch : noise) ch = static_cast<char>(rng());
  EXPECT_EQ(DecodeImage(noise, {}).status, ImageStatus::kUnsupportedFormat);
  EXPECT_EQ(DecodeImage("GIF89a\x01\0\x01\0", {}).status, ImageStatus::kUnsupportedFormat) << "a GIF named .jpg";
  EXPECT_EQ(DecodeImage("<html>not an image</html>", {}).status, ImageStatus::kUnsupportedFormat);
  EXPECT_EQ(DecodeImage(jpeg, DecodeLimits{100, 100'000'000, 0}).status, ImageStatus::kFileTooLarge);
  std::string png = Encode(Picture(50, 50), ".png");
  EXPECT_EQ(DecodeImage(png.substr(0, png.size() / 2), {}).status, ImageStatus::kCorrupt) << "truncated PNG";
  EXPECT_EQ(DecodeImage(png.substr(0, 20), {}).status, ImageStatus::kCorrupt);
}

TEST(DecodeImage, DecodesWebp) {
  if (!cv::haveImageWriter(".webp")) GTEST_FAIL() << "this OpenCV cannot write WebP";
  const DecodeResult result = DecodeImage(Encode(Picture(40, 30), ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}), {});
  ASSERT_EQ(result.status, ImageStatus::kOk) << result.detail;
  EXPECT_EQ(result.image.width, 40);
  EXPECT_EQ(result.source_height, 30);
  std::string lossy = Encode(Picture(40, 30), ".webp", {cv::IMWRITE_WEBP_QUALITY, 80});
  EXPECT_EQ(DecodeImage(lossy, {}).status, ImageStatus::kOk);
}

TEST(Preprocess, NormalisesIntoChannelMajorFloats) {
  RgbImage image{4, 2, std::vector<std::uint8_t>(4 * 2 * 3)};
  for (std::size_t i = 0; i < image.rgb.size(); i += 3) {
    image.rgb[i] = 255;
    image.rgb[i + 1] = 0;
    image.rgb[i + 2] = 51;
  }
  PreprocessSpec spec;
  spec.size = 2;
  spec.mean = {0.5f, 0.5f, 0.5f};
  spec.std = {0.5f, 0.25f, 0.5f};
  std::vector<float> out(3 * 2 * 2);
  Preprocess(image, spec, out.data());
  EXPECT_FLOAT_EQ(out[0], 1.0f);     // R: (1 - 0.5) / 0.5
  EXPECT_FLOAT_EQ(out[4], -2.0f);    // G: (0 - 0.5) / 0.25
  EXPECT_NEAR(out[8], -0.6f, 1e-5);  // B: (0.2 - 0.5) / 0.5
  spec.channels = ChannelOrder::kBgr;
  Preprocess(image, spec, out.data());
  EXPECT_NEAR(out[0], -0.6f, 1e-5) << "blue first for BGR models";
}

TEST(Preprocess, CropAndPadPolicies) {
  // 8 x 2 image: left half black, right half white.
  RgbImage image{8, 2, std::vector<std::uint8_t>(8 * 2 * 3, 0)};
  for (int y = 0; y < 2; ++y)
    for (int x = 4; x < 8; ++x)
      for (int c = 0; c < 3; ++c) image.rgb[(y * 8 + x) * 3 + c] = 255;
  PreprocessSpec spec;
  spec.size = 2;
  spec.mean = {0, 0, 0};
  spec.std = {1, 1, 1};
  std::vector<float> out(12);
  spec.resize = ResizePolicy::kShortSideCenterCrop;  // keeps the centre 2x2: half black, half white
  Preprocess(image, spec, out.data());
  EXPECT_LT(out[0], 0.1f);
  EXPECT_GT(out[1], 0.9f);
  spec.size = 8;
  spec.resize = ResizePolicy::kPadToSquare;  // the whole strip in the middle rows, white around
  out.resize(3 * 64);
  Preprocess(image, spec, out.data());
  EXPECT_FLOAT_EQ(out[0], 1.0f) << "padding is white";
  EXPECT_LT(out[3 * 8 + 0], 0.1f) << "the black half survives";
}

// The shrink + centre-crop path resamples only the kept pixels, straight to floats; it must
// equal OpenCV's INTER_AREA of the whole image, cropped and normalised (within the 8-bit
// rounding that path does), for either orientation, odd sizes, no shrink, and BGR models.
TEST(Preprocess, ShrinkAndCropEqualsOpenCvAreaResize) {
  std::mt19937 rng(5);
  for (const auto& [width, height, size] : std::vector<std::tuple<int, int, int>>{{250, 334, 224},
                                                                                  {334, 250, 224},
                                                                                  {224, 300, 224},
                                                                                  {500, 500, 224},
                                                                                  {57, 81, 32},
                                                                                  {64, 64, 32},
                                                                                  {225, 1001, 224}}) {
    for (const ChannelOrder order : {ChannelOrder::kRgb, ChannelOrder::kBgr}) {
      RgbImage image;
      image.width = width;
      image.height = height;
      image.rgb.resize(static_cast<std::size_t>(width) * height * 3);
      // Smooth content plus noise, so that every tap's weight matters.
      for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
          for (int c = 0; c < 3; ++c) {
            image.rgb[(static_cast<std::size_t>(y) * width + x) * 3 + c] =
                static_cast<std::uint8_t>((x * 3 + y * 5 + c * 60) % 200 + rng() % 56);
          }
        }
      }
      PreprocessSpec spec;
      spec.size = size;
      spec.channels = order;
      std::vector<float> ours(3 * static_cast<std::size_t>(size) * size);
      Preprocess(image, spec, ours.data());

      const double scale = static_cast<double>(size) / std::min(width, height);
      const int w = std::max(size, static_cast<int>(std::lround(width * scale)));
      const int h = std::max(size, static_cast<int>(std::lround(height * scale)));
      cv::Mat resized;
      cv::resize(cv::Mat(height, width, CV_8UC3, image.rgb.data()), resized, {w, h}, 0, 0, cv::INTER_AREA);
      const cv::Mat square = resized(cv::Rect((w - size) / 2, (h - size) / 2, size, size));
      double worst = 0;
      for (int c = 0; c < 3; ++c) {
        const int source = order == ChannelOrder::kRgb ? c : 2 - c;
        for (int y = 0; y < size; ++y) {
          for (int x = 0; x < size; ++x) {
            const float level = ours[(static_cast<std::size_t>(c) * size + y) * size + x] * 255.0f * spec.std[source] +
                                255.0f * spec.mean[source];
            worst = std::max(worst, static_cast<double>(std::fabs(level - square.at<cv::Vec3b>(y, x)[source])));
          }
        }
      }
      EXPECT_LE(worst, 0.51) << width << "x" << height << " to " << size;
    }
  }
}

TEST(PerceptualHash, NearCopiesAreCloseAndOtherImagesFar) {
  auto decode = [](const cv::Mat& bgr) { return DecodeImage(Encode(bgr, ".png"), {}).image; };
  const cv::Mat original = Picture(128, 128);
  cv::Mat brighter;
  original.convertTo(brighter, -1, 1.0, 25);
  cv::Mat other(128, 128, CV_8UC3, cv::Scalar::all(255));
  cv::circle(other, {64, 64}, 40, cv::Scalar(0, 0, 0), cv::FILLED);
  const PerceptualHash a = ComputePerceptualHash(decode(original));
  EXPECT_EQ(HammingDistance(a, ComputePerceptualHash(decode(original))), 0);
  EXPECT_LE(HammingDistance(a, ComputePerceptualHash(decode(brighter))), 6);
  EXPECT_GE(HammingDistance(a, ComputePerceptualHash(decode(other))), 16);
}

// A product shot: a garment-like shape on a light studio background.
cv::Mat ProductShot(int side) {
  cv::Mat shot(side, side, CV_8UC3, cv::Scalar(236, 240, 242));
  const cv::Mat garment = Picture(side / 2, side * 3 / 5);
  garment.copyTo(shot(cv::Rect(side / 4, side / 5, garment.cols, garment.rows)));
  cv::ellipse(shot, {side / 2, side / 5}, {side / 8, side / 16}, 0, 0, 360, cv::Scalar(30, 30, 160), cv::FILLED);
  return shot;
}

TEST(ContentBox, FindsTheShotInsideAPlainFrameAndKeepsScenesWhole) {
  auto decode = [](const cv::Mat& bgr) { return DecodeImage(Encode(bgr, ".png"), {}).image; };
  const PixelBox box = ContentBox(decode(ProductShot(200)));
  EXPECT_NEAR(box.x, 50, 1);
  EXPECT_NEAR(box.y, 200 / 5 - 200 / 16, 1);
  EXPECT_NEAR(box.width, 100, 1);
  EXPECT_NEAR(box.x + box.width, 150, 1);
  EXPECT_NEAR(box.y + box.height, 200 / 5 + 120, 1);
  const RgbImage scene = decode(Picture(120, 90));  // no plain frame
  const PixelBox whole = ContentBox(scene);
  EXPECT_EQ(whole.x, 0);
  EXPECT_EQ(whole.y, 0);
  EXPECT_EQ(whole.width, 120);
  EXPECT_EQ(whole.height, 90);
  cv::Mat blank(64, 64, CV_8UC3, cv::Scalar::all(255));
  blank.at<cv::Vec3b>(10, 10) = cv::Vec3b(0, 0, 0);  // a speck is not content
  EXPECT_EQ(ContentBox(decode(blank)).width, 64);
}

TEST(PerceptualHash, ABorderOrACroppedMarginDoesNotMoveTheHash) {
  auto decode = [](const cv::Mat& bgr) { return DecodeImage(Encode(bgr, ".png"), {}).image; };
  const cv::Mat shot = ProductShot(224);
  cv::Mat bordered, cropped;
  cv::copyMakeBorder(shot, bordered, 16, 16, 16, 16, cv::BORDER_CONSTANT, cv::Scalar::all(255));
  cv::resize(shot(cv::Rect(17, 17, 190, 190)), cropped, {224, 224}, 0, 0, cv::INTER_AREA);
  const PerceptualHash a = ComputePerceptualHash(decode(shot));
  EXPECT_LE(HammingDistance(a, ComputePerceptualHash(decode(bordered))), 2);
  EXPECT_LE(HammingDistance(a, ComputePerceptualHash(decode(cropped))), 4);
  cv::Mat other(224, 224, CV_8UC3, cv::Scalar(236, 240, 242));
  cv::circle(other, {112, 112}, 60, cv::Scalar(0, 0, 0), cv::FILLED);
  EXPECT_GE(HammingDistance(a, ComputePerceptualHash(decode(other))), 10);
}

}  // namespace
}  // namespace lookbook

namespace lookbook {
namespace {

TEST(DecodeBudget, ALargeDecodeWaitsForOthersAndOneLargerThanTheBudgetRunsAlone) {
  DecodeBudget budget(100);
  std::atomic<bool> second_started{false};
  std::thread second;
  {
    DecodeBudget::Lease first(&budget, 60);
    second = std::thread([&] {
      DecodeBudget::Lease lease(&budget, 60);  // 120 > 100: waits for the first
      second_started = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(second_started.load());
    DecodeBudget::Lease small(&budget, 30);  // 90 <= 100: beside the first
    EXPECT_EQ(budget.peak(), 90u);
  }
  second.join();
  EXPECT_TRUE(second_started.load());
  EXPECT_EQ(budget.waited(), 1);
  {
    DecodeBudget::Lease huge(&budget, 1000);  // alone: larger than the budget, still granted
    EXPECT_EQ(budget.peak(), 1000u);
  }
  EXPECT_EQ(DecodeBytes(10, 20), 2000u);
}

}  // namespace
}  // namespace lookbook
