#include "tests/support/test_bundles.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

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

namespace {

std::string Utf8(char32_t code) {
  std::string out;
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
  return out;
}

}  // namespace

void WriteTestClipMerges(const std::filesystem::path& file) {
  constexpr int kMerges = 49152 - 256 - 2;  // what ClipTokenizer::Load reads
  const std::vector<std::string> words = {
      "a",     "photo", "of",   "the",      "red",     "blue",  "black",  "white",   "green", "grey",  "dress",
      "shirt", "top",   "coat", "bag",      "shoe",    "shoes", "boot",   "sandal",  "jeans", "skirt", "trouser",
      "t",     "with",  "and",  "pullover", "sneaker", "ankle", "jacket", "striped", "long",  "short"};
  std::vector<std::string> merges;
  std::set<std::string> made;                               // tokens merges produce, each once
  std::map<std::pair<std::string, std::string>, int> rank;  // merge -> its rank
  // CLIP's BPE on one word with the merges so far: the lowest-ranked adjacent pair merges first.
  auto bpe = [&](const std::string& word) {
    std::vector<std::string> parts;
    for (std::size_t i = 0; i < word.size(); ++i)
      parts.push_back(word.substr(i, 1) + (i + 1 == word.size() ? "</w>" : ""));
    for (;;) {
      int best = -1;
      std::size_t at = 0;
      for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        const auto it = rank.find({parts[i], parts[i + 1]});
        if (it != rank.end() && (best < 0 || it->second < best)) best = it->second, at = i;
      }
      if (best < 0) return parts;
      const auto pair = std::make_pair(parts[at], parts[at + 1]);
      std::vector<std::string> merged;
      for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i + 1 < parts.size() && std::make_pair(parts[i], parts[i + 1]) == pair) {
          merged.push_back(parts[i] + parts[i + 1]);
          ++i;
        } else {
          merged.push_back(parts[i]);
        }
      }
      parts = merged;
    }
  };
  // Each word becomes one token: while BPE leaves it in pieces, a new (lowest-priority) merge
  // joins the first two, which BPE then applies after every earlier merge.
  for (const auto& word : words) {
    for (auto parts = bpe(word); parts.size() > 1; parts = bpe(word)) {
      rank[{parts[0], parts[1]}] = static_cast<int>(merges.size());
      made.insert(parts[0] + parts[1]);
      merges.push_back(parts[0] + " " + parts[1]);
    }
  }
  // Filler: stand-ins of the bytes outside printable ASCII (U+00A1.. and U+0100..), in pairs.
  std::vector<std::string> rare;
  for (char32_t c = 0xA1; c <= 0xFF; ++c) {
    if (c != 0xAD) rare.push_back(Utf8(c));
  }
  for (char32_t c = 0x100; c < 0x100 + 68; ++c) rare.push_back(Utf8(c));
  for (const std::string suffix : {"", "</w>"}) {
    for (const auto& x : rare) {
      for (const auto& y : rare) {
        if (static_cast<int>(merges.size()) == kMerges) break;
        if (made.insert(x + y + suffix).second) merges.push_back(x + " " + y + suffix);
      }
    }
  }
  if (static_cast<int>(merges.size()) != kMerges) throw std::logic_error("not enough filler merges");
  std::ofstream out(file, std::ios::binary);
  out << "#version: 0.2 (lookbook test merges)\n";
  for (const auto& merge : merges) out << merge << "\n";
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace lookbook::testing
