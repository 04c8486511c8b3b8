// Validation of image references against the image root, before anything opens the file.
// A reference is accepted only when it is relative, stays inside the root lexically (no ".."
// above it) and after resolving symlinks, names an existing regular file, is not empty and
// is not larger than the cap.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "catalog/reject.h"

namespace lookbook {

struct ImagePathCheck {
  std::optional<RejectReason> reject;  // nullopt: accepted
  std::string relative;                // the resolved file, relative to the root ("a/b.jpg")
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;  // modification time, nanoseconds since the epoch
};

class ImageRoot {
 public:
  // Throws InputError when `folder` is not an existing folder.
  static ImageRoot Open(const std::filesystem::path& folder);

  ImageRoot(ImageRoot&&) noexcept;
  ImageRoot& operator=(ImageRoot&&) noexcept;
  ~ImageRoot();

  // Thread-safe; touches the file system only (stat calls, no file is opened). Folders are
  // resolved once and remembered, so a catalog whose images share folders costs about one
  // lstat per image: the check assumes the folders under the root do not change while it runs.
  ImagePathCheck Check(std::string_view reference, std::uint64_t max_bytes) const;

  const std::filesystem::path& canonical() const { return canonical_; }

 private:
  struct FolderCache;
  explicit ImageRoot(std::filesystem::path canonical);
  std::filesystem::path canonical_;
  std::unique_ptr<FolderCache> folders_;
};

// Lexical part of the check (no file system): the normalised relative path, or the reason.
// Exposed for tests and for the URL layouts.
std::optional<RejectReason> NormaliseReference(std::string_view reference, std::string* relative);

}  // namespace lookbook
