// train_unet: trains the demo U-Net garment segmenter on flat-lay outfit photos rendered by
// the demo-catalog code from Fashion-MNIST's train split, and writes a segmenter bundle.
//
//   train_unet --out models/demo/unet [--steps 800] [--batch 16] [--seed 1] [--threads 2]
//              [--random-outfits 60] [--init BUNDLE] [--lr 2e-3]
//
// --init continues training from a segmenter bundle this program wrote (its weights, a fresh
// optimizer, the learning rate again from --lr down to 5e-5 on a cosine); the bundle records
// the stages it went through. Give a continued run another --seed, or it draws the samples
// the first run drew.
//
// A quarter of the samples are product shots (one garment, large, anywhere), so that a lone
// garment is one slot: the embed stage's `auto` selection relies on that. Of the rest, P% are
// photos composed unlike the demo's flat lays (demo/render.h RenderRandomOutfit: other frames,
// backgrounds, layouts, scales, turns, shadows, noise; then JPEG at quality 40..95), so that the
// model does not learn one layout on light grey. With --random-outfits 0 no such photo is drawn
// and the draws are those of the flat-lay-only trainer.
// Classes (output channels): background, top, bottom, dress, shoes, bag. Input: the 448 px
// photo letterboxed to 128 x 128 (pad_to_square; outfit photos are square, so a plain
// resize). An encoder-decoder with skip connections (16-32-64-128 channels, group norm,
// ReLU, nearest upsampling), per-pixel cross-entropy against the rendered label maps.
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <string>
#include <vector>

#include "demo/fashion_mnist.h"
#include "demo/render.h"
#include "image/preprocess.h"
#include "model/bundle.h"
#include "util/error.h"

