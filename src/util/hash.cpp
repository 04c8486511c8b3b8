#include "util/hash.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "util/error.h"

namespace lookbook {

std::uint64_t Xxh3(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

std::uint64_t Xxh64(std::string_view bytes, std::uint64_t seed) { return XXH64(bytes.data(), bytes.size(), seed); }

std::string FormatChecksum(std::uint64_t xxh3) {
  char text[32];
  std::snprintf(text, sizeof text, "xxh3:%016llx", static_cast<unsigned long long>(xxh3));
  return text;
}

namespace {

// Opens a regular file for reading; a FIFO or device (which could block the reader forever) is
// refused like an unreadable file.
int OpenRegular(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw InputError("cannot read " + path.string() + ": " + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    throw InputError("cannot read " + path.string() + ": not a regular file");
  }
  return fd;
}

}  // namespace

std::string ReadFileBytes(const std::filesystem::path& path) {
  const int fd = OpenRegular(path);
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw InputError("cannot read " + path.string() + ": " + std::strerror(error));
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return bytes;
}

FileChecksum ChecksumFile(const std::filesystem::path& path) {
  const int fd = OpenRegular(path);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), &XXH3_freeState);
  LB_CHECK(state != nullptr, "XXH3_createState failed");
  XXH3_64bits_reset(state.get());
  std::vector<char> buffer(1 << 20);
  FileChecksum result;
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw InputError("cannot read " + path.string() + ": " + std::strerror(error));
    }
    if (n == 0) break;
    XXH3_64bits_update(state.get(), buffer.data(), static_cast<std::size_t>(n));
    result.size += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  result.checksum = FormatChecksum(XXH3_64bits_digest(state.get()));
  return result;
}

}  // namespace lookbook
