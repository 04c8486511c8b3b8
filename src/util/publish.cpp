#include "util/publish.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/error.h"

namespace lookbook {
namespace {

constexpr std::size_t kBufferBytes = 1 << 20;
constexpr std::string_view kTempMarker = ".tmp-";

std::string ErrnoText(int error) { return std::strerror(error); }

// Writes all of `bytes` to `fd` (retrying short and interrupted writes); `path` names the file in
// the error.
void WriteAll(int fd, std::string_view bytes, const std::filesystem::path& path) {
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + offset, bytes.size() - offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw InputError("cannot write " + path.string() + ": " + ErrnoText(errno));
    }
    offset += static_cast<std::size_t>(n);
  }
}

}  // namespace

AtomicFile AtomicFile::Create(const std::filesystem::path& final_path) {
  static std::atomic<unsigned> counter{0};
  const std::filesystem::path temp_path = final_path.string() + std::string(kTempMarker) + std::to_string(::getpid()) +
                                          "-" + std::to_string(counter.fetch_add(1));
  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw InputError("cannot create " + temp_path.string() + ": " + ErrnoText(errno));
  }
  return AtomicFile(final_path, temp_path, fd);
}

AtomicFile::AtomicFile(std::filesystem::path final_path, std::filesystem::path temp_path, int fd)
    : final_path_(std::move(final_path)), temp_path_(std::move(temp_path)), fd_(fd) {
  buffer_.reserve(kBufferBytes);
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : final_path_(std::move(other.final_path_)),
      temp_path_(std::move(other.temp_path_)),
      fd_(other.fd_),
      buffer_(std::move(other.buffer_)),
      bytes_written_(other.bytes_written_) {
  other.fd_ = -1;
  other.temp_path_.clear();
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::Write(std::string_view bytes) {
  LB_CHECK(fd_ >= 0, "write to a committed AtomicFile " + final_path_.string());
  buffer_.append(bytes.data(), bytes.size());
  bytes_written_ += bytes.size();
  if (buffer_.size() >= kBufferBytes) Flush();
}

void AtomicFile::Flush() {
  WriteAll(fd_, buffer_, temp_path_);
  buffer_.clear();
}

void AtomicFile::Commit() {
  LB_CHECK(fd_ >= 0, "AtomicFile committed twice: " + final_path_.string());
  Flush();
  if (::fsync(fd_) != 0) {
    throw InputError("cannot fsync " + temp_path_.string() + ": " + ErrnoText(errno));
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    throw InputError("cannot close " + temp_path_.string() + ": " + ErrnoText(errno));
  }
  if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    throw InputError("cannot rename " + temp_path_.string() + " to " + final_path_.string() + ": " + ErrnoText(errno));
  }
  temp_path_.clear();
  SyncFolder(final_path_.has_parent_path() ? final_path_.parent_path() : std::filesystem::path("."));
}

void PublishFile(const std::filesystem::path& path, std::string_view contents) {
  AtomicFile file = AtomicFile::Create(path);
  file.Write(contents);
  file.Commit();
}

void PublishWrittenFile(const std::filesystem::path& temp_path, const std::filesystem::path& final_path) {
  const int fd = ::open(temp_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError("cannot open " + temp_path.string() + ": " + ErrnoText(errno));
  const int result = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (result != 0) throw InputError("cannot fsync " + temp_path.string() + ": " + ErrnoText(error));
  if (std::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    throw InputError("cannot rename " + temp_path.string() + " to " + final_path.string() + ": " + ErrnoText(errno));
  }
  SyncFolder(final_path.has_parent_path() ? final_path.parent_path() : std::filesystem::path("."));
}

int RemoveStaleTemporaries(const std::filesystem::path& folder) {
  int removed = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    if (entry.path().filename().string().find(kTempMarker) != std::string::npos) {
      std::filesystem::remove(entry.path(), error);
      if (!error) ++removed;
    }
  }
  return removed;
}

namespace {

// Opens `folder` and applies `sync` (fsync, syncfs) to it; throws InputError saying `what` failed.
void SyncThroughFolder(const std::filesystem::path& folder, int (*sync)(int), const std::string& what) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw InputError("cannot open folder " + folder.string() + ": " + ErrnoText(errno));
  const int result = sync(fd);
  const int error = errno;
  ::close(fd);
  if (result != 0) throw InputError("cannot " + what + " " + folder.string() + ": " + ErrnoText(error));
}

}  // namespace

void SyncFolder(const std::filesystem::path& folder) { SyncThroughFolder(folder, ::fsync, "fsync folder"); }

void WriteStagedFile(const std::filesystem::path& path, std::string_view contents) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw InputError("cannot create " + path.string() + ": " + ErrnoText(errno));
  try {
    WriteAll(fd, contents, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) throw InputError("cannot close " + path.string() + ": " + ErrnoText(errno));
}

void SyncStaged(const std::filesystem::path& folder) { SyncThroughFolder(folder, ::syncfs, "sync the file system of"); }

}  // namespace lookbook
