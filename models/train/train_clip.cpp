// train_clip: trains the demo CLIP-style dual encoder on Fashion-MNIST's train split, rendered
// exactly as the demo catalog renders its product shots, and (with --photos) on real product
// photos, and writes a lookbook bundle.
//
//   train_clip --out models/demo/clip [--steps 2200] [--batch 96] [--seed 1] [--threads 2]
//              [--photos DIR [--photo-batch 32]]
//
// --photos: a folder of class folders of real photos (the CC0 clothing-dataset-small train split,
// alexeygrigorev/clothing-dataset-small on GitHub, its train/ folder). Only
// the even half of each class (every other photo in name order, the tune half of
// tests/bench/photo_relistings.py) is used, so that the odd half stays unseen for reporting.
// Each step adds --photo-batch photos: their captions name their class in words
// (PhotoClassWords: "longsleeve" is "long sleeve top"), a class term against the ten photo
// classes, and the instance term with relisting edits as positives (a crop, a white border, a
// small rotation, a downscale, a brighter copy, a watermark, a harsh re-encode; one or two).
//
// Image tower: a small CNN (group norm, ReLU, three poolings) on 32x32 input, then a linear
// projection to 128 and L2 normalisation. Text tower: word embeddings averaged, a two-layer
// MLP to 128, L2 normalisation. Loss: CLIP's symmetric contrastive loss between images and
// captions ("a photo of a red ankle boot"; several templates, some without the colour; a
// caption is a positive of every image it describes: same class, same colour unless it names
// none), CLIP's zero-shot classification as a term (each image against one colourless
// caption per class, all ten classes every step), plus an instance term: two
// views of the same product (clean, or after a copy transform: crop, re-encode, resize,
// border, brightness, rotation) must be closer than any other product in the batch,
// including the same garment in another colour (a colour variant is not a duplicate). A third
// of the second views look like a garment cut out of an outfit photo (turned up to 12 degrees,
// partly occluded, at another scale, JPEG 40-95), so that a detected garment finds its product.
// Fixed seeds, CPU only; the whole run is deterministic for a given thread count.
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "demo/fashion_mnist.h"
#include "demo/render.h"
#include "image/preprocess.h"
#include "model/bundle.h"
#include "model/text_tokenizer.h"

namespace {

using lookbook::DemoPalette;
using lookbook::FashionClassNames;

constexpr int kInput = 32;
constexpr int kDim = 128;
constexpr int kContext = 16;
constexpr int kRenderSide = 64;

lookbook::PreprocessSpec Spec() {
  lookbook::PreprocessSpec spec;
  spec.size = kInput;
  spec.resize = lookbook::ResizePolicy::kShortSideCenterCrop;
  spec.mean = {0.8f, 0.8f, 0.8f};
  spec.std = {0.3f, 0.3f, 0.3f};
  return spec;
}

std::string ClassPhrase(int label) {
  std::string name = FashionClassNames()[static_cast<std::size_t>(label)];
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return name;
}

std::string Caption(int label, const std::string& colour, int template_id) {
  const std::string k = ClassPhrase(label);
  switch (template_id) {
    case 0: return "a photo of a " + colour + " " + k;
    case 1: return "a " + colour + " " + k;
    case 2: return "a photo of a " + k;
    case 3: return k;
    case 4: return "a " + k + " in " + colour;
    default: return colour + " " + k + ", product photo";
  }
}

// The words of the real photos' class folders: the first phrase is the class's name in
// zero-shot prompts (what `lookbook recs --category-names` should say), the others are
// synonyms captions use too. A folder not listed here is described by its own name.
const std::vector<std::pair<std::string, std::vector<std::string>>>& PhotoClassWords() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> words = {
      {"dress", {"dress"}},
      {"hat", {"hat", "cap"}},
      {"longsleeve", {"long sleeve top", "long sleeve shirt"}},
      {"outwear", {"jacket", "coat"}},
      {"pants", {"pants", "trousers"}},
      {"shirt", {"shirt", "button shirt"}},
      {"shoes", {"shoes", "sneakers"}},
      {"shorts", {"shorts"}},
      {"skirt", {"skirt"}},
      {"t-shirt", {"t-shirt", "tee"}},
  };
  return words;
}

