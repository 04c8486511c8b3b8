// ASCII text helpers the modules share (catalog columns, config maps, prompts).
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace lookbook {

// ASCII lower case; other bytes (UTF-8 included) unchanged.
inline std::string AsciiLower(std::string_view text) {
  std::string lower(text);
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return lower;
}

// Without leading and trailing spaces and tabs.
inline std::string TrimBlanks(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  return std::string(text.substr(begin, text.find_last_not_of(" \t") - begin + 1));
}

}  // namespace lookbook
