// Atomic publication, the one way every lookbook output reaches its final name: write to a
// temporary file in the same folder, fsync it, rename it over the final name, fsync the
// folder. A reader sees the old file or the complete new one, never a partial one; a killed
// writer leaves only a ".tmp-" file that the next run removes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace lookbook {

class AtomicFile {
 public:
  // Creates "<final>.tmp-<pid>-<n>" next to `final_path` (the folder must exist).
  // Throws InputError when the folder is not writable.
  static AtomicFile Create(const std::filesystem::path& final_path);

  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  ~AtomicFile();  // removes the temporary file unless Commit() succeeded

  // Buffered; throws InputError on a write error (for example ENOSPC).
  void Write(std::string_view bytes);
  // Flushes, fsyncs, renames to the final name, fsyncs the folder.
  void Commit();

  const std::filesystem::path& final_path() const { return final_path_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }
  std::uint64_t bytes_written() const { return bytes_written_; }

 private:
  AtomicFile(std::filesystem::path final_path, std::filesystem::path temp_path, int fd);
  void Flush();

  std::filesystem::path final_path_;
  std::filesystem::path temp_path_;
  int fd_ = -1;
  std::string buffer_;
  std::uint64_t bytes_written_ = 0;
};

// Publishes `contents` at `path` atomically.
void PublishFile(const std::filesystem::path& path, std::string_view contents);

// Publishes a file another library wrote (HDF5, FAISS) under a temporary name in the same
// folder: fsync it, rename it to `final_path`, fsync the folder.
void PublishWrittenFile(const std::filesystem::path& temp_path, const std::filesystem::path& final_path);

// Removes temporary files left in `folder` by killed writers; returns how many.
int RemoveStaleTemporaries(const std::filesystem::path& folder);

// fsyncs a folder so that a rename inside it is durable.
void SyncFolder(const std::filesystem::path& folder);

// For many small files in a stage's private staging folder (the report's thumbnails), which no
// reader sees until the stage publishes the folder by one rename: WriteStagedFile writes one
// without a sync of its own, and SyncStaged makes every file written so far durable with one
// syncfs(2) of the folder's file system, before the stage publishes. One sync instead of two
// fsyncs a file (measured: docs/performance.md#dedup-and-the-report-at-scale).
void WriteStagedFile(const std::filesystem::path& path, std::string_view contents);
void SyncStaged(const std::filesystem::path& folder);

}  // namespace lookbook