std::vector<std::string> WordsOfPhotoClass(const std::string& folder) {
  for (const auto& [name, phrases] : PhotoClassWords()) {
    if (name == folder) return phrases;
  }
  return {folder};
}

constexpr int kPhotoTemplates = 5;
std::string PhotoCaption(const std::string& phrase, int template_id) {
  switch (template_id) {
    case 0: return "a photo of a " + phrase;
    case 1: return "a " + phrase;
    case 2: return phrase;
    case 3: return "a picture of a " + phrase;
    default: return phrase + ", product photo";
  }
}

std::vector<std::string> Vocabulary() {
  std::set<std::string> words;
  const lookbook::WordTokenizer splitter({"<pad>", "<start>", "<end>", "<unk>"});
  for (int label = 0; label < lookbook::kFashionClasses; ++label) {
    for (const auto& colour : DemoPalette()) {
      for (int t = 0; t < 6; ++t) {
        for (const auto& word : splitter.Words(Caption(label, colour.name, t))) words.insert(word);
      }
    }
  }
  for (const char* extra : {"the", "an", "picture", "image", "with", "and", "for", "women", "men", "kids"})
    words.insert(extra);
  for (const auto& [folder, phrases] : PhotoClassWords()) {
    for (const auto& phrase : phrases) {
      for (int t = 0; t < kPhotoTemplates; ++t) {
        for (const auto& word : splitter.Words(PhotoCaption(phrase, t))) words.insert(word);
      }
    }
  }
  std::vector<std::string> vocabulary = {"<pad>", "<start>", "<end>", "<unk>"};
  vocabulary.insert(vocabulary.end(), words.begin(), words.end());
  return vocabulary;
}

torch::Tensor Kaiming(std::vector<int64_t> shape, int64_t fan_in) {
  return torch::randn(shape) * std::sqrt(2.0 / static_cast<double>(fan_in));
}

torch::jit::Module ImageTower() {
  torch::jit::Module m("DemoClipImageTower");
  const std::vector<std::pair<int, int>> convs = {{3, 32},   {32, 32},   {32, 64},  {64, 64},
                                                  {64, 128}, {128, 128}, {128, 256}};
  for (std::size_t i = 0; i < convs.size(); ++i) {
    const auto [in, out] = convs[i];
    m.register_parameter("w" + std::to_string(i), Kaiming({out, in, 3, 3}, in * 9), false);
    m.register_parameter("b" + std::to_string(i), torch::zeros({out}), false);
    m.register_parameter("g" + std::to_string(i), torch::ones({out}), false);
    m.register_parameter("h" + std::to_string(i), torch::zeros({out}), false);
  }
  m.register_parameter("projection", torch::randn({256, kDim}) / 16.0, false);
  std::string code = "def forward(self, x):\n";
  auto block = [&](int i) {
    const std::string n = std::to_string(i);
    code += "    x = torch.relu(torch.group_norm(torch.conv2d(x, self.w" + n + ".to(x.dtype), self.b" + n +
            ".to(x.dtype), [1, 1], [1, 1]), 8, self.g" + n + ".to(x.dtype), self.h" + n + ".to(x.dtype)))\n";
  };
  block(0);
  block(1);
  code += "    x = torch.max_pool2d(x, [2, 2])\n";
  block(2);
  block(3);
  code += "    x = torch.max_pool2d(x, [2, 2])\n";
  block(4);
  block(5);
  code += "    x = torch.max_pool2d(x, [2, 2])\n";
  block(6);
  code += "    x = x.mean([2, 3])\n";
  code += "    y = torch.matmul(x, self.projection.to(x.dtype))\n";
  code += "    return y / y.norm(2, [1], True).clamp_min(1e-6)\n";
  m.define(code);
  return m;
}

