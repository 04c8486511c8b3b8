// Text to model input ids, for the tokenizer types a bundle can name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/bundle.h"

namespace lookbook {

// What a text became: its tokens (without the start and end tokens), how many the context kept,
// and how many the vocabulary does not know (the word tokenizer's <unk>; CLIP's byte-level BPE
// knows every byte, so 0 there).
struct TextTokens {
  int tokens = 0;
  int kept = 0;
  int unknown = 0;
};

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  // Exactly context_length ids: start, the text's ids, end, zero padding.
  virtual std::vector<std::int32_t> EncodeForModel(std::string_view text, int context_length) const = 0;
  virtual TextTokens Count(std::string_view text, int context_length) const = 0;
};

// The bundle's tokenizer (clip_bpe or word). Throws InputError when the bundle has none or
// its vocabulary cannot be read.
std::unique_ptr<TextTokenizer> LoadTokenizer(const ModelBundle& bundle);

// The word tokenizer of small demo bundles. Vocabulary file: one token per line, the id is
// the line number (0-based); lines 0..3 must be <pad>, <start>, <end>, <unk>. A text is
// lower-cased (ASCII), split on every byte that is not a letter or digit (bytes >= 0x80 count
// as letters), and each word mapped to its id or <unk>; longer texts are cut, keeping <end>.
class WordTokenizer : public TextTokenizer {
 public:
  static constexpr std::int32_t kPad = 0, kStart = 1, kEnd = 2, kUnknown = 3;
  static WordTokenizer Load(const std::filesystem::path& vocabulary);
  explicit WordTokenizer(std::vector<std::string> vocabulary);
  std::vector<std::int32_t> EncodeForModel(std::string_view text, int context_length) const override;
  TextTokens Count(std::string_view text, int context_length) const override;
  std::vector<std::string> Words(std::string_view text) const;

 private:
  std::vector<std::string> vocabulary_;
  std::unordered_map<std::string, std::int32_t> ids_;
};

}  // namespace lookbook
