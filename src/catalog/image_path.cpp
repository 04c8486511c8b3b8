#include "catalog/image_path.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <vector>

#include "util/error.h"

namespace lookbook {

std::optional<RejectReason> NormaliseReference(std::string_view reference,
                                               std::string* relative) {
  for (const char ch : reference) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F) return RejectReason::kInvalidPath;
  }
  if (!reference.empty() && reference.front() == '/') return RejectReason::kAbsolutePath;
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= reference.size()) {
    std::size_t end = reference.find('/', start);
    if (end == std::string_view::npos) end = reference.size();
    const std::string_view part = reference.substr(start, end - start);
    if (part == "..") {
      if (parts.empty()) return RejectReason::kEscapesRoot;
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  if (parts.empty()) return RejectReason::kNotAFile;  // "", ".", "a/..": the root itself
  relative->clear();
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) relative->push_back('/');
    relative->append(parts[i]);
  }
  return std::nullopt;
}

ImageRoot ImageRoot::Open(const std::filesystem::path& folder) {
  std::error_code error;
  const std::filesystem::path canonical = std::filesystem::canonical(folder, error);
  if (error || !std::filesystem::is_directory(canonical)) {
    throw InputError("image root " + folder.string() + " is not a folder" +
                     (error ? ": " + error.message() : ""));
  }
  return ImageRoot(canonical);
}

ImagePathCheck ImageRoot::Check(std::string_view reference, std::uint64_t max_bytes) const {
  ImagePathCheck result;
  if (auto reason = NormaliseReference(reference, &result.relative)) {
    result.reject = reason;
    return result;
  }
  // Resolve the reference as the kernel would (symlinks first, then ".."), and make sure it
  // is still under the root: the lexical check alone misses "link/../x" and links that leave.
  const std::string joined = canonical_.string() + "/" + std::string(reference);
  char resolved[PATH_MAX];
  if (::realpath(joined.c_str(), resolved) == nullptr) {
    result.reject = (errno == ENOENT || errno == ENOTDIR) ? RejectReason::kMissing
                                                          : RejectReason::kUnreadable;
    return result;
  }
  const std::string& root = canonical_.string();
  const std::string_view resolved_view(resolved);
  const bool inside = resolved_view.size() > root.size() &&
                      resolved_view.compare(0, root.size(), root) == 0 &&
                      (root == "/" || resolved_view[root.size()] == '/');
  if (!inside) {
    result.reject = RejectReason::kOutsideRoot;
    return result;
  }
  // The file that was checked is the file later stages open.
  result.relative.assign(resolved_view.substr(root == "/" ? 1 : root.size() + 1));
  struct stat info {};
  if (::stat(resolved, &info) != 0) {
    result.reject = RejectReason::kUnreadable;
    return result;
  }
  if (!S_ISREG(info.st_mode)) {
    result.reject = RejectReason::kNotAFile;
    return result;
  }
  result.size = static_cast<std::uint64_t>(info.st_size);
  if (result.size == 0) {
    result.reject = RejectReason::kEmptyFile;
  } else if (result.size > max_bytes) {
    result.reject = RejectReason::kTooLarge;
  }
  return result;
}

}  // namespace lookbook
