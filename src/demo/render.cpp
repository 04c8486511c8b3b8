#include "demo/render.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "demo/fashion_mnist.h"
#include "util/error.h"

namespace lookbook {
namespace {

cv::Mat AsMat(const BgrImage& image) {
  return cv::Mat(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.bgr.data()));
}

BgrImage FromMat(const cv::Mat& mat) {
  LB_CHECK(mat.type() == CV_8UC3, "expected an 8-bit BGR image");
  BgrImage image;
  image.width = mat.cols;
  image.height = mat.rows;
  image.bgr.resize(static_cast<std::size_t>(mat.cols) * mat.rows * 3);
  cv::Mat view(mat.rows, mat.cols, CV_8UC3, image.bgr.data());
  mat.copyTo(view);
  return image;
}

// The garment at `side` pixels: colour (CV_32FC3, 0..255) and alpha (CV_32F, 0..1).
void RenderGarment(const std::uint8_t* garment28, const GarmentColour& colour, int side, cv::Mat* rgb, cv::Mat* alpha) {
  const cv::Mat grey(kFashionSide, kFashionSide, CV_8U, const_cast<std::uint8_t*>(garment28));
  // The silhouette: every garment pixel, with small dark holes (patterns) closed.
  cv::Mat mask = grey > 10;
  cv::morphologyEx(mask, mask, cv::MORPH_CLOSE, cv::getStructuringElement(cv::MORPH_ELLIPSE, {3, 3}));
  cv::Mat mask_float;
  mask.convertTo(mask_float, CV_32F, 1.0 / 255);
  cv::resize(mask_float, *alpha, {side, side}, 0, 0, cv::INTER_LINEAR);
  cv::Mat intensity;
  grey.convertTo(intensity, CV_32F, 1.0 / 255);
  cv::resize(intensity, intensity, {side, side}, 0, 0, cv::INTER_CUBIC);
  cv::Mat shade = 0.45 + 0.55 * cv::min(cv::max(intensity, 0.0), 1.0);
  std::vector<cv::Mat> channels = {shade * colour.b, shade * colour.g, shade * colour.r};
  cv::merge(channels, *rgb);
}

void Composite(cv::Mat* canvas, const cv::Mat& rgb, const cv::Mat& alpha, int x, int y,
               std::vector<std::uint8_t>* labels, DemoSlot slot) {
  for (int row = 0; row < rgb.rows; ++row) {
    const int cy = y + row;
    if (cy < 0 || cy >= canvas->rows) continue;
    for (int col = 0; col < rgb.cols; ++col) {
      const int cx = x + col;
      if (cx < 0 || cx >= canvas->cols) continue;
      const float a = alpha.at<float>(row, col);
      if (a <= 0) continue;
      cv::Vec3f& out = canvas->at<cv::Vec3f>(cy, cx);
      out = out * (1 - a) + rgb.at<cv::Vec3f>(row, col) * a;
      if (labels != nullptr && a > 0.5f) {
        (*labels)[static_cast<std::size_t>(cy) * canvas->cols + cx] = static_cast<std::uint8_t>(slot);
      }
    }
  }
}

// RenderRandomOutfit's draws, on one seeded engine.
class Dice {
 public:
  explicit Dice(std::uint64_t seed) : engine_(seed) {}
  double Uniform(double low, double high) { return std::uniform_real_distribution<double>(low, high)(engine_); }
  int Int(int low, int high) { return std::uniform_int_distribution<int>(low, high)(engine_); }  // inclusive
  bool Chance(double p) { return Uniform(0, 1) < p; }
  std::uint64_t Next() { return engine_(); }

