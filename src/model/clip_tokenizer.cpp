#include "model/clip_tokenizer.h"

#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <map>
#include <unordered_map>

#include "util/error.h"

namespace lookbook {
namespace {

constexpr int kMergeCount = 49152 - 256 - 2;  // the reference reads lines 1..48894 after the header

void AppendUtf8(char32_t code, std::string* out) {
  char buffer[4];
  int32_t length = 0;
  UBool error = false;
  U8_APPEND(reinterpret_cast<uint8_t*>(buffer), length, 4, static_cast<UChar32>(code), error);
  if (!error) out->append(buffer, static_cast<std::size_t>(length));
}

// GPT-2/CLIP bytes_to_unicode(): every byte gets a printable code point; printable Latin-1
// bytes stand for themselves, the others are moved to 256 + n. Returns them in the
// reference's order (which is also the order of the first 256 vocabulary entries).
std::vector<std::pair<int, std::string>> ByteStandIns() {
  std::vector<int> bytes;
  for (int b = '!'; b <= '~'; ++b) bytes.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bytes.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bytes.push_back(b);
  std::vector<int> codes = bytes;
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    if (std::find(bytes.begin(), bytes.end(), b) == bytes.end()) {
      bytes.push_back(b);
      codes.push_back(256 + extra++);
    }
  }
  std::vector<std::pair<int, std::string>> result;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::string text;
    AppendUtf8(static_cast<char32_t>(codes[i]), &text);
    result.emplace_back(bytes[i], text);
  }
  return result;
}

