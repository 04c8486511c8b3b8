// train_clip: trains the demo CLIP-style dual encoder on Fashion-MNIST's train split, rendered
// exactly as the demo catalog renders its product shots, and writes a lookbook bundle.
//
//   train_clip --out models/demo/clip [--steps 2200] [--batch 96] [--seed 1] [--threads 2]
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
// including the same garment in another colour (a colour variant is not a duplicate).
// Fixed seeds, CPU only; the whole run is deterministic for a given thread count.
#include <torch/script.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

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

std::string Sha(const std::filesystem::path& path) { return lookbook::Sha256File(path); }

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  int steps = 2200, batch = 96, threads = 2;
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
  }
  if (out.empty()) {
    std::cerr << "usage: train_clip --out DIR [--steps N] [--batch B] [--seed S] [--threads T]\n";
    return 2;
  }
  torch::manual_seed(seed);
  torch::set_num_threads(threads);
  std::mt19937 rng(seed);
  const auto data = lookbook::FashionMnist::Load(lookbook::kFashionMnistDir, lookbook::FashionSplit::kTrain);
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
      View(shot, rng, true, view_b.data() + static_cast<std::size_t>(i) * floats);
      const int template_id = static_cast<int>(rng() % 6);
      captions.push_back(Caption(data.labels[g], colour.name, template_id));
      caption_has_colour.push_back(template_id != 2 && template_id != 3);
      for (const auto id : tokenizer.EncodeForModel(captions.back(), kContext)) tokens.push_back(id);
    }
    const auto a = torch::from_blob(view_a.data(), {batch, 3, kInput, kInput}).clone();
    const auto b = torch::from_blob(view_b.data(), {batch, 3, kInput, kInput}).clone();
    const auto t = torch::from_blob(tokens.data(), {batch, kContext}, torch::kInt64).clone();
    const auto images = image.forward({torch::cat({a, b})}).toTensor();
    const auto ia = images.slice(0, 0, batch), ib = images.slice(0, batch);
    const auto texts = text.forward({t}).toTensor();

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
    const auto image_targets = describes / describes.sum(1, true);         // rows: images
    const auto text_targets = describes.t() / describes.t().sum(1, true);  // rows: captions
    const auto scale = logit_scale.clamp_max(std::log(100.0)).exp();
    auto clip_loss = torch::zeros({});
    for (const auto& view : {ia, ib}) {
      const auto logits = scale * torch::matmul(view, texts.t());
      clip_loss = clip_loss - (image_targets * torch::log_softmax(logits, 1)).sum(1).mean() -
                  (text_targets * torch::log_softmax(logits.t(), 1)).sum(1).mean();
    }
    clip_loss = clip_loss / 4;
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
    // Instance loss: the other view of the same product, against every other product.
    const auto instance_logits = torch::matmul(ia, ib.t()) / 0.1;
    const auto labels = torch::arange(batch);
    const auto instance_loss = 0.5 * (torch::nn::functional::cross_entropy(instance_logits, labels) +
                                      torch::nn::functional::cross_entropy(instance_logits.t(), labels));
    // The instance term at half weight: it separates products of the same class, which the
    // zero-shot classes want close; the copies it protects stay far above the threshold.
    const auto loss = clip_loss + 0.5 * class_loss + 0.5 * instance_loss;
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    if (step % 50 == 0 || step == steps - 1) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %d/%d  clip %.3f  class %.3f  instance %.3f  scale %.1f  %.0f s\n", step + 1, steps,
                  clip_loss.item<double>(), class_loss.item<double>(), instance_loss.item<double>(),
                  scale.item<double>(), elapsed);
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
        {"data", "Fashion-MNIST train split, demo rendering"},
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
