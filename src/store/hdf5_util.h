// HDF5 helpers shared by the store's files (internal to src/store: callers never see HDF5).
// RAII handles, whole-dataset writes and reads, attributes, and the in-memory files every
// writer builds before util/publish.h writes them atomically.
#pragma once

#include <hdf5.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <mutex>
#include <string>
#include <vector>

#include "util/error.h"

namespace lookbook::hdf5 {

// HDF5 is not thread-safe in Debian's serial build: one call at a time in this process.
inline std::mutex& Hdf5Mutex() {
  static std::mutex mutex;
  return mutex;
}

// RAII for every HDF5 id.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      if (id_ >= 0) close_(id_);
      id_ = other.id_;
      close_ = other.close_;
      other.id_ = -1;
    }
    return *this;
  }
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

[[noreturn]] inline void Fail(const std::string& what, const std::filesystem::path& path) {
  throw InputError("HDF5: cannot " + what + " " + path.string());
}

inline Handle Check(Handle handle, const std::string& what, const std::filesystem::path& path) {
  if (!handle.ok()) Fail(what, path);
  return handle;
}

// Creation properties without modification times in the object headers: the same content
// gives the same bytes, so a rewritten file keeps its checksum and downstream stages skip.
inline Handle UntimedDatasetCreation() {
  Handle plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_obj_track_times(plist.get(), 0);
  return plist;
}
inline Handle UntimedGroupCreation() {
  Handle plist(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
  H5Pset_obj_track_times(plist.get(), 0);
  return plist;
}

inline Handle StringType() {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

inline Handle Space(std::initializer_list<hsize_t> dims) {
  std::vector<hsize_t> d(dims);
  return Handle(H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr), H5Sclose);
}

inline void WriteDataset(hid_t group, const char* name, hid_t file_type, hid_t memory_type,
                         std::initializer_list<hsize_t> dims, const void* data, const std::filesystem::path& path) {
  Handle space = Space(dims);
  Handle creation = UntimedDatasetCreation();
  Handle dataset =
      Check(Handle(H5Dcreate2(group, name, file_type, space.get(), H5P_DEFAULT, creation.get(), H5P_DEFAULT), H5Dclose),
            std::string("create dataset ") + name + " in", path);
  hsize_t total = 1;
  for (const hsize_t d : dims) total *= d;
  if (total > 0 && H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    Fail(std::string("write dataset ") + name + " to", path);
  }
}

inline void WriteStrings(hid_t group, const char* name, const std::vector<const char*>& values,
                         const std::filesystem::path& path) {
  Handle type = StringType();
  WriteDataset(group, name, type.get(), type.get(), {values.size()}, values.data(), path);
}

inline void WriteStringAttribute(hid_t object, const char* name, const std::string& value) {
  Handle type = StringType();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* text = value.c_str();
  H5Awrite(attribute.get(), type.get(), &text);
}

inline void WriteIntAttribute(hid_t object, const char* name, long long value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  H5Awrite(attribute.get(), H5T_NATIVE_LLONG, &value);
}

inline std::string ReadStringAttribute(hid_t object, const char* name, const std::filesystem::path& path) {
  Handle attribute =
      Check(Handle(H5Aopen(object, name, H5P_DEFAULT), H5Aclose), std::string("read attribute ") + name + " of", path);
  Handle type = StringType();
  char* text = nullptr;
  if (H5Aread(attribute.get(), type.get(), &text) < 0) Fail(std::string("read attribute ") + name + " of", path);
  std::string value = text == nullptr ? "" : text;
  H5free_memory(text);
  return value;
}

inline long long ReadIntAttribute(hid_t object, const char* name, const std::filesystem::path& path) {
  Handle attribute =
      Check(Handle(H5Aopen(object, name, H5P_DEFAULT), H5Aclose), std::string("read attribute ") + name + " of", path);
  long long value = 0;
  if (H5Aread(attribute.get(), H5T_NATIVE_LLONG, &value) < 0) Fail(std::string("read attribute ") + name + " of", path);
  return value;
}

inline hsize_t Rows(hid_t dataset) {
  Handle space(H5Dget_space(dataset), H5Sclose);
  hsize_t dims[H5S_MAX_RANK] = {};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  return dims[0];
}

inline std::vector<std::string> ReadStrings(hid_t group, const char* name, const std::filesystem::path& path) {
  Handle dataset =
      Check(Handle(H5Dopen2(group, name, H5P_DEFAULT), H5Dclose), std::string("open dataset ") + name + " in", path);
  const hsize_t n = Rows(dataset.get());
  std::vector<char*> raw(n, nullptr);
  Handle type = StringType();
  std::vector<std::string> values(n);
  if (n > 0) {
    if (H5Dread(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0) {
      Fail(std::string("read dataset ") + name + " in", path);
    }
    for (hsize_t i = 0; i < n; ++i) {
      values[i] = raw[i] == nullptr ? "" : raw[i];
      H5free_memory(raw[i]);
    }
  }
  return values;
}

template <typename T>
std::vector<T> ReadNumbers(hid_t group, const char* name, hid_t memory_type, std::size_t per_row,
                           const std::filesystem::path& path) {
  Handle dataset =
      Check(Handle(H5Dopen2(group, name, H5P_DEFAULT), H5Dclose), std::string("open dataset ") + name + " in", path);
  {
    // The dataset's shape must be rows x per_row: the buffer below is sized from it.
    Handle space(H5Dget_space(dataset.get()), H5Sclose);
    hsize_t dims[H5S_MAX_RANK] = {};
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 1) Fail(std::string("read the shape of dataset ") + name + " in", path);
    H5Sget_simple_extent_dims(space.get(), dims, nullptr);
    hsize_t inner = 1;
    for (int i = 1; i < rank; ++i) inner *= dims[i];
    if (inner != per_row) throw InputError(path.string() + ": dataset " + name + " does not have the expected width");
  }
  std::vector<T> values(Rows(dataset.get()) * per_row);
  if (!values.empty() && H5Dread(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0) {
    Fail(std::string("read dataset ") + name + " in", path);
  }
  return values;
}

inline Handle CreateGroup(hid_t parent, const char* name, const std::filesystem::path& path) {
  Handle creation = UntimedGroupCreation();
  return Check(Handle(H5Gcreate2(parent, name, H5P_DEFAULT, creation.get(), H5P_DEFAULT), H5Gclose),
               std::string("create /") + name + " in", path);
}

// Quiet HDF5's own error stack printing: failures become InputError messages.
inline void SilenceHdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

// A name for an in-memory file, unique in this process (HDF5 refuses two open files of one name).
inline std::filesystem::path MemoryFileName(const std::filesystem::path& path) {
  static std::atomic<unsigned> counter{0};
  return path.string() + ".mem-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// Files are built in memory (the core driver, no backing store) and published by
// util/publish.h as one byte image: a full disk or a kill is then a plain write error on a
// temporary file, and HDF5 never holds a half-written file (closing one after ENOSPC crashes
// HDF5 1.10 at exit). `name` only identifies the file inside HDF5 and in messages.
inline Handle CreateMemoryFile(const std::filesystem::path& name) {
  Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (H5Pset_fapl_core(access.get(), 1 << 20, /*backing_store=*/0) < 0) Fail("set up an in-memory file for", name);
  return Check(Handle(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), H5Fclose), "create", name);
}

// The bytes of a file made by CreateMemoryFile, after a flush.
inline std::string FileImage(hid_t file, const std::filesystem::path& name) {
  if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) Fail("flush", name);
  const ssize_t size = H5Fget_file_image(file, nullptr, 0);
  if (size < 0) Fail("take the image of", name);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  if (H5Fget_file_image(file, bytes.data(), bytes.size()) != size) Fail("take the image of", name);
  return bytes;
}

}  // namespace lookbook::hdf5
