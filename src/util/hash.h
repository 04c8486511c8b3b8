// Content hashes. xxh3-64 for file checksums (fast, recorded as "xxh3:<16 hex>"), xxh64 for
// sharding (its output is fixed by the xxHash spec, so shard assignment never changes).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace lookbook {

std::uint64_t Xxh3(std::string_view bytes);
std::uint64_t Xxh64(std::string_view bytes, std::uint64_t seed);

// "xxh3:" + 16 lower-case hex digits.
std::string FormatChecksum(std::uint64_t xxh3);

struct FileChecksum {
  std::uint64_t size = 0;
  std::string checksum;  // FormatChecksum of the whole file
};

// Streams the file; throws InputError when it cannot be read.
FileChecksum ChecksumFile(const std::filesystem::path& path);

// The whole file; throws InputError when it cannot be read.
std::string ReadFileBytes(const std::filesystem::path& path);

}  // namespace lookbook
