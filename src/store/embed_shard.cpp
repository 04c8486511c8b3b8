#include "store/embed_shard.h"

#include <hdf5.h>

#include <cstring>
#include <atomic>
#include <mutex>
#include <unistd.h>

#include "util/error.h"
#include "util/publish.h"

namespace lookbook {
namespace {

// HDF5 is not thread-safe in Debian's serial build: one call at a time in this process.
std::mutex& Hdf5Mutex() {
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

[[noreturn]] void Fail(const std::string& what, const std::filesystem::path& path) {
  throw InputError("HDF5: cannot " + what + " " + path.string());
}

Handle Check(Handle handle, const std::string& what, const std::filesystem::path& path) {
  if (!handle.ok()) Fail(what, path);
  return handle;
}

Handle StringType() {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

Handle Space(std::initializer_list<hsize_t> dims) {
  std::vector<hsize_t> d(dims);
  return Handle(H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr), H5Sclose);
}

void WriteDataset(hid_t group, const char* name, hid_t file_type, hid_t memory_type,
                  std::initializer_list<hsize_t> dims, const void* data, const std::filesystem::path& path) {
  Handle space = Space(dims);
  Handle dataset = Check(Handle(H5Dcreate2(group, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose),
                         std::string("create dataset ") + name + " in", path);
  hsize_t total = 1;
  for (const hsize_t d : dims) total *= d;
  if (total > 0 && H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    Fail(std::string("write dataset ") + name + " to", path);
  }
}

void WriteStrings(hid_t group, const char* name, const std::vector<const char*>& values, const std::filesystem::path& path) {
  Handle type = StringType();
  WriteDataset(group, name, type.get(), type.get(), {values.size()}, values.data(), path);
}

void WriteStringAttribute(hid_t object, const char* name, const std::string& value) {
  Handle type = StringType();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* text = value.c_str();
  H5Awrite(attribute.get(), type.get(), &text);
}

void WriteIntAttribute(hid_t object, const char* name, long long value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  H5Awrite(attribute.get(), H5T_NATIVE_LLONG, &value);
}

std::string ReadStringAttribute(hid_t object, const char* name, const std::filesystem::path& path) {
  Handle attribute = Check(Handle(H5Aopen(object, name, H5P_DEFAULT), H5Aclose), std::string("read attribute ") + name + " of", path);
  Handle type = StringType();
  char* text = nullptr;
  if (H5Aread(attribute.get(), type.get(), &text) < 0) Fail(std::string("read attribute ") + name + " of", path);
  std::string value = text == nullptr ? "" : text;
  H5free_memory(text);
  return value;
}

long long ReadIntAttribute(hid_t object, const char* name, const std::filesystem::path& path) {
  Handle attribute = Check(Handle(H5Aopen(object, name, H5P_DEFAULT), H5Aclose), std::string("read attribute ") + name + " of", path);
  long long value = 0;
  if (H5Aread(attribute.get(), H5T_NATIVE_LLONG, &value) < 0) Fail(std::string("read attribute ") + name + " of", path);
  return value;
}

hsize_t Rows(hid_t dataset) {
  Handle space(H5Dget_space(dataset), H5Sclose);
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  return dims[0];
}

std::vector<std::string> ReadStrings(hid_t group, const char* name, const std::filesystem::path& path) {
  Handle dataset = Check(Handle(H5Dopen2(group, name, H5P_DEFAULT), H5Dclose), std::string("open dataset ") + name + " in", path);
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
  Handle dataset = Check(Handle(H5Dopen2(group, name, H5P_DEFAULT), H5Dclose), std::string("open dataset ") + name + " in", path);
  std::vector<T> values(Rows(dataset.get()) * per_row);
  if (!values.empty() && H5Dread(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0) {
    Fail(std::string("read dataset ") + name + " in", path);
  }
  return values;
}

// Quiet HDF5's own error stack printing: failures become InputError messages.
void SilenceHdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

std::filesystem::path TempPath(const std::filesystem::path& path) {
  static std::atomic<unsigned> counter{0};
  return path.string() + ".tmp-" + std::to_string(::getpid()) + "-h5-" + std::to_string(counter++);
}

// A temporary file removed unless published.
struct TempFile {
  std::filesystem::path path;
  bool published = false;
  ~TempFile() {
    if (!published) {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
  }
};

}  // namespace

void WriteEmbedShard(const std::filesystem::path& path, const EmbedShard& shard, EmbeddingStorage storage) {
  const std::size_t n = shard.images.size();
  const auto d = static_cast<std::size_t>(shard.meta.embedding_dim);
  LB_CHECK(shard.embeddings.size() == n * d, "embedding matrix does not match the image rows");
  TempFile temp{TempPath(path)};
  {
    std::lock_guard<std::mutex> lock(Hdf5Mutex());
    SilenceHdf5();
    Handle file = Check(Handle(H5Fcreate(temp.path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose), "create", temp.path);
    WriteIntAttribute(file.get(), "schema_version", kEmbedSchemaVersion);
    WriteIntAttribute(file.get(), "shard", shard.meta.shard);
    WriteIntAttribute(file.get(), "shard_count", shard.meta.shard_count);
    WriteIntAttribute(file.get(), "embedding_dim", shard.meta.embedding_dim);
    WriteStringAttribute(file.get(), "model_name", shard.meta.model_name);
    WriteStringAttribute(file.get(), "model_sha256", shard.meta.model_sha256);
    WriteStringAttribute(file.get(), "config_hash", shard.meta.config_hash);
    WriteStringAttribute(file.get(), "code_version", shard.meta.code_version);
    Handle images = Check(Handle(H5Gcreate2(file.get(), "images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose), "create /images in", temp.path);

    std::vector<const char*> key, product, reference, file_name, reason;
    std::vector<std::int8_t> status;
    std::vector<std::uint8_t> phash;
    std::vector<std::uint64_t> checksum;
    std::vector<std::int32_t> width, height;
    for (const auto& row : shard.images) {
      key.push_back(row.key.c_str());
      product.push_back(row.product_id.c_str());
      reference.push_back(row.path.c_str());
      file_name.push_back(row.file.c_str());
      reason.push_back(row.reason.c_str());
      status.push_back(row.status);
      phash.insert(phash.end(), row.phash.begin(), row.phash.end());
      checksum.push_back(row.checksum);
      width.push_back(row.width);
      height.push_back(row.height);
    }
    WriteStrings(images.get(), "key", key, temp.path);
    WriteStrings(images.get(), "product_id", product, temp.path);
    WriteStrings(images.get(), "path", reference, temp.path);
    WriteStrings(images.get(), "file", file_name, temp.path);
    WriteStrings(images.get(), "reason", reason, temp.path);
    WriteDataset(images.get(), "status", H5T_STD_I8LE, H5T_NATIVE_INT8, {n}, status.data(), temp.path);
    WriteDataset(images.get(), "phash", H5T_STD_U8LE, H5T_NATIVE_UINT8, {n, 8}, phash.data(), temp.path);
    WriteDataset(images.get(), "checksum", H5T_STD_U64LE, H5T_NATIVE_UINT64, {n}, checksum.data(), temp.path);
    WriteDataset(images.get(), "width", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, width.data(), temp.path);
    WriteDataset(images.get(), "height", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, height.data(), temp.path);
    // float16 on disk halves the files; HDF5 converts from the float32 in memory.
    if (storage == EmbeddingStorage::kFloat16) {
      Handle half(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
      H5Tset_fields(half.get(), 15, 10, 5, 0, 10);
      H5Tset_size(half.get(), 2);
      H5Tset_ebias(half.get(), 15);
      WriteDataset(images.get(), "embedding", half.get(), H5T_NATIVE_FLOAT, {n, d}, shard.embeddings.data(), temp.path);
    } else {
      WriteDataset(images.get(), "embedding", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {n, d}, shard.embeddings.data(), temp.path);
    }
    if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) Fail("flush", temp.path);
  }
  PublishWrittenFile(temp.path, path);
  temp.published = true;
}

EmbedShard ReadEmbedShard(const std::filesystem::path& path) {
  std::lock_guard<std::mutex> lock(Hdf5Mutex());
  SilenceHdf5();
  if (!std::filesystem::is_regular_file(path)) throw InputError("no shard file " + path.string());
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(path.string() + " is not an HDF5 file");
  Handle file = Check(Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose), "open", path);
  EmbedShard shard;
  const long long version = ReadIntAttribute(file.get(), "schema_version", path);
  if (version != kEmbedSchemaVersion) {
    throw InputError(path.string() + " has schema_version " + std::to_string(version) + ", this build reads " +
                     std::to_string(kEmbedSchemaVersion));
  }
  shard.meta.shard = static_cast<int>(ReadIntAttribute(file.get(), "shard", path));
  shard.meta.shard_count = static_cast<int>(ReadIntAttribute(file.get(), "shard_count", path));
  shard.meta.embedding_dim = static_cast<int>(ReadIntAttribute(file.get(), "embedding_dim", path));
  shard.meta.model_name = ReadStringAttribute(file.get(), "model_name", path);
  shard.meta.model_sha256 = ReadStringAttribute(file.get(), "model_sha256", path);
  shard.meta.config_hash = ReadStringAttribute(file.get(), "config_hash", path);
  shard.meta.code_version = ReadStringAttribute(file.get(), "code_version", path);
  Handle images = Check(Handle(H5Gopen2(file.get(), "images", H5P_DEFAULT), H5Gclose), "open /images in", path);
  const auto key = ReadStrings(images.get(), "key", path);
  const auto product = ReadStrings(images.get(), "product_id", path);
  const auto reference = ReadStrings(images.get(), "path", path);
  const auto file_name = ReadStrings(images.get(), "file", path);
  const auto reason = ReadStrings(images.get(), "reason", path);
  const auto status = ReadNumbers<std::int8_t>(images.get(), "status", H5T_NATIVE_INT8, 1, path);
  const auto phash = ReadNumbers<std::uint8_t>(images.get(), "phash", H5T_NATIVE_UINT8, 8, path);
  const auto checksum = ReadNumbers<std::uint64_t>(images.get(), "checksum", H5T_NATIVE_UINT64, 1, path);
  const auto width = ReadNumbers<std::int32_t>(images.get(), "width", H5T_NATIVE_INT32, 1, path);
  const auto height = ReadNumbers<std::int32_t>(images.get(), "height", H5T_NATIVE_INT32, 1, path);
  shard.embeddings = ReadNumbers<float>(images.get(), "embedding", H5T_NATIVE_FLOAT,
                                        static_cast<std::size_t>(shard.meta.embedding_dim), path);
  const std::size_t n = key.size();
  if (product.size() != n || reference.size() != n || status.size() != n || checksum.size() != n ||
      shard.embeddings.size() != n * static_cast<std::size_t>(shard.meta.embedding_dim)) {
    throw InputError(path.string() + ": /images datasets differ in length");
  }
  shard.images.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    ImageRow& row = shard.images[i];
    row.key = key[i];
    row.product_id = product[i];
    row.path = reference[i];
    row.file = file_name[i];
    row.reason = reason[i];
    row.status = status[i];
    std::copy(phash.begin() + static_cast<long>(i * 8), phash.begin() + static_cast<long>(i * 8 + 8), row.phash.begin());
    row.checksum = checksum[i];
    row.width = width[i];
    row.height = height[i];
  }
  return shard;
}

void WriteCatalogView(const std::filesystem::path& path, const std::vector<std::filesystem::path>& shard_files) {
  struct Source {
    std::string name;
    hsize_t rows;
  };
  std::vector<Source> sources;
  hsize_t total = 0;
  int dim = -1;
  hid_t embedding_type = -1;
  Handle embedding_type_handle(-1, H5Tclose);
  std::lock_guard<std::mutex> lock(Hdf5Mutex());
  SilenceHdf5();
  for (const auto& shard_file : shard_files) {
    Handle file = Check(Handle(H5Fopen(shard_file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose), "open", shard_file);
    Handle dataset = Check(Handle(H5Dopen2(file.get(), "images/embedding", H5P_DEFAULT), H5Dclose), "open /images/embedding in", shard_file);
    Handle space(H5Dget_space(dataset.get()), H5Sclose);
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(space.get(), dims, nullptr);
    if (dim < 0) {
      dim = static_cast<int>(dims[1]);
      embedding_type_handle = Handle(H5Dget_type(dataset.get()), H5Tclose);
      embedding_type = embedding_type_handle.get();
    } else if (static_cast<int>(dims[1]) != dim) {
      throw InputError(shard_file.string() + ": embedding width differs from the other shards");
    }
    sources.push_back({shard_file.filename().string(), dims[0]});
    total += dims[0];
  }
  LB_CHECK(!sources.empty(), "a catalog view needs at least one shard");

  TempFile temp{TempPath(path)};
  {
    Handle file = Check(Handle(H5Fcreate(temp.path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose), "create", temp.path);
    WriteIntAttribute(file.get(), "schema_version", kEmbedSchemaVersion);
    WriteIntAttribute(file.get(), "shard_count", static_cast<long long>(sources.size()));
    WriteIntAttribute(file.get(), "embedding_dim", dim);
    Handle images = Check(Handle(H5Gcreate2(file.get(), "images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose), "create /images in", temp.path);
    Handle strings = StringType();
    struct Column {
      const char* name;
      hid_t type;
      hsize_t width;  // second dimension, 0 for 1-D
    };
    const std::vector<Column> columns = {
        {"key", strings.get(), 0},        {"product_id", strings.get(), 0}, {"path", strings.get(), 0},
        {"file", strings.get(), 0},       {"reason", strings.get(), 0},     {"status", H5T_STD_I8LE, 0},
        {"phash", H5T_STD_U8LE, 8},       {"checksum", H5T_STD_U64LE, 0},   {"width", H5T_STD_I32LE, 0},
        {"height", H5T_STD_I32LE, 0},     {"embedding", embedding_type, static_cast<hsize_t>(dim)},
    };
    for (const auto& column : columns) {
      const int rank = column.width > 0 ? 2 : 1;
      const hsize_t dims[2] = {total, column.width};
      Handle space(H5Screate_simple(rank, dims, nullptr), H5Sclose);
      Handle plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
      hsize_t offset = 0;
      for (const auto& source : sources) {
        if (source.rows == 0) continue;
        const hsize_t start[2] = {offset, 0};
        const hsize_t count[2] = {source.rows, column.width};
        H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
        const hsize_t source_dims[2] = {source.rows, column.width};
        Handle source_space(H5Screate_simple(rank, source_dims, nullptr), H5Sclose);
        const std::string dataset = std::string("/images/") + column.name;
        if (H5Pset_virtual(plist.get(), space.get(), source.name.c_str(), dataset.c_str(), source_space.get()) < 0) {
          Fail("map " + dataset + " of " + source.name + " into", temp.path);
        }
        offset += source.rows;
      }
      H5Sselect_all(space.get());
      Check(Handle(H5Dcreate2(images.get(), column.name, column.type, space.get(), H5P_DEFAULT, plist.get(), H5P_DEFAULT), H5Dclose),
            std::string("create virtual dataset ") + column.name + " in", temp.path);
    }
    // Which shard each row came from: a small real dataset, not a view.
    std::vector<std::int32_t> shard_of;
    for (std::size_t s = 0; s < sources.size(); ++s) shard_of.insert(shard_of.end(), sources[s].rows, static_cast<std::int32_t>(s));
    WriteDataset(images.get(), "shard", H5T_STD_I32LE, H5T_NATIVE_INT32, {total}, shard_of.data(), temp.path);
    if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) Fail("flush", temp.path);
  }
  PublishWrittenFile(temp.path, path);
  temp.published = true;
}

}  // namespace lookbook