torch::jit::Module TextTower(int64_t vocabulary) {
  torch::jit::Module m("DemoClipTextTower");
  m.register_parameter("embedding", torch::randn({vocabulary, 256}) * 0.1, false);
  m.register_parameter("w1", Kaiming({256, 256}, 256), false);
  m.register_parameter("b1", torch::zeros({256}), false);
  m.register_parameter("w2", torch::randn({256, kDim}) / 16.0, false);
  m.register_parameter("b2", torch::zeros({kDim}), false);
  m.define(R"JIT(
def forward(self, tokens):
    e = torch.embedding(self.embedding, tokens)
    mask = (tokens > 3).unsqueeze(2).to(e.dtype)
    pooled = (e * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    h = torch.relu(torch.matmul(pooled, self.w1) + self.b1)
    y = torch.matmul(h, self.w2) + self.b2
    return y / y.norm(2, [1], True).clamp_min(1e-6)
)JIT");
  return m;
}

// The module's parameters, made trainable (register_parameter does not set requires_grad).
std::vector<torch::Tensor> Parameters(const torch::jit::Module& module) {
  std::vector<torch::Tensor> out;
  for (auto p : module.parameters()) {
    p.set_requires_grad(true);
    out.push_back(p);
  }
  return out;
}

// One product view, preprocessed as the embed stage does (area resize to the model input).
// Shots are rendered at kRenderSide, not the catalog's 224: the model sees 32 px, and
// rendering at 224 cost more than the training step itself.
void View(const lookbook::BgrImage& shot, std::mt19937& rng, bool transform, float* out) {
  lookbook::BgrImage image = shot;
  if (transform) {
    image =
        lookbook::ApplyCopyTransform(shot, static_cast<lookbook::CopyTransform>(rng() % lookbook::kCopyTransformCount));
  }
  lookbook::Preprocess(lookbook::ToRgb(image), Spec(), out);
}

cv::Mat AsMat(const lookbook::BgrImage& image) {
  return cv::Mat(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.bgr.data())).clone();
}

lookbook::RgbImage RgbOf(const cv::Mat& bgr) {
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  lookbook::RgbImage out;
  out.width = rgb.cols;
  out.height = rgb.rows;
  out.rgb.assign(rgb.data, rgb.data + rgb.total() * 3);
  return out;
}

float Uniform(std::mt19937& rng, float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }

cv::Mat JpegRoundTrip(const cv::Mat& image, int quality) {
  std::vector<std::uint8_t> bytes;
  cv::imencode(".jpg", image, bytes, {cv::IMWRITE_JPEG_QUALITY, quality});
  return cv::imdecode(bytes, cv::IMREAD_COLOR);
}

// Turned by `degrees` about the centre, the frame grown to hold the whole picture, `fill`
// in the corners.
cv::Mat Turn(const cv::Mat& image, float degrees, const cv::Scalar& fill) {
  const double radians = degrees * M_PI / 180.0;
  const double c = std::abs(std::cos(radians)), s = std::abs(std::sin(radians));
  const int w = static_cast<int>(std::lround(image.cols * c + image.rows * s));
  const int h = static_cast<int>(std::lround(image.cols * s + image.rows * c));
  cv::Mat rotation = cv::getRotationMatrix2D({image.cols / 2.0f, image.rows / 2.0f}, degrees, 1.0);
  rotation.at<double>(0, 2) += (w - image.cols) / 2.0;
  rotation.at<double>(1, 2) += (h - image.rows) / 2.0;
  cv::Mat out;
  cv::warpAffine(image, out, rotation, {w, h}, cv::INTER_LINEAR, cv::BORDER_CONSTANT, fill);
  return out;
}

// The relisting edits of tests/bench/photo_relistings.py (same ranges), plus a watermark.
enum PhotoEdit { kEditCrop, kEditBorder, kEditRotate, kEditDownscale, kEditBrighter, kEditReencode, kEditWatermark };
constexpr int kPhotoEdits = 7;