std::string ReadMaybeGzip(const std::filesystem::path& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw InputError("cannot open CLIP merges file " + path.string());
  std::string text;
  char buffer[1 << 16];
  int n;
  while ((n = gzread(file, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<std::size_t>(n));
  const bool failed = n < 0;
  gzclose(file);
  if (failed) throw InputError("cannot decompress CLIP merges file " + path.string());
  return text;
}

bool IsWhitespace(UChar32 c) {
  // Python's str.isspace(): Unicode White_Space plus the ASCII separators 0x1C..0x1F.
  return u_isUWhiteSpace(c) || (c >= 0x1C && c <= 0x1F);
}

bool IsLetter(UChar32 c) {
  switch (u_charType(c)) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER: return true;
    default: return false;
  }
}

bool IsNumber(UChar32 c) {
  switch (u_charType(c)) {
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER: return true;
    default: return false;
  }
}

// The named entities HTML unescaping knows (see the header).
const std::map<std::string, char32_t, std::less<>>& HtmlEntities() {
  static const std::map<std::string, char32_t, std::less<>> kEntities = {
      {"amp", '&'},      {"lt", '<'},       {"gt", '>'},       {"quot", '"'},      {"apos", '\''},    {"nbsp", 0xA0},
      {"copy", 0xA9},    {"reg", 0xAE},     {"trade", 0x2122}, {"hellip", 0x2026}, {"ndash", 0x2013}, {"mdash", 0x2014},
      {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C}, {"rdquo", 0x201D},  {"euro", 0x20AC},  {"pound", 0xA3},
      {"yen", 0xA5},     {"cent", 0xA2},    {"deg", 0xB0},     {"times", 0xD7},    {"middot", 0xB7},  {"bull", 0x2022},
      {"laquo", 0xAB},   {"raquo", 0xBB},   {"eacute", 0xE9},  {"egrave", 0xE8},   {"aacute", 0xE1},  {"agrave", 0xE0},
      {"iacute", 0xED},  {"oacute", 0xF3},  {"uacute", 0xFA},  {"ntilde", 0xF1},   {"ccedil", 0xE7},  {"uuml", 0xFC},
      {"ouml", 0xF6},    {"auml", 0xE4},    {"szlig", 0xDF},   {"iuml", 0xEF},
  };
  return kEntities;
}

std::string HtmlUnescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] != '&') {
      out.push_back(text[i++]);
      continue;
    }
    const std::size_t semicolon = text.find(';', i + 1);
    if (semicolon != std::string_view::npos && semicolon - i <= 32) {
      const std::string_view name = text.substr(i + 1, semicolon - i - 1);
      if (name.size() >= 2 && name[0] == '#') {
        const bool hex = name[1] == 'x' || name[1] == 'X';
        const std::string_view digits = name.substr(hex ? 2 : 1);
        long long code = 0;
        bool valid = !digits.empty() && digits.size() <= 8;
        for (const char ch : digits) {
          const int value = std::isdigit(static_cast<unsigned char>(ch)) ? ch - '0'
                            : (hex && std::isxdigit(static_cast<unsigned char>(ch)))
                                ? (std::tolower(static_cast<unsigned char>(ch)) - 'a' + 10)
                                : -1;
          if (value < 0) valid = false;
          code = code * (hex ? 16 : 10) + std::max(value, 0);
        }
        if (valid) {
          // Like Python: NUL, surrogates and out-of-range code points become U+FFFD.
          if (code == 0 || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) code = 0xFFFD;
          AppendUtf8(static_cast<char32_t>(code), &out);
          i = semicolon + 1;
          continue;
        }
      } else {
        const auto it = HtmlEntities().find(name);
        if (it != HtmlEntities().end()) {
          AppendUtf8(it->second, &out);
          i = semicolon + 1;
          continue;
        }
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

}  // namespace

struct ClipTokenizer::Tables {
  std::string byte_stand_in[256];
  std::unordered_map<std::string, int> merge_rank;  // "a b" -> rank
  std::unordered_map<std::string, std::int32_t> vocabulary;
};

ClipTokenizer::ClipTokenizer(std::unique_ptr<Tables> tables) : tables_(std::move(tables)) {}
ClipTokenizer::ClipTokenizer(ClipTokenizer&&) noexcept = default;
ClipTokenizer& ClipTokenizer::operator=(ClipTokenizer&&) noexcept = default;
ClipTokenizer::~ClipTokenizer() = default;

ClipTokenizer ClipTokenizer::Load(const std::filesystem::path& merges_file) {
  const std::string text = ReadMaybeGzip(merges_file);
  auto tables = std::make_unique<Tables>();
  std::vector<std::string> vocabulary;
  for (const auto& [byte, stand_in] : ByteStandIns()) {
    tables->byte_stand_in[byte] = stand_in;
    vocabulary.push_back(stand_in);
  }
  for (int i = 0; i < 256; ++i) vocabulary.push_back(vocabulary[static_cast<std::size_t>(i)] + "</w>");
  // Line 0 is a version header; the next kMergeCount lines are the merges, in rank order.
  std::size_t start = text.find('\n');
  for (int rank = 0; rank < kMergeCount; ++rank) {
    if (start == std::string::npos) {
      throw InputError(merges_file.string() + " has " + std::to_string(rank) + " merges, CLIP needs " +
                       std::to_string(kMergeCount));
    }
    std::size_t end = text.find('\n', start + 1);
    const std::string line = text.substr(start + 1, (end == std::string::npos ? text.size() : end) - start - 1);
    const std::size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 >= line.size()) {
      throw InputError(merges_file.string() + ": line " + std::to_string(rank + 2) + " is not a merge");
    }
    tables->merge_rank.emplace(line, rank);
    vocabulary.push_back(line.substr(0, space) + line.substr(space + 1));
    start = end;
  }
  vocabulary.push_back("<|startoftext|>");
  vocabulary.push_back("<|endoftext|>");
  for (std::size_t id = 0; id < vocabulary.size(); ++id) {
    tables->vocabulary.emplace(vocabulary[id], static_cast<std::int32_t>(id));
  }
  LB_CHECK(tables->vocabulary.at("<|endoftext|>") == kEndOfText, "CLIP vocabulary layout");
  return ClipTokenizer(std::move(tables));
}

int ClipTokenizer::vocab_size() const { return static_cast<int>(tables_->vocabulary.size()); }

std::string ClipTokenizer::Normalise(std::string_view text) {
  const std::string unescaped = HtmlUnescape(HtmlUnescape(text));
  // Collapse whitespace runs and strip, on code points.
  std::string collapsed;
  const auto* bytes = reinterpret_cast<const uint8_t*>(unescaped.data());
  const int32_t length = static_cast<int32_t>(unescaped.size());
  bool pending_space = false;
  for (int32_t i = 0; i < length;) {
    const int32_t begin = i;
    UChar32 c;
    U8_NEXT(bytes, i, length, c);
    if (c >= 0 && IsWhitespace(c)) {
      pending_space = true;
      continue;
    }
    if (pending_space && !collapsed.empty()) collapsed.push_back(' ');
    pending_space = false;
    if (c < 0)
      AppendUtf8(0xFFFD, &collapsed);
    else
      collapsed.append(unescaped, static_cast<std::size_t>(begin), static_cast<std::size_t>(i - begin));
  }
  std::string lower;
  icu::UnicodeString::fromUTF8(collapsed).toLower(icu::Locale::getRoot()).toUTF8String(lower);
  return lower;
}

