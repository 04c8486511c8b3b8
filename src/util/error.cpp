#include "util/error.h"

namespace lookbook {

void ThrowInternalError(const char* file, int line, const char* condition, const std::string& message) {
  throw InternalError(std::string("internal error at ") + file + ":" + std::to_string(line) + ": check '" + condition +
                      "' failed: " + message);
}

}  // namespace lookbook