cv::Mat EditPhoto(const cv::Mat& image, int edit, std::mt19937& rng) {
  const cv::Scalar white(255, 255, 255);
  switch (edit) {
    case kEditCrop: {
      const float f = Uniform(rng, 0.82f, 0.93f);
      const int cw = std::max(1, static_cast<int>(image.cols * f)), ch = std::max(1, static_cast<int>(image.rows * f));
      const int x = static_cast<int>(rng() % static_cast<unsigned>(image.cols - cw + 1));
      const int y = static_cast<int>(rng() % static_cast<unsigned>(image.rows - ch + 1));
      return image(cv::Rect(x, y, cw, ch)).clone();
    }
    case kEditBorder: {
      const int b = std::max(1, static_cast<int>(std::min(image.cols, image.rows) * Uniform(rng, 0.05f, 0.15f)));
      cv::Mat out;
      cv::copyMakeBorder(image, out, b, b, b, b, cv::BORDER_CONSTANT, white);
      return out;
    }
    case kEditRotate: return Turn(image, (rng() % 2 ? 1.0f : -1.0f) * Uniform(rng, 2.0f, 6.0f), white);
    case kEditDownscale: {
      const float f = Uniform(rng, 0.5f, 0.75f);
      cv::Mat out;
      cv::resize(image, out,
                 {std::max(1, static_cast<int>(image.cols * f)), std::max(1, static_cast<int>(image.rows * f))}, 0, 0,
                 cv::INTER_AREA);
      return out;
    }
    case kEditBrighter: {
      cv::Mat out;
      image.convertTo(out, CV_8UC3, Uniform(rng, 1.08f, 1.2f), 0);
      return out;
    }
    case kEditReencode: return JpegRoundTrip(image, 25 + static_cast<int>(rng() % 21));
    default: {
      // A shop's mark: light text across a random part of the photo, partly transparent.
      static const char* kMarks[] = {"SALE", "shop.com", "NEW", "(c) store"};
      cv::Mat marked = image.clone();
      const double scale = image.cols / 160.0 * Uniform(rng, 0.6f, 1.4f);
      const cv::Point at(
          static_cast<int>(rng() % static_cast<unsigned>(std::max(1, image.cols / 2))),
          static_cast<int>(image.rows / 4 + rng() % static_cast<unsigned>(std::max(1, image.rows * 3 / 4))));
      const int grey = 200 + static_cast<int>(rng() % 56);
      cv::putText(marked, kMarks[rng() % 4], at, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(grey, grey, grey),
                  std::max(1, static_cast<int>(scale * 2)));
      cv::Mat out;
      cv::addWeighted(marked, 0.6, image, 0.4, 0.0, out);
      return out;
    }
  }
}

// A real photo as a relisted copy might show it: one or two distinct edits.
void PhotoView(const cv::Mat& photo, std::mt19937& rng, int edits, float* out) {
  cv::Mat image = photo;
  int first = -1;
  for (int e = 0; e < edits; ++e) {
    int edit = static_cast<int>(rng() % kPhotoEdits);
    while (edit == first) edit = static_cast<int>(rng() % kPhotoEdits);
    first = edit;
    image = EditPhoto(image, edit, rng);
  }
  lookbook::Preprocess(RgbOf(image), Spec(), out);
}

// A product shot as a garment cut out of an outfit photo looks (lookbook's MakeGarmentCrop:
// the garment on crop_fill grey, square, a small margin): turned by up to 12 degrees, partly
// hidden under another garment, at another scale in its square, re-encoded at JPEG 40-95.
void CropLikeView(const lookbook::BgrImage& shot, std::mt19937& rng, float* out) {
  const cv::Scalar fill(245, 245, 245);
  cv::Mat image = Turn(AsMat(shot), Uniform(rng, -12.0f, 12.0f), fill);
  if (rng() % 2 == 0) {
    // Up to a quarter of the frame, from one edge, hidden (the mask leaves it out).
    const int side = rng() % 4;
    const float share = Uniform(rng, 0.08f, 0.25f);
    const int w = image.cols, h = image.rows;
    cv::Rect hidden = side == 0   ? cv::Rect(0, 0, w, static_cast<int>(h * share))
                      : side == 1 ? cv::Rect(0, h - static_cast<int>(h * share), w, static_cast<int>(h * share))
                      : side == 2 ? cv::Rect(0, 0, static_cast<int>(w * share), h)
                                  : cv::Rect(w - static_cast<int>(w * share), 0, static_cast<int>(w * share), h);
    image(hidden).setTo(fill);
  }
  const int pad = static_cast<int>(image.cols * Uniform(rng, 0.0f, 0.25f));
  cv::copyMakeBorder(image, image, pad, pad, pad, pad, cv::BORDER_CONSTANT, fill);
  image = JpegRoundTrip(image, 40 + static_cast<int>(rng() % 56));
  lookbook::Preprocess(RgbOf(image), Spec(), out);
}

struct Photos {
  std::vector<std::string> classes;  // folder names, sorted
  std::size_t unreadable = 0;        // photos OpenCV could not decode, skipped
  std::vector<cv::Mat> images;       // BGR, short side kPhotoSide
  std::vector<int> labels;           // index into classes
};
constexpr int kPhotoSide = 96;