std::vector<std::int32_t> ClipTokenizer::Encode(std::string_view raw) const {
  const std::string text = Normalise(raw);
  std::vector<std::int32_t> ids;
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const int32_t length = static_cast<int32_t>(text.size());

  auto emit_word = [&](std::size_t begin, std::size_t end) {
    const std::string_view word(text.data() + begin, end - begin);
    if (word == "<|startoftext|>" || word == "<|endoftext|>") {
      ids.push_back(tables_->vocabulary.at(std::string(word)));
      return;
    }
    // One symbol per byte, the last one marked as the end of the word.
    std::vector<std::string> symbols;
    for (const char ch : word) symbols.push_back(tables_->byte_stand_in[static_cast<unsigned char>(ch)]);
    symbols.back() += "</w>";
    // Merge the lowest-ranked adjacent pair, all its occurrences left to right, until none.
    while (symbols.size() > 1) {
      int best_rank = INT_MAX;
      std::string best_first, best_second;
      for (std::size_t k = 0; k + 1 < symbols.size(); ++k) {
        const auto it = tables_->merge_rank.find(symbols[k] + " " + symbols[k + 1]);
        if (it != tables_->merge_rank.end() && it->second < best_rank) {
          best_rank = it->second;
          best_first = symbols[k];
          best_second = symbols[k + 1];
        }
      }
      if (best_rank == INT_MAX) break;
      std::vector<std::string> merged;
      for (std::size_t k = 0; k < symbols.size();) {
        if (k + 1 < symbols.size() && symbols[k] == best_first && symbols[k + 1] == best_second) {
          merged.push_back(best_first + best_second);
          k += 2;
        } else {
          merged.push_back(symbols[k]);
          ++k;
        }
      }
      symbols = std::move(merged);
    }
    for (const auto& symbol : symbols) {
      const auto it = tables_->vocabulary.find(symbol);
      LB_CHECK(it != tables_->vocabulary.end(), "BPE produced a symbol outside the vocabulary");
      ids.push_back(it->second);
    }
  };

  static constexpr std::string_view kSpecials[] = {"<|startoftext|>", "<|endoftext|>"};
  static constexpr std::string_view kContractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  int32_t i = 0;
  while (i < length) {
    const std::string_view rest(text.data() + i, static_cast<std::size_t>(length - i));
    bool matched = false;
    for (const auto special : kSpecials) {
      if (rest.substr(0, special.size()) == special) {
        emit_word(static_cast<std::size_t>(i), static_cast<std::size_t>(i) + special.size());
        i += static_cast<int32_t>(special.size());
        matched = true;
        break;
      }
    }
    if (matched) continue;
    for (const auto contraction : kContractions) {
      if (rest.substr(0, contraction.size()) == contraction) {
        emit_word(static_cast<std::size_t>(i), static_cast<std::size_t>(i) + contraction.size());
        i += static_cast<int32_t>(contraction.size());
        matched = true;
        break;
      }
    }
    if (matched) continue;
    const int32_t begin = i;
    UChar32 c;
    U8_NEXT(bytes, i, length, c);
    if (c >= 0 && IsWhitespace(c)) continue;
    if (c >= 0 && IsNumber(c)) {
      emit_word(static_cast<std::size_t>(begin), static_cast<std::size_t>(i));
      continue;
    }
    // A run of letters, or a run of what is neither letter, number nor space.
    const bool letters = c >= 0 && IsLetter(c);
    int32_t end = i;
    while (end < length) {
      int32_t next = end;
      UChar32 d;
      U8_NEXT(bytes, next, length, d);
      const bool same =
          letters ? (d >= 0 && IsLetter(d)) : (d < 0 || (!IsWhitespace(d) && !IsLetter(d) && !IsNumber(d)));
      if (!same) break;
      end = next;
    }
    emit_word(static_cast<std::size_t>(begin), static_cast<std::size_t>(end));
    i = end;
  }
  return ids;
}

std::vector<std::int32_t> ClipTokenizer::EncodeForModel(std::string_view text, int context_length) const {
  LB_CHECK(context_length >= 2, "context length must hold the two special tokens");
  std::vector<std::int32_t> tokens = {kStartOfText};
  const std::vector<std::int32_t> ids = Encode(text);
  tokens.insert(tokens.end(), ids.begin(), ids.end());
  tokens.push_back(kEndOfText);
  if (static_cast<int>(tokens.size()) > context_length) {
    tokens.resize(static_cast<std::size_t>(context_length));
    tokens.back() = kEndOfText;
  }
  tokens.resize(static_cast<std::size_t>(context_length), 0);
  return tokens;
}

}  // namespace lookbook
