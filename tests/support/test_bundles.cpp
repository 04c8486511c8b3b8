#include "tests/support/test_bundles.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "model/bundle.h"

namespace lookbook::testing {

void WriteTestClipBundle(const std::filesystem::path& dir, const TestClipBundleOptions& options) {
  std::filesystem::create_directories(dir);
  torch::manual_seed(options.seed);
  const int d = options.embedding_dim;

  torch::jit::Module image("ImageTower");
  image.register_parameter("projection", torch::randn({48, d}), false);
  image.define(R"JIT(
def forward(self, x):
    pooled = torch.adaptive_avg_pool2d(x, [4, 4]).flatten(1)
    y = torch.matmul(pooled, self.projection.to(pooled.dtype))
    return y / y.norm(2, [1], True)
)JIT");
  image.save((dir / "image_encoder.pt").string());

  const std::vector<std::string> words = {"<pad>",   "<start>", "<end>", "<unk>",  "a",     "photo", "of",
                                          "red",     "blue",    "green", "black",  "dress", "coat",  "bag",
                                          "sneaker", "trouser", "shirt", "sandal", "boot"};
  torch::jit::Module text("TextTower");
  text.register_parameter("embedding", torch::randn({static_cast<long>(words.size()), d}), false);
  text.define(R"JIT(
def forward(self, tokens):
    e = torch.embedding(self.embedding, tokens)
    mask = (tokens > 3).unsqueeze(2).to(e.dtype)
    y = (e * mask).sum(1) / mask.sum(1).clamp_min(1.0) + 1e-3
    return y / y.norm(2, [1], True)
)JIT");
  text.save((dir / "text_encoder.pt").string());
  {
    std::ofstream vocabulary(dir / "vocab.txt");
    for (const auto& word : words) vocabulary << word << "\n";
  }

  nlohmann::json bundle;
  bundle["format"] = "lookbook-bundle";
  bundle["version"] = 1;
  bundle["kind"] = "clip";
  bundle["name"] = "test-clip";
  bundle["embedding_dim"] = options.declared_dim > 0 ? options.declared_dim : d;
  bundle["image"] = {
      {"encoder", "image_encoder.pt"}, {"input_size", options.input_size}, {"resize", "short_side_center_crop"},
      {"channel_order", "rgb"},        {"mean", {0.5, 0.5, 0.5}},          {"std", {0.25, 0.25, 0.25}}};
  bundle["text"] = {
      {"encoder", "text_encoder.pt"}, {"tokenizer", "word"}, {"vocab", "vocab.txt"}, {"context_length", 16}};
  bundle["files"] = nlohmann::json::object();
  for (const char* file : {"image_encoder.pt", "text_encoder.pt", "vocab.txt"}) {
    bundle["files"][file] = Sha256File(dir / file);
  }
  std::ofstream(dir / "bundle.json") << bundle.dump(2) << "\n";
}

}  // namespace lookbook::testing