// The even half of every class folder (every other photo in name order), shrunk to kPhotoSide.
Photos LoadPhotos(const std::filesystem::path& root) {
  Photos photos;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (entry.is_directory()) photos.classes.push_back(entry.path().filename().string());
  }
  std::sort(photos.classes.begin(), photos.classes.end());
  for (std::size_t c = 0; c < photos.classes.size(); ++c) {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(root / photos.classes[c])) {
      std::string ext = entry.path().extension().string();
      for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    for (std::size_t i = 0; i < names.size(); i += 2) {
      const cv::Mat image = cv::imread((root / photos.classes[c] / names[i]).string(), cv::IMREAD_COLOR);
      if (image.empty()) {
        std::cerr << "skipping unreadable photo " << (root / photos.classes[c] / names[i]) << "\n";
        ++photos.unreadable;
        continue;
      }
      const double f = static_cast<double>(kPhotoSide) / std::min(image.cols, image.rows);
      cv::Mat small;
      cv::resize(image, small,
                 {std::max(1, static_cast<int>(std::lround(image.cols * f))),
                  std::max(1, static_cast<int>(std::lround(image.rows * f)))},
                 0, 0, cv::INTER_AREA);
      photos.images.push_back(small);
      photos.labels.push_back(static_cast<int>(c));
    }
  }
  return photos;
}

// Soft-target contrastive loss between images and captions: describes[i][j] says caption j is
// true of image i.
torch::Tensor CaptionLoss(const torch::Tensor& images, const torch::Tensor& texts, const torch::Tensor& describes,
                          const torch::Tensor& scale) {
  const auto image_targets = describes / describes.sum(1, true);
  const auto text_targets = describes.t() / describes.t().sum(1, true);
  const auto logits = scale * torch::matmul(images, texts.t());
  return -(image_targets * torch::log_softmax(logits, 1)).sum(1).mean() -
         (text_targets * torch::log_softmax(logits.t(), 1)).sum(1).mean();
}