namespace {

constexpr int kInput = 128;
constexpr int kClasses = lookbook::kDemoSlotCount;

lookbook::PreprocessSpec Spec() {
  lookbook::PreprocessSpec spec;
  spec.size = kInput;
  spec.resize = lookbook::ResizePolicy::kPadToSquare;
  spec.mean = {0.8f, 0.8f, 0.8f};
  spec.std = {0.3f, 0.3f, 0.3f};
  return spec;
}

torch::jit::Module UNet() {
  torch::jit::Module m("DemoUNet");
  const std::vector<std::pair<int, int>> convs = {{3, 16},  {16, 16},  {16, 32},   {32, 32},  {32, 64},
                                                  {64, 64}, {64, 128}, {128, 128}, {192, 64}, {64, 64},
                                                  {96, 32}, {32, 32},  {48, 16},   {16, 16}};
  for (std::size_t i = 0; i < convs.size(); ++i) {
    const auto [in, out] = convs[i];
    const std::string n = std::to_string(i);
    m.register_parameter("w" + n, torch::randn({out, in, 3, 3}) * std::sqrt(2.0 / (in * 9)), false);
    m.register_parameter("b" + n, torch::zeros({out}), false);
    m.register_parameter("g" + n, torch::ones({out}), false);
    m.register_parameter("h" + n, torch::zeros({out}), false);
  }
  m.register_parameter("wo", torch::randn({kClasses, 16, 1, 1}) * 0.25, false);
  m.register_parameter("bo", torch::zeros({kClasses}), false);
  std::string code = "def forward(self, x):\n";
  auto conv = [](int i, const std::string& input) {
    const std::string n = std::to_string(i);
    return "torch.relu(torch.group_norm(torch.conv2d(" + input + ", self.w" + n + ", self.b" + n +
           ", [1, 1], [1, 1]), 8, self.g" + n + ", self.h" + n + "))";
  };
  code += "    e1 = " + conv(1, conv(0, "x")) + "\n";
  code += "    e2 = " + conv(3, conv(2, "torch.max_pool2d(e1, [2, 2])")) + "\n";
  code += "    e3 = " + conv(5, conv(4, "torch.max_pool2d(e2, [2, 2])")) + "\n";
  code += "    b = " + conv(7, conv(6, "torch.max_pool2d(e3, [2, 2])")) + "\n";
  code += "    u3 = torch.upsample_nearest2d(b, [e3.size(2), e3.size(3)])\n";
  code += "    d3 = " + conv(9, conv(8, "torch.cat([u3, e3], 1)")) + "\n";
  code += "    u2 = torch.upsample_nearest2d(d3, [e2.size(2), e2.size(3)])\n";
  code += "    d2 = " + conv(11, conv(10, "torch.cat([u2, e2], 1)")) + "\n";
  code += "    u1 = torch.upsample_nearest2d(d2, [e1.size(2), e1.size(3)])\n";
  code += "    d1 = " + conv(13, conv(12, "torch.cat([u1, e1], 1)")) + "\n";
  code += "    return torch.conv2d(d1, self.wo, self.bo)\n";
  m.define(code);
  return m;
}

// A rendered photo as the model's input and its label map at the model's resolution,
// letterboxed as Preprocess's pad_to_square does (the padding is background).
void ToSample(const lookbook::OutfitPhoto& photo, float* pixels, int64_t* labels) {
  lookbook::Preprocess(lookbook::ToRgb(photo.photo), Spec(), pixels);
  const int width = photo.photo.width, height = photo.photo.height;
  const lookbook::FrameMapping frame = lookbook::ModelFrame(width, height, Spec());
  const int w = static_cast<int>(std::lround(frame.scale_x * width));
  const int h = static_cast<int>(std::lround(frame.scale_y * height));
  const cv::Mat full(height, width, CV_8U, const_cast<std::uint8_t*>(photo.labels.data()));
  cv::Mat small;
  cv::resize(full, small, {w, h}, 0, 0, cv::INTER_NEAREST);
  cv::Mat square(kInput, kInput, CV_8U, cv::Scalar::all(0));
  small.copyTo(square(cv::Rect(static_cast<int>(frame.offset_x), static_cast<int>(frame.offset_y), w, h)));
  for (int i = 0; i < kInput * kInput; ++i) labels[i] = square.data[i];
}

// The photo after a JPEG round trip at `quality`.
void Jpeg(lookbook::OutfitPhoto* photo, int quality) {
  const cv::Mat decoded = cv::imdecode(lookbook::EncodeJpeg(photo->photo, quality), cv::IMREAD_COLOR);
  std::memcpy(photo->photo.bgr.data(), decoded.data, photo->photo.bgr.size());
}

// One random training sample: an outfit as the demo catalog composes them, or a product shot.
void Sample(const lookbook::FashionMnist& data, const std::vector<std::vector<std::size_t>>& by_slot, std::mt19937& rng,
            int random_share, float* pixels, int64_t* labels) {
  using lookbook::DemoSlot;
  const auto& palette = lookbook::DemoPalette();
  if (rng() % 100 < 25) {
    // A product shot: one garment filling most of the frame (RenderProductShot draws it at
    // 7/8 of the side), anywhere. Without these the model learnt the flat-lay layout (top
    // upper left, shoes lower right) and split a lone garment into several slots.
    const auto slot = static_cast<DemoSlot>(1 + rng() % (lookbook::kDemoSlotCount - 1));
    const auto& pool = by_slot[static_cast<std::size_t>(slot)];
    const int side = lookbook::kOutfitSide * static_cast<int>(60 + rng() % 31) / 100;
    const int room = lookbook::kOutfitSide - side;
    const lookbook::OutfitItem item{data.image(pool[rng() % pool.size()]),
                                    palette[rng() % palette.size()],
                                    slot,
                                    static_cast<int>(rng() % static_cast<unsigned>(room + 1)),
                                    static_cast<int>(rng() % static_cast<unsigned>(room + 1)),
                                    side};
    const auto photo =
        lookbook::RenderOutfit({item}, lookbook::kOutfitSide, static_cast<std::uint8_t>(240 + rng() % 11));
    ToSample(photo, pixels, labels);
    return;
  }
  std::vector<DemoSlot> slots;
  if (rng() % 100 < 40)
    slots.push_back(DemoSlot::kDress);
  else
    slots = {DemoSlot::kTop, DemoSlot::kBottom};
  slots.push_back(DemoSlot::kShoes);
  if (rng() % 100 < 40) slots.push_back(DemoSlot::kBag);
  if (random_share > 0 && static_cast<int>(rng() % 100) < random_share) {
    // A photo composed unlike the flat lays (RenderRandomOutfit), after a JPEG round trip at
    // a quality from 40 to 95; one in seven holds a single garment (a lone shot on a busy
    // background is still one slot).
    if (rng() % 7 == 0) slots = {static_cast<DemoSlot>(1 + rng() % (lookbook::kDemoSlotCount - 1))};
    std::vector<lookbook::RandomOutfitGarment> garments;
    for (const auto slot : slots) {
      const auto& pool = by_slot[static_cast<std::size_t>(slot)];
      garments.push_back({data.image(pool[rng() % pool.size()]), palette[rng() % palette.size()], slot});
    }
    std::shuffle(garments.begin(), garments.end(), rng);
    const std::uint64_t high = rng();  // two draws, in sequence
    const std::uint64_t low = rng();
    auto photo = lookbook::RenderRandomOutfit(garments, (high << 32) | low);
    Jpeg(&photo, 40 + static_cast<int>(rng() % 56));
    ToSample(photo, pixels, labels);
    return;
  }
  std::vector<lookbook::OutfitItem> items;
  for (const auto slot : slots) {
    const auto& pool = by_slot[static_cast<std::size_t>(slot)];
    const auto garment = pool[rng() % pool.size()];
    items.push_back(lookbook::PlaceInOutfit(data.image(garment), palette[rng() % palette.size()], slot,
                                            static_cast<int>(rng() % 17) - 8, static_cast<int>(rng() % 17) - 8));
  }
  const auto photo = lookbook::RenderOutfit(items, lookbook::kOutfitSide, 240);
  ToSample(photo, pixels, labels);
}

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  std::string init;
  int steps = 800, batch = 16, threads = 2, random_share = 60;
  double peak_lr = 2e-3;
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
    else if (!std::strcmp(argv[i], "--random-outfits"))
      random_share = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--init"))
      init = argv[i + 1];
    else if (!std::strcmp(argv[i], "--lr"))
      peak_lr = std::atof(argv[i + 1]);
    else {
      std::cerr << "train_unet: unknown option " << argv[i] << "\n";
      return 2;
    }
  }
  if (out.empty()) {
    std::cerr << "usage: train_unet --out DIR [--steps N] [--batch B] [--seed S] [--threads T] [--random-outfits P] "
                 "[--init BUNDLE] [--lr PEAK]\n";
    return 2;
  }
  torch::manual_seed(seed);
  torch::set_num_threads(threads);
  std::mt19937 rng(seed);
  const auto data = lookbook::FashionMnist::Load(lookbook::kFashionMnistDir, lookbook::FashionSplit::kTrain);
  std::vector<std::vector<std::size_t>> by_slot(kClasses);
  for (std::size_t i = 0; i < data.size(); ++i) {
    by_slot[static_cast<std::size_t>(lookbook::SlotOfFashionClass(data.labels[i]))].push_back(i);
  }
  // The stages this bundle's weights went through: the --init bundle's, then this run.
  nlohmann::json stages = nlohmann::json::array();
  std::string init_sha256;  // of the --init bundle's weights (content, not its path)
  torch::jit::Module model = UNet();
  if (!init.empty()) {
    // LoadBundle checks every file's sha256 against bundle.json before LibTorch reads it.
    lookbook::ModelBundle previous_bundle;
    try {
      previous_bundle = lookbook::LoadBundle(init);
    } catch (const lookbook::InputError& error) {
      std::cerr << "train_unet: --init " << init << ": " << error.what() << "\n";
      return 2;
    }
    if (previous_bundle.kind != lookbook::BundleKind::kSegmenter || previous_bundle.name != "demo-unet") {
      std::cerr << "train_unet: --init " << init << " is not a demo-unet segmenter bundle\n";
      return 2;
    }
    const auto weights = torch::jit::load(previous_bundle.Path(previous_bundle.image_encoder).string());
    for (const auto& p : weights.named_parameters()) {
      auto target = model.attr(p.name).toTensor();
      if (target.sizes() != p.value.sizes()) {
        std::cerr << "train_unet: --init " << init << ": parameter " << p.name << " has another shape\n";
        return 2;
      }
      torch::NoGradGuard no_grad;
      target.copy_(p.value);
    }
    init_sha256 = previous_bundle.files.at(previous_bundle.image_encoder);
    const auto previous = nlohmann::json::parse(std::ifstream(previous_bundle.Path("bundle.json")));
    const auto& training = previous.at("training");
    stages = training.contains("stages") ? training.at("stages") : nlohmann::json::array({training});
  }
  model.train();
  std::vector<torch::Tensor> parameters;
  for (auto p : model.parameters()) {
    p.set_requires_grad(true);
    parameters.push_back(p);
  }
  torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(2e-3));
  const std::size_t floats = 3 * kInput * kInput;
  const auto start = std::chrono::steady_clock::now();
  for (int step = 0; step < steps; ++step) {
    const double lr = 5e-5 + 0.5 * (peak_lr - 5e-5) * (1 + std::cos(M_PI * step / steps));
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    std::vector<float> pixels(static_cast<std::size_t>(batch) * floats);
    std::vector<int64_t> labels(static_cast<std::size_t>(batch) * kInput * kInput);
    for (int i = 0; i < batch; ++i) {
      Sample(data, by_slot, rng, random_share, pixels.data() + static_cast<std::size_t>(i) * floats,
             labels.data() + static_cast<std::size_t>(i) * kInput * kInput);
    }
    const auto x = torch::from_blob(pixels.data(), {batch, 3, kInput, kInput}).clone();
    const auto y = torch::from_blob(labels.data(), {batch, kInput, kInput}, torch::kInt64).clone();
    const auto logits = model.forward({x}).toTensor();
    const auto loss = torch::nn::functional::cross_entropy(logits, y);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    if (step % 50 == 0 || step == steps - 1) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double accuracy = (logits.argmax(1) == y).to(torch::kFloat32).mean().item<double>();
      std::printf("step %d/%d  loss %.4f  pixel accuracy %.4f  %.0f s\n", step + 1, steps, loss.item<double>(),
                  accuracy, elapsed);
      std::fflush(stdout);
    }
  }
  std::filesystem::create_directories(out);
  model.eval();
  model.save((std::filesystem::path(out) / "segmenter.pt").string());
  const auto spec = Spec();
  stages.push_back({{"steps", steps},
                    {"batch", batch},
                    {"seed", seed},
                    {"peak_lr", peak_lr},
                    {"random_outfits_percent", random_share},
                    {"init_sha256", init_sha256.empty() ? nlohmann::json(nullptr) : nlohmann::json(init_sha256)}});
  nlohmann::json bundle = {
      {"format", "lookbook-bundle"},
      {"version", 1},
      {"kind", "segmenter"},
      {"name", "demo-unet"},
      {"image",
       {{"encoder", "segmenter.pt"},
        {"input_size", kInput},
        {"resize", "pad_to_square"},
        {"channel_order", "rgb"},
        {"mean", spec.mean},
        {"std", spec.std}}},
      {"segmenter",
       {{"classes", {"background", "top", "bottom", "dress", "shoes", "bag"}},
        {"slots", {{"top", "top"}, {"bottom", "bottom"}, {"dress", "dress"}, {"shoes", "shoes"}, {"bag", "bag"}}}}},
      // steps, batch, seed, random_outfits_percent: this run's, the last of the stages.
      {"training",
       {{"program", "models/train/train_unet.cpp"},
        {"data", "Fashion-MNIST train split: demo flat lays, product shots, randomized outfit photos"},
        {"steps", steps},
        {"batch", batch},
        {"seed", seed},
        {"random_outfits_percent", random_share},
        {"stages", stages}}},
  };
  bundle["files"] = {{"segmenter.pt", lookbook::Sha256File(std::filesystem::path(out) / "segmenter.pt")}};
  std::ofstream(std::filesystem::path(out) / "bundle.json") << bundle.dump(2) << "\n";
  std::printf("wrote %s\n", out.c_str());
  return 0;
}