 private:
  std::mt19937_64 engine_;
};

// A background colour at least `apart` (mean absolute difference per channel) from every
// garment's colour, so that no garment vanishes into it; the last draw after 32 tries.
cv::Vec3f BackgroundColour(const std::vector<RandomOutfitGarment>& garments, double apart, Dice* dice) {
  cv::Vec3f colour;
  for (int attempt = 0; attempt < 32; ++attempt) {
    colour = cv::Vec3f(static_cast<float>(dice->Int(0, 255)), static_cast<float>(dice->Int(0, 255)),
                       static_cast<float>(dice->Int(0, 255)));
    bool ok = true;
    for (const auto& garment : garments) {
      const double difference = (std::abs(colour[0] - garment.colour.b) + std::abs(colour[1] - garment.colour.g) +
                                 std::abs(colour[2] - garment.colour.r)) /
                                3.0;
      ok = ok && difference >= apart;
    }
    if (ok) break;
  }
  return colour;
}

// A plain colour, a gradient, stripes, checks or fabric grain, on a CV_32FC3 canvas.
cv::Mat RandomBackground(int width, int height, const std::vector<RandomOutfitGarment>& garments, Dice* dice) {
  const cv::Vec3f first = BackgroundColour(garments, 60, dice);
  cv::Mat canvas(height, width, CV_32FC3, cv::Scalar(first[0], first[1], first[2]));
  const int kind = dice->Int(0, 4);
  if (kind == 0) return canvas;  // plain
  const cv::Vec3f second = BackgroundColour(garments, 40, dice);
  const double angle = dice->Uniform(0, M_PI);
  const double cx = std::cos(angle), sy = std::sin(angle);
  const double period = dice->Uniform(8, 40);
  cv::Mat grain;
  if (kind == 4) {  // fabric: low-frequency noise around the first colour
    cv::Mat coarse(std::max(2, height / 8), std::max(2, width / 8), CV_32F);
    cv::RNG(dice->Next()).fill(coarse, cv::RNG::NORMAL, 0, 1);
    cv::resize(coarse, grain, {width, height}, 0, 0, cv::INTER_CUBIC);
  }
  const double amplitude = dice->Uniform(12, 35);
  const double extent = std::abs(cx) * width + std::abs(sy) * height;
  for (int y = 0; y < height; ++y) {
    auto* row = canvas.ptr<cv::Vec3f>(y);
    for (int x = 0; x < width; ++x) {
      const double along = x * cx + y * sy;
      switch (kind) {
        case 1: {  // gradient
          const auto t = static_cast<float>(std::clamp((along + (cx < 0 ? -cx * width : 0)) / extent, 0.0, 1.0));
          row[x] = first * (1 - t) + second * t;
          break;
        }
        case 2:  // stripes
          if (along - period * std::floor(along / period) < period / 2) row[x] = second;
          break;
        case 3:  // checks
          if ((static_cast<int>(std::floor(x / period)) + static_cast<int>(std::floor(y / period))) % 2 != 0)
            row[x] = second;
          break;
        case 4: row[x] += cv::Vec3f::all(static_cast<float>(amplitude * grain.at<float>(y, x))); break;
        default: break;
      }
    }
  }
  return canvas;
}

// A garment turned by `degrees` about its centre, on a square wide enough for any turn up to
// 15 degrees; *pad is how far that square reaches past the unturned garment's box.
void Turn(double degrees, cv::Mat* rgb, cv::Mat* alpha, int* pad) {
  const int side = rgb->cols;
  *pad = static_cast<int>(std::ceil(side * 0.13));
  const int out = side + 2 * *pad;
  cv::Mat rotation = cv::getRotationMatrix2D({side / 2.0f, side / 2.0f}, degrees, 1.0);
  rotation.at<double>(0, 2) += *pad;
  rotation.at<double>(1, 2) += *pad;
  cv::Mat turned_rgb, turned_alpha;
  cv::warpAffine(*rgb, turned_rgb, rotation, {out, out}, cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  cv::warpAffine(*alpha, turned_alpha, rotation, {out, out}, cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  *rgb = turned_rgb;
  *alpha = turned_alpha;
}

}  // namespace

const char* DemoSlotName(DemoSlot slot) {
  switch (slot) {
    case DemoSlot::kBackground: return "background";
    case DemoSlot::kTop: return "top";
    case DemoSlot::kBottom: return "bottom";
    case DemoSlot::kDress: return "dress";
    case DemoSlot::kShoes: return "shoes";
    case DemoSlot::kBag: return "bag";
  }
  return "unknown";
}

DemoSlot SlotOfFashionClass(int fashion_class) {
  switch (fashion_class) {
    case 0:
    case 2:
    case 4:
    case 6: return DemoSlot::kTop;  // T-shirt, pullover, coat, shirt
    case 1: return DemoSlot::kBottom;
    case 3: return DemoSlot::kDress;
    case 5:
    case 7:
    case 9: return DemoSlot::kShoes;  // sandal, sneaker, ankle boot
    case 8: return DemoSlot::kBag;
    default: break;
  }
  LB_CHECK(false, "Fashion-MNIST class out of range: " + std::to_string(fashion_class));
  return DemoSlot::kBackground;
}

const std::vector<GarmentColour>& DemoPalette() {
  static const std::vector<GarmentColour> kPalette = {
      {"red", 40, 40, 200},     {"blue", 200, 90, 30},    {"green", 60, 150, 40},  {"yellow", 40, 210, 230},
      {"black", 35, 35, 35},    {"navy", 90, 40, 20},     {"pink", 180, 130, 240}, {"orange", 30, 130, 245},
      {"purple", 140, 50, 120}, {"brown", 40, 70, 120},   {"grey", 128, 128, 128}, {"olive", 40, 128, 128},
      {"teal", 128, 128, 0},    {"beige", 160, 200, 220}, {"maroon", 40, 30, 120},
  };
  return kPalette;
}

BgrImage RenderProductShot(const std::uint8_t* garment28, const GarmentColour& colour, int side,
                           std::uint8_t background) {
  const int garment_side = side * 7 / 8;
  cv::Mat rgb, alpha;
  RenderGarment(garment28, colour, garment_side, &rgb, &alpha);
  cv::Mat canvas(side, side, CV_32FC3, cv::Scalar::all(background));
  const int offset = (side - garment_side) / 2;
  Composite(&canvas, rgb, alpha, offset, offset, nullptr, DemoSlot::kBackground);
  cv::Mat out;
  canvas.convertTo(out, CV_8UC3);
  return FromMat(out);
}

OutfitPhoto RenderOutfit(const std::vector<OutfitItem>& items, int side, std::uint8_t background) {
  cv::Mat canvas(side, side, CV_32FC3, cv::Scalar::all(background));
  OutfitPhoto result;
  result.labels.assign(static_cast<std::size_t>(side) * side, 0);
  for (const auto& item : items) {
    cv::Mat rgb, alpha;
    RenderGarment(item.garment28, item.colour, item.side, &rgb, &alpha);
    Composite(&canvas, rgb, alpha, item.x, item.y, &result.labels, item.slot);
  }
  cv::Mat out;
  canvas.convertTo(out, CV_8UC3);
  result.photo = FromMat(out);
  return result;
}

OutfitPhoto RenderRandomOutfit(const std::vector<RandomOutfitGarment>& garments, std::uint64_t seed) {
  Dice dice(seed);
  const int short_side = dice.Int(320, 640);
  const double aspect = std::exp(dice.Uniform(std::log(0.6), std::log(1.67)));
  const int width = aspect >= 1 ? static_cast<int>(std::lround(short_side * aspect)) : short_side;
  const int height = aspect >= 1 ? short_side : static_cast<int>(std::lround(short_side / aspect));
  cv::Mat canvas = RandomBackground(width, height, garments, &dice);
  OutfitPhoto result;
  result.labels.assign(static_cast<std::size_t>(width) * height, 0);

  // Where each garment goes: its box (x, y, side) before turning.
  std::vector<cv::Rect> boxes;
  const std::size_t n = garments.size();
  if (dice.Chance(0.5)) {  // grid
    const int cols = aspect >= 1 ? static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n)) * std::sqrt(aspect)))
                                 : static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n)) * aspect));
    const int columns = std::clamp(cols, 1, static_cast<int>(n));
    const int rows = static_cast<int>((n + static_cast<std::size_t>(columns) - 1) / static_cast<std::size_t>(columns));
    std::vector<int> cells(static_cast<std::size_t>(rows * columns));
    for (std::size_t i = 0; i < cells.size(); ++i) cells[i] = static_cast<int>(i);
    for (std::size_t i = cells.size(); i > 1; --i) std::swap(cells[i - 1], cells[dice.Next() % i]);
    const int cell_w = width / columns, cell_h = height / rows;
    for (std::size_t i = 0; i < n; ++i) {
      const int side = static_cast<int>(std::min(cell_w, cell_h) * dice.Uniform(0.62, 0.9));
      const int cell = cells[i];
      const int x0 = (cell % columns) * cell_w, y0 = (cell / columns) * cell_h;
      boxes.emplace_back(x0 + dice.Int(0, cell_w - side), y0 + dice.Int(0, cell_h - side), side, side);
    }
  } else {  // free: anywhere, overlapping an earlier garment's box by at most a quarter
    for (std::size_t i = 0; i < n; ++i) {
      cv::Rect best;
      double best_overlap = 2;
      for (int attempt = 0; attempt < 40 && best_overlap > 0.25; ++attempt) {
        const int side = static_cast<int>(short_side * dice.Uniform(0.28, 0.55));
        const cv::Rect box(dice.Int(-side / 20, width - side * 19 / 20), dice.Int(-side / 20, height - side * 19 / 20),
                           side, side);
        double overlap = 0;
        for (const cv::Rect& other : boxes) {
          overlap = std::max(overlap, static_cast<double>((box & other).area()) / std::min(box.area(), other.area()));
        }
        if (overlap < best_overlap) {
          best_overlap = overlap;
          best = box;
        }
      }
      boxes.push_back(best);
    }
  }

  for (std::size_t i = 0; i < n; ++i) {
    const auto& garment = garments[i];
    cv::Mat rgb, alpha;
    RenderGarment(garment.garment28, garment.colour, boxes[i].width, &rgb, &alpha);
    int pad = 0;
    Turn(dice.Uniform(-12, 12), &rgb, &alpha, &pad);
    const int x = boxes[i].x - pad, y = boxes[i].y - pad;
    if (dice.Chance(0.5)) {  // a soft drop shadow on what lies below
      cv::Mat shadow;
      const double blur = std::max(1.0, boxes[i].width / 25.0);
      cv::GaussianBlur(alpha, shadow, {0, 0}, blur);
      const int dx = static_cast<int>(boxes[i].width * dice.Uniform(-0.05, 0.05));
      const int dy = static_cast<int>(boxes[i].width * dice.Uniform(0.01, 0.06));
      const auto strength = static_cast<float>(dice.Uniform(0.25, 0.55));
      for (int row = 0; row < shadow.rows; ++row) {
        const int cy = y + dy + row;
        if (cy < 0 || cy >= height) continue;
        for (int col = 0; col < shadow.cols; ++col) {
          const int cx = x + dx + col;
          if (cx < 0 || cx >= width) continue;
          canvas.at<cv::Vec3f>(cy, cx) *= 1 - strength * shadow.at<float>(row, col);
        }
      }
    }
    Composite(&canvas, rgb, alpha, x, y, &result.labels, garment.slot);
  }
  if (dice.Chance(0.4)) {  // sensor noise
    cv::Mat noise(canvas.size(), CV_32FC3);
    cv::RNG(dice.Next()).fill(noise, cv::RNG::NORMAL, 0, dice.Uniform(3, 12));
    canvas += noise;
  }
  cv::Mat out;
  canvas.convertTo(out, CV_8UC3);  // saturates
  result.photo = FromMat(out);
  return result;
}

