#include "catalog/image_path.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "util/error.h"

namespace lookbook {

std::optional<RejectReason> NormaliseReference(std::string_view reference, std::string* relative) {
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

// Lexical folder ("a/b") -> its resolved path under the root, or the reason it is unusable.
struct ImageRoot::FolderCache {
  struct Entry {
    std::optional<RejectReason> reject;
    std::string resolved;  // absolute, canonical
  };
  std::shared_mutex mutex;
  std::unordered_map<std::string, Entry> folders;
};

ImageRoot::ImageRoot(std::filesystem::path canonical)
    : canonical_(std::move(canonical)), folders_(std::make_unique<FolderCache>()) {}
ImageRoot::ImageRoot(ImageRoot&&) noexcept = default;
ImageRoot& ImageRoot::operator=(ImageRoot&&) noexcept = default;
ImageRoot::~ImageRoot() = default;

ImageRoot ImageRoot::Open(const std::filesystem::path& folder) {
  std::error_code error;
  const std::filesystem::path canonical = std::filesystem::canonical(folder, error);
  if (error || !std::filesystem::is_directory(canonical)) {
    throw InputError("image root " + folder.string() + " is not a folder" + (error ? ": " + error.message() : ""));
  }
  return ImageRoot(canonical);
}

namespace {

bool IsInside(std::string_view path, const std::string& root) {
  return path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
         (root == "/" || path[root.size()] == '/');
}

// Resolves `joined` as the kernel would (symlinks first, then ".."); the result must still
// be under `root`: the lexical check alone misses "link/../x" and links that leave.
std::optional<RejectReason> Resolve(const std::string& joined, const std::string& root, std::string* resolved) {
  char buffer[PATH_MAX];
  if (::realpath(joined.c_str(), buffer) == nullptr) {
    return (errno == ENOENT || errno == ENOTDIR) ? RejectReason::kMissing : RejectReason::kUnreadable;
  }
  *resolved = buffer;
  if (!IsInside(*resolved, root)) return RejectReason::kOutsideRoot;
  return std::nullopt;
}

// stat facts of a resolved file into `result`.
void CheckFile(const struct stat& info, std::uint64_t max_bytes, ImagePathCheck* result) {
  if (!S_ISREG(info.st_mode)) {
    result->reject = RejectReason::kNotAFile;
    return;
  }
  result->size = static_cast<std::uint64_t>(info.st_size);
  result->mtime_ns = static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
  if (result->size == 0) {
    result->reject = RejectReason::kEmptyFile;
  } else if (result->size > max_bytes) {
    result->reject = RejectReason::kTooLarge;
  }
}

}  // namespace

ImagePathCheck ImageRoot::Check(std::string_view reference, std::uint64_t max_bytes) const {
  ImagePathCheck result;
  std::string normalised;
  if (auto reason = NormaliseReference(reference, &normalised)) {
    result.reject = reason;
    return result;
  }
  const std::string& root = canonical_.string();
  const std::size_t slash = normalised.rfind('/');
  const std::string folder = slash == std::string::npos ? "" : normalised.substr(0, slash);

  // Fast path: the reference has no ".." (a symlink before ".." would change its meaning),
  // its folder is resolved once, and the file itself is lstat'ed: not a symlink, it is the
  // file that the path names.
  const bool has_dotdot = reference.find("..") != std::string_view::npos;
  if (!has_dotdot) {
    FolderCache::Entry entry;
    bool cached = false;
    {
      std::shared_lock<std::shared_mutex> lock(folders_->mutex);
      const auto it = folders_->folders.find(folder);
      if (it != folders_->folders.end()) {
        entry = it->second;
        cached = true;
      }
    }
    if (!cached) {
      if (folder.empty()) {
        entry.resolved = root;
      } else {
        entry.reject = Resolve(root + "/" + folder, root, &entry.resolved);
        if (!entry.reject) {
          struct stat info {};
          if (::stat(entry.resolved.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
            entry.reject = RejectReason::kMissing;  // a file where a folder should be
          }
        }
      }
      std::unique_lock<std::shared_mutex> lock(folders_->mutex);
      folders_->folders.emplace(folder, entry);
    }
    if (entry.reject) {
      result.reject = entry.reject;
      return result;
    }
    const std::string name = slash == std::string::npos ? normalised : normalised.substr(slash + 1);
    const std::string file = entry.resolved + "/" + name;
    struct stat info {};
    if (::lstat(file.c_str(), &info) != 0) {
      result.reject = (errno == ENOENT || errno == ENOTDIR) ? RejectReason::kMissing : RejectReason::kUnreadable;
      return result;
    }
    if (!S_ISLNK(info.st_mode)) {
      result.relative = file.substr(root == "/" ? 1 : root.size() + 1);
      CheckFile(info, max_bytes, &result);
      return result;
    }
  }

  // Slow path: symlinked file or "..": resolve the whole reference.
  std::string resolved;
  if (auto reason = Resolve(root + "/" + std::string(reference), root, &resolved)) {
    result.reject = reason;
    return result;
  }
  struct stat info {};
  if (::stat(resolved.c_str(), &info) != 0) {
    result.reject = RejectReason::kUnreadable;
    return result;
  }
  // The file that was checked is the file later stages open.
  result.relative = resolved.substr(root == "/" ? 1 : root.size() + 1);
  CheckFile(info, max_bytes, &result);
  return result;
}

}  // namespace lookbook
