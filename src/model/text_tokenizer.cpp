#include "model/text_tokenizer.h"

#include <algorithm>

#include <cctype>
#include <fstream>

#include "model/clip_tokenizer.h"
#include "util/error.h"

namespace lookbook {
namespace {

class ClipBpeTokenizer : public TextTokenizer {
 public:
  explicit ClipBpeTokenizer(ClipTokenizer tokenizer) : tokenizer_(std::move(tokenizer)) {}
  std::vector<std::int32_t> EncodeForModel(std::string_view text, int context_length) const override {
    return tokenizer_.EncodeForModel(text, context_length);
  }
  TextTokens Count(std::string_view text, int context_length) const override {
    TextTokens out;
    out.tokens = static_cast<int>(tokenizer_.Encode(text).size());
    out.kept = std::min(out.tokens, context_length - 2);
    return out;
  }

 private:
  ClipTokenizer tokenizer_;
};

}  // namespace

WordTokenizer::WordTokenizer(std::vector<std::string> vocabulary) : vocabulary_(std::move(vocabulary)) {
  for (std::size_t i = 0; i < vocabulary_.size(); ++i) ids_.emplace(vocabulary_[i], static_cast<std::int32_t>(i));
}

WordTokenizer WordTokenizer::Load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw InputError("cannot read word vocabulary " + path.string());
  std::vector<std::string> vocabulary;
  std::string line;
  while (std::getline(in, line)) vocabulary.push_back(line);
  const std::vector<std::string> specials = {"<pad>", "<start>", "<end>", "<unk>"};
  if (vocabulary.size() < specials.size() || !std::equal(specials.begin(), specials.end(), vocabulary.begin())) {
    throw InputError(path.string() + ": a word vocabulary starts with <pad>, <start>, <end>, <unk>");
  }
  return WordTokenizer(std::move(vocabulary));
}

std::vector<std::string> WordTokenizer::Words(std::string_view text) const {
  std::vector<std::string> words;
  std::string word;
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    if (std::isalnum(byte) || byte >= 0x80) {
      word.push_back(static_cast<char>(std::tolower(byte)));
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

std::vector<std::int32_t> WordTokenizer::EncodeForModel(std::string_view text, int context_length) const {
  LB_CHECK(context_length >= 2, "context length must hold <start> and <end>");
  std::vector<std::int32_t> ids = {kStart};
  for (const auto& word : Words(text)) {
    const auto it = ids_.find(word);
    ids.push_back(it == ids_.end() ? kUnknown : it->second);
  }
  ids.push_back(kEnd);
  if (static_cast<int>(ids.size()) > context_length) {
    ids.resize(static_cast<std::size_t>(context_length));
    ids.back() = kEnd;
  }
  ids.resize(static_cast<std::size_t>(context_length), kPad);
  return ids;
}

TextTokens WordTokenizer::Count(std::string_view text, int context_length) const {
  TextTokens out;
  for (const auto& word : Words(text)) {
    ++out.tokens;
    if (!ids_.count(word)) ++out.unknown;
  }
  out.kept = std::min(out.tokens, context_length - 2);
  return out;
}

std::unique_ptr<TextTokenizer> LoadTokenizer(const ModelBundle& bundle) {
  switch (bundle.tokenizer) {
    case TokenizerType::kClipBpe:
      return std::make_unique<ClipBpeTokenizer>(ClipTokenizer::Load(bundle.Path(bundle.tokenizer_file)));
    case TokenizerType::kWord:
      return std::make_unique<WordTokenizer>(WordTokenizer::Load(bundle.Path(bundle.tokenizer_file)));
    case TokenizerType::kNone: break;
  }
  throw InputError("model bundle " + bundle.dir.string() + " has no text tower");
}

}  // namespace lookbook