OutfitItem PlaceInOutfit(const std::uint8_t* garment28, const GarmentColour& colour, DemoSlot slot, int jitter_x,
                         int jitter_y) {
  OutfitItem item{garment28, colour, slot, 0, 0, 0};
  switch (slot) {
    case DemoSlot::kTop:
      item.x = 16;
      item.y = 12;
      item.side = 200;
      break;
    case DemoSlot::kBottom:
      item.x = 24;
      item.y = 220;
      item.side = 210;
      break;
    case DemoSlot::kDress:
      item.x = 16;
      item.y = 80;
      item.side = 250;
      break;
    case DemoSlot::kShoes:
      item.x = 272;
      item.y = 262;
      item.side = 160;
      break;
    case DemoSlot::kBag:
      item.x = 272;
      item.y = 30;
      item.side = 160;
      break;
    case DemoSlot::kBackground: LB_CHECK(false, "background is not a garment slot");
  }
  item.x += jitter_x;
  item.y += jitter_y;
  return item;
}

RgbImage ToRgb(const BgrImage& image) {
  RgbImage rgb{image.width, image.height, std::vector<std::uint8_t>(image.bgr.size())};
  for (std::size_t i = 0; i < image.bgr.size(); i += 3) {
    rgb.rgb[i] = image.bgr[i + 2];
    rgb.rgb[i + 1] = image.bgr[i + 1];
    rgb.rgb[i + 2] = image.bgr[i];
  }
  return rgb;
}