std::string Sha(const std::filesystem::path& path) { return lookbook::Sha256File(path); }

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  std::string photos_dir;
  int steps = 2200, batch = 96, threads = 2, photo_batch = 32;
  unsigned seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--out"))
      out = argv[i + 1];
    else if (!std::strcmp(argv[i], "--steps"))
      steps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--batch"))
      batch = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seed"))
      seed = static_cast<unsigned>(std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--threads"))
      threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--photos"))
      photos_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--photo-batch"))
      photo_batch = std::atoi(argv[i + 1]);
    else {
      std::cerr << "unknown option " << argv[i] << "\n";
      return 2;
    }
  }
  if (out.empty()) {
    std::cerr << "usage: train_clip --out DIR [--steps N] [--batch B] [--seed S] [--threads T] [--photos DIR "
                 "[--photo-batch P]]\n";
    return 2;
  }
  torch::manual_seed(seed);
  torch::set_num_threads(threads);
  std::mt19937 rng(seed);
  const auto data = lookbook::FashionMnist::Load(lookbook::kFashionMnistDir, lookbook::FashionSplit::kTrain);
  Photos photos;
  if (!photos_dir.empty()) {
    photos = LoadPhotos(photos_dir);
    if (photos.images.empty()) {
      std::cerr << "no photos under " << photos_dir << "\n";
      return 2;
    }
    std::printf("%zu photos (even half) in %zu classes from %s, %zu unreadable skipped\n", photos.images.size(),
                photos.classes.size(), photos_dir.c_str(), photos.unreadable);
  } else {
    photo_batch = 0;
  }
  const auto vocabulary = Vocabulary();
  const lookbook::WordTokenizer tokenizer(vocabulary);
  torch::jit::Module image = ImageTower();
  torch::jit::Module text = TextTower(static_cast<int64_t>(vocabulary.size()));
  image.train();
  text.train();
  torch::Tensor logit_scale = torch::full({1}, std::log(1 / 0.07), torch::requires_grad());
  std::vector<torch::Tensor> parameters = Parameters(image);
  for (const auto& p : Parameters(text)) parameters.push_back(p);
  parameters.push_back(logit_scale);
  torch::optim::AdamW optimizer(parameters, torch::optim::AdamWOptions(2e-3).weight_decay(1e-4));

  const auto& palette = DemoPalette();
  const std::size_t floats = 3 * kInput * kInput;
  const auto start = std::chrono::steady_clock::now();
  for (int step = 0; step < steps; ++step) {
    // Cosine learning-rate decay.
    const double lr = 1e-4 + 0.5 * (2e-3 - 1e-4) * (1 + std::cos(M_PI * step / steps));
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    // A quarter of the batch: colour variants of other items (same garment, other colour).
    std::vector<std::size_t> garments(static_cast<std::size_t>(batch));
    std::vector<int> colours(static_cast<std::size_t>(batch));
    const int variants = batch / 4;
    for (int i = 0; i < batch; ++i) {
      if (i >= batch - variants) {
        garments[static_cast<std::size_t>(i)] = garments[static_cast<std::size_t>(i - (batch - variants))];
        colours[static_cast<std::size_t>(i)] = static_cast<int>(
            (colours[static_cast<std::size_t>(i - (batch - variants))] + 1 + rng() % (palette.size() - 1)) %
            palette.size());
      } else {
        garments[static_cast<std::size_t>(i)] = rng() % data.size();
        colours[static_cast<std::size_t>(i)] = static_cast<int>(rng() % palette.size());
      }
    }
    std::vector<float> view_a(static_cast<std::size_t>(batch) * floats), view_b(view_a.size());
    std::vector<std::string> captions;
    std::vector<bool> caption_has_colour;
    std::vector<int64_t> tokens;
    for (int i = 0; i < batch; ++i) {
      const auto g = garments[static_cast<std::size_t>(i)];
      const auto& colour = palette[static_cast<std::size_t>(colours[static_cast<std::size_t>(i)])];
      const auto shot =
          lookbook::RenderProductShot(data.image(g), colour, kRenderSide, static_cast<std::uint8_t>(240 + rng() % 11));
      View(shot, rng, rng() % 2 == 0, view_a.data() + static_cast<std::size_t>(i) * floats);
      if (rng() % 3 == 0) {
        CropLikeView(shot, rng, view_b.data() + static_cast<std::size_t>(i) * floats);
      } else {
        View(shot, rng, true, view_b.data() + static_cast<std::size_t>(i) * floats);
      }
      const int template_id = static_cast<int>(rng() % 6);
      captions.push_back(Caption(data.labels[g], colour.name, template_id));
      caption_has_colour.push_back(template_id != 2 && template_id != 3);
      for (const auto id : tokenizer.EncodeForModel(captions.back(), kContext)) tokens.push_back(id);
    }
    // Real photos: two views each (clean or one edit; one or two edits), flipped and cropped
    // alike first, and a caption naming the class in words.
    std::vector<float> photo_a(static_cast<std::size_t>(photo_batch) * floats), photo_b(photo_a.size());
    std::vector<int> photo_labels;
    for (int i = 0; i < photo_batch; ++i) {
      const std::size_t p = rng() % photos.images.size();
      cv::Mat base = photos.images[p];
      const float keep = Uniform(rng, 0.85f, 1.0f);
      const int cw = std::max(1, static_cast<int>(base.cols * keep)),
                ch = std::max(1, static_cast<int>(base.rows * keep));
      base = base(cv::Rect(static_cast<int>(rng() % static_cast<unsigned>(base.cols - cw + 1)),
                           static_cast<int>(rng() % static_cast<unsigned>(base.rows - ch + 1)), cw, ch))
                 .clone();
      if (rng() % 2 == 0) cv::flip(base, base, 1);
      const int edits_a = rng() % 2 == 0 ? 0 : 1, edits_b = rng() % 3 == 0 ? 2 : 1;
      PhotoView(base, rng, edits_a, photo_a.data() + static_cast<std::size_t>(i) * floats);
      PhotoView(base, rng, edits_b, photo_b.data() + static_cast<std::size_t>(i) * floats);
      photo_labels.push_back(photos.labels[p]);
      const auto phrases = WordsOfPhotoClass(photos.classes[static_cast<std::size_t>(photos.labels[p])]);
      const std::string caption =
          PhotoCaption(phrases[rng() % phrases.size()], static_cast<int>(rng() % kPhotoTemplates));
      for (const auto id : tokenizer.EncodeForModel(caption, kContext)) tokens.push_back(id);
    }
    const int all = batch + photo_batch;
    auto a = torch::from_blob(view_a.data(), {batch, 3, kInput, kInput}).clone();
    auto b = torch::from_blob(view_b.data(), {batch, 3, kInput, kInput}).clone();
    if (photo_batch > 0) {
      a = torch::cat({a, torch::from_blob(photo_a.data(), {photo_batch, 3, kInput, kInput}).clone()});
      b = torch::cat({b, torch::from_blob(photo_b.data(), {photo_batch, 3, kInput, kInput}).clone()});
    }
    const auto t = torch::from_blob(tokens.data(), {all, kContext}, torch::kInt64).clone();
    const auto images = image.forward({torch::cat({a, b})}).toTensor();
    const auto ia_all = images.slice(0, 0, all), ib_all = images.slice(0, all);
    const auto ia = ia_all.slice(0, 0, batch), ib = ib_all.slice(0, 0, batch);
    const auto all_texts = text.forward({t}).toTensor();
    const auto texts = all_texts.slice(0, 0, batch);

    // Image-caption loss. A caption is a positive for every image it truly describes: the
    // same class, and the same colour unless the caption names none ("a photo of a shirt"
    // describes a red shirt too). Counting those as negatives taught the towers to push
    // apart captions of one class, which zero-shot classification wants together.
    auto describes = torch::zeros({batch, batch});
    auto describes_a = describes.accessor<float, 2>();
    for (int i = 0; i < batch; ++i) {
      for (int j = 0; j < batch; ++j) {
        const auto gi = garments[static_cast<std::size_t>(i)], gj = garments[static_cast<std::size_t>(j)];
        const bool same_class = data.labels[gi] == data.labels[gj];
        const bool colour_ok = !caption_has_colour[static_cast<std::size_t>(j)] ||
                               colours[static_cast<std::size_t>(i)] == colours[static_cast<std::size_t>(j)];
        describes_a[i][j] = same_class && colour_ok ? 1.0f : 0.0f;
      }
    }
    const auto scale = logit_scale.clamp_max(std::log(100.0)).exp();
    auto clip_loss = (CaptionLoss(ia, texts, describes, scale) + CaptionLoss(ib, texts, describes, scale)) / 4;
    // Class-caption term: every image against one colourless caption per class (a random
    // template each step), so that each batch sees all ten classes as text negatives, as
    // zero-shot classification does.
    std::vector<int64_t> class_tokens;
    for (int label = 0; label < lookbook::kFashionClasses; ++label) {
      const int template_id = rng() % 2 == 0 ? 2 : 3;
      for (const auto id : tokenizer.EncodeForModel(Caption(label, "", template_id), kContext))
        class_tokens.push_back(id);
    }
    const auto class_texts =
        text.forward(
                {torch::from_blob(class_tokens.data(), {lookbook::kFashionClasses, kContext}, torch::kInt64).clone()})
            .toTensor();
    std::vector<int64_t> label_ids;
    for (int i = 0; i < batch; ++i) label_ids.push_back(data.labels[garments[static_cast<std::size_t>(i)]]);
    const auto class_labels = torch::tensor(label_ids, torch::kInt64);
    const auto class_loss =
        0.5 * (torch::nn::functional::cross_entropy(scale * torch::matmul(ia, class_texts.t()), class_labels) +
               torch::nn::functional::cross_entropy(scale * torch::matmul(ib, class_texts.t()), class_labels));
    // The photos' terms: captions of the photos' classes (a caption describes every photo of
    // its class), and each photo against one prompt per photo class.
    auto photo_loss = torch::zeros({});
    if (photo_batch > 0) {
      const auto pa = ia_all.slice(0, batch), pb = ib_all.slice(0, batch);
      const auto photo_texts = all_texts.slice(0, batch);
      auto same = torch::zeros({photo_batch, photo_batch});
      auto same_a = same.accessor<float, 2>();
      for (int i = 0; i < photo_batch; ++i) {
        for (int j = 0; j < photo_batch; ++j) {
          same_a[i][j] = photo_labels[static_cast<std::size_t>(i)] == photo_labels[static_cast<std::size_t>(j)];
        }
      }
      const auto caption_loss =
          (CaptionLoss(pa, photo_texts, same, scale) + CaptionLoss(pb, photo_texts, same, scale)) / 4;
      std::vector<int64_t> prompt_tokens;
      for (const auto& folder : photos.classes) {
        const std::string prompt = PhotoCaption(WordsOfPhotoClass(folder)[0], rng() % 2 == 0 ? 0 : 2);
        for (const auto id : tokenizer.EncodeForModel(prompt, kContext)) prompt_tokens.push_back(id);
      }
      const auto prompts =
          text.forward({torch::from_blob(prompt_tokens.data(), {static_cast<int64_t>(photos.classes.size()), kContext},
                                         torch::kInt64)
                            .clone()})
              .toTensor();
      const auto targets = torch::tensor(std::vector<int64_t>(photo_labels.begin(), photo_labels.end()), torch::kInt64);
      const auto class_term =
          0.5 * (torch::nn::functional::cross_entropy(scale * torch::matmul(pa, prompts.t()), targets) +
                 torch::nn::functional::cross_entropy(scale * torch::matmul(pb, prompts.t()), targets));
      photo_loss = caption_loss + 0.5 * class_term;
    }
    // Instance loss: the other view of the same product or photo, against every other one.
    const auto instance_logits = torch::matmul(ia_all, ib_all.t()) / 0.1;
    const auto labels = torch::arange(all);
    const auto instance_loss = 0.5 * (torch::nn::functional::cross_entropy(instance_logits, labels) +
                                      torch::nn::functional::cross_entropy(instance_logits.t(), labels));
    // The instance term at half weight: it separates products of the same class, which the
    // zero-shot classes want close; the copies it protects stay far above the threshold.
    const auto loss = clip_loss + 0.5 * class_loss + 0.5 * instance_loss + photo_loss;
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    if (step % 50 == 0 || step == steps - 1) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %d/%d  clip %.3f  class %.3f  instance %.3f  photos %.3f  scale %.1f  %.0f s\n", step + 1,
                  steps, clip_loss.item<double>(), class_loss.item<double>(), instance_loss.item<double>(),
                  photo_loss.item<double>(), scale.item<double>(), elapsed);
      std::fflush(stdout);
    }
  }

  // Export: the trained TorchScript towers, the vocabulary, bundle.json with checksums.
  std::filesystem::create_directories(out);
  image.eval();
  text.eval();
  image.save((std::filesystem::path(out) / "image_encoder.pt").string());
  text.save((std::filesystem::path(out) / "text_encoder.pt").string());
  {
    std::ofstream file(std::filesystem::path(out) / "vocab.txt");
    for (const auto& word : vocabulary) file << word << "\n";
  }
  const auto spec = Spec();
  nlohmann::json bundle = {
      {"format", "lookbook-bundle"},
      {"version", 1},
      {"kind", "clip"},
      {"name", "demo-clip"},
      {"embedding_dim", kDim},
      {"image",
       {{"encoder", "image_encoder.pt"},
        {"input_size", kInput},
        {"resize", "short_side_center_crop"},
        {"channel_order", "rgb"},
        {"mean", spec.mean},
        {"std", spec.std}}},
      {"text",
       {{"encoder", "text_encoder.pt"}, {"tokenizer", "word"}, {"vocab", "vocab.txt"}, {"context_length", kContext}}},
      {"training",
       {{"program", "models/train/train_clip.cpp"},
        {"data", photos_dir.empty()
                     ? "Fashion-MNIST train split, demo rendering"
                     : "Fashion-MNIST train split, demo rendering; the even half of the real photos of "
                       "clothing-dataset-small's train split (CC0, alexeygrigorev/clothing-dataset-small "
                       "on GitHub)"},
        {"photo_batch", photo_batch},
        {"steps", steps},
        {"batch", batch},
        {"seed", seed}}},
  };
  bundle["files"] = nlohmann::json::object();
  for (const char* file : {"image_encoder.pt", "text_encoder.pt", "vocab.txt"}) {
    bundle["files"][file] = Sha(std::filesystem::path(out) / file);
  }
  std::ofstream(std::filesystem::path(out) / "bundle.json") << bundle.dump(2) << "\n";
  std::printf("wrote %s\n", out.c_str());
  return 0;
}
