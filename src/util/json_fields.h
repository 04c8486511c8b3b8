// Numbers from JSON that outsiders write (manifests and records in a run folder, bundle.json):
// nlohmann's get<T>() converts a float such as 5e102 to an integer (or a double outside float's
// range to float) with undefined behaviour, which tests/fuzz found. These accept a value only
// when it is of the right kind and within T's range.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>

namespace lookbook {

template <typename T>
bool JsonInteger(const nlohmann::json& value, T* out) {
  static_assert(std::is_integral_v<T>, "JsonInteger reads integers");
  if (value.is_number_unsigned()) {
    const std::uint64_t v = value.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return false;
    *out = static_cast<T>(v);
    return true;
  }
  if (value.is_number_integer()) {
    const std::int64_t v = value.get<std::int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      if (v < 0 || static_cast<std::uint64_t>(v) > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
        return false;
      }
    } else {
      if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
          v > static_cast<std::int64_t>(std::numeric_limits<T>::max())) {
        return false;
      }
    }
    *out = static_cast<T>(v);
    return true;
  }
  return false;
}

inline bool JsonFloat(const nlohmann::json& value, float* out) {
  if (!value.is_number()) return false;
  const double v = value.get<double>();
  if (!std::isfinite(v) || std::fabs(v) > static_cast<double>(std::numeric_limits<float>::max())) return false;
  *out = static_cast<float>(v);
  return true;
}

}  // namespace lookbook