const char* CopyTransformName(CopyTransform transform) {
  switch (transform) {
    case CopyTransform::kReencode: return "reencode";
    case CopyTransform::kCrop: return "crop";
    case CopyTransform::kResize: return "resize";
    case CopyTransform::kBorder: return "border";
    case CopyTransform::kBrighten: return "brighten";
    case CopyTransform::kRotate: return "rotate";
  }
  return "unknown";
}

std::vector<std::uint8_t> EncodeJpeg(const BgrImage& image, int quality) {
  std::vector<std::uint8_t> bytes;
  LB_CHECK(cv::imencode(".jpg", AsMat(image), bytes, {cv::IMWRITE_JPEG_QUALITY, quality}), "JPEG encoding failed");
  return bytes;
}

std::vector<std::uint8_t> EncodePngGray(const std::vector<std::uint8_t>& gray, int width, int height) {
  const cv::Mat mat(height, width, CV_8U, const_cast<std::uint8_t*>(gray.data()));
  std::vector<std::uint8_t> bytes;
  LB_CHECK(cv::imencode(".png", mat, bytes), "PNG encoding failed");
  return bytes;
}

BgrImage ApplyCopyTransform(const BgrImage& image, CopyTransform transform) {
  const cv::Mat source = AsMat(image);
  cv::Mat out;
  const int side = source.cols;
  switch (transform) {
    case CopyTransform::kReencode: {
      // The quality loss happens in EncodeJpeg; here a round trip at quality 30 bakes it in.
      cv::Mat decoded = cv::imdecode(EncodeJpeg(image, 30), cv::IMREAD_COLOR);
      out = decoded;
      break;
    }
    case CopyTransform::kCrop: {
      const int keep = side * 85 / 100;
      const int offset = (side - keep) / 2;
      cv::resize(source(cv::Rect(offset, offset, keep, keep)), out, {side, side}, 0, 0, cv::INTER_AREA);
      break;
    }
    case CopyTransform::kResize: cv::resize(source, out, {side * 5 / 7, side * 5 / 7}, 0, 0, cv::INTER_AREA); break;
    case CopyTransform::kBorder: {
      const int border = std::max(1, side * 16 / 224);  // 16 px on a 224 px shot
      cv::copyMakeBorder(source, out, border, border, border, border, cv::BORDER_CONSTANT, cv::Scalar::all(255));
      break;
    }
    case CopyTransform::kBrighten: source.convertTo(out, CV_8UC3, 1.0, 35); break;
    case CopyTransform::kRotate: {
      const cv::Mat rotation = cv::getRotationMatrix2D({side / 2.0f, side / 2.0f}, 5.0, 1.0);
      cv::warpAffine(source, out, rotation, source.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
      break;
    }
  }
  return FromMat(out);
}

}  // namespace lookbook
