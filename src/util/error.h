// Two tiers of errors (docs/architecture.md#errors).
//  - Data errors are values: a rejected row or image carries a RejectReason and is counted.
//  - InputError: an input or the environment makes the whole stage impossible (catalog missing,
//    header without a required column, disk full). The stage stops with exit code 1 and one
//    clear message; nothing partial is published.
//  - InternalError: a broken invariant, i.e. a bug. Thrown by LB_CHECK with file and line;
//    the job stops loudly (exit code 70).
#pragma once

#include <stdexcept>
#include <string>

namespace lookbook {

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bad or missing command-line or config option: exit code 2, one line naming the option.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

[[noreturn]] void ThrowInternalError(const char* file, int line, const char* condition, const std::string& message);

// Process exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitInputError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInternal = 70;  // EX_SOFTWARE

}  // namespace lookbook

#define LB_CHECK(condition, message)                                             \
  do {                                                                           \
    if (!(condition)) {                                                          \
      ::lookbook::ThrowInternalError(__FILE__, __LINE__, #condition, (message)); \
    }                                                                            \
  } while (0)
