// CLIP's text tokenizer: byte-level BPE, identical to the reference SimpleTokenizer.
//
// Encoding a text: normalise (HTML entities unescaped twice, whitespace runs collapsed to one
// space, stripped, lower-cased with Unicode full case mapping), split with CLIP's
// pre-tokenisation pattern
//   <|startoftext|> | <|endoftext|> | 's 't 're 've 'm 'll 'd | \p{L}+ | \p{N} | [^\s\p{L}\p{N}]+
// map every UTF-8 byte to its printable stand-in, and apply the BPE merges in rank order, the
// last symbol of each word carrying "</w>". The model input is <|startoftext|> ids
// <|endoftext|>, zero padded to the context length; a longer text is cut and its last token
// replaced by <|endoftext|>.
//
// Differences from the reference, none of which CLIP's golden cases touch: ftfy.fix_text is
// not applied (the reference's own note: it is the identity on clean text), and HTML
// unescaping knows numeric references and the common named entities (html_entities in the
// .cpp), not all 2,231 of HTML5.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lookbook {

class ClipTokenizer {
 public:
  static constexpr std::int32_t kStartOfText = 49406;
  static constexpr std::int32_t kEndOfText = 49407;
  static constexpr int kDefaultContext = 77;

  // Reads CLIP's merges file (bpe_simple_vocab_16e6.txt.gz, gzip'd or plain). Throws
  // InputError when it is missing or not a merges list of the expected size.
  static ClipTokenizer Load(const std::filesystem::path& merges_file);

  ClipTokenizer(ClipTokenizer&&) noexcept;
  ClipTokenizer& operator=(ClipTokenizer&&) noexcept;
  ~ClipTokenizer();

  // BPE ids of `text`, without the special tokens.
  std::vector<std::int32_t> Encode(std::string_view text) const;
  // The model input: context_length ids (see above).
  std::vector<std::int32_t> EncodeForModel(std::string_view text, int context_length = kDefaultContext) const;

  int vocab_size() const;

  // The reference's text normalisation (exposed for tests).
  static std::string Normalise(std::string_view text);

 private:
  struct Tables;
  explicit ClipTokenizer(std::unique_ptr<Tables> tables);
  std::unique_ptr<Tables> tables_;
};

}  // namespace lookbook
