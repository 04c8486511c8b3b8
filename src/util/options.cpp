#include "util/options.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace lookbook {
namespace {

std::string Bounds(const std::string& name, const std::string& low, const std::string& high) {
  return "--" + name + " must be " + (high.empty() ? "at least " + low : "in " + low + ".." + high);
}

}  // namespace

std::int64_t ParseIntegerOption(const std::string& name, const std::string& text, std::int64_t min, std::int64_t max) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    throw UsageError("--" + name + " must be a whole number, not '" + text + "'");
  }
  if (value < min || value > max) {
    throw UsageError(Bounds(name, std::to_string(min), std::to_string(max)) + ", not " + text);
  }
  return value;
}

std::uint64_t ParseUnsignedOption(const std::string& name, const std::string& text, std::uint64_t min,
                                  std::uint64_t max) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || text[0] == '-' || error != std::errc() || end != text.data() + text.size()) {
    throw UsageError("--" + name + " must be a whole number of at least " + std::to_string(min) + ", not '" + text +
                     "'");
  }
  if (value < min || value > max) {
    throw UsageError(Bounds(name, std::to_string(min), std::to_string(max)) + ", not " + text);
  }
  return value;
}

double ParseRealOption(const std::string& name, const std::string& text, double min, double max) {
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value)) {
    throw UsageError("--" + name + " must be a number, not '" + text + "'");
  }
  if (value < min || value > max) {
    char low[32], high[32];
    std::snprintf(low, sizeof(low), "%g", min);
    std::snprintf(high, sizeof(high), "%g", max);
    throw UsageError("--" + name + " must be in [" + low + ", " + high + "], not " + text);
  }
  return value;
}

std::string ExactReal(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

}  // namespace lookbook
