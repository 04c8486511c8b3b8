#include "store/embed_shard.h"

#include <malloc.h>

#include <hdf5.h>

#include <unistd.h>
#include <atomic>
#include <cstring>
#include <mutex>

#include "store/hdf5_util.h"
#include "util/error.h"
#include "util/publish.h"

namespace lookbook {
namespace {

using namespace hdf5;  // NOLINT: the store's own helpers

// float16 on disk halves the files; HDF5 converts from the float32 in memory.
void WriteEmbeddings(hid_t group, std::initializer_list<hsize_t> dims, const float* data, EmbeddingStorage storage,
                     const std::filesystem::path& path) {
  if (storage == EmbeddingStorage::kFloat16) {
    Handle half(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
    H5Tset_fields(half.get(), 15, 10, 5, 0, 10);
    H5Tset_size(half.get(), 2);
    H5Tset_ebias(half.get(), 15);
    WriteDataset(group, "embedding", half.get(), H5T_NATIVE_FLOAT, dims, data, path);
  } else {
    WriteDataset(group, "embedding", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims, data, path);
  }
}

void WriteGarments(hid_t file, const EmbedShard& shard, EmbeddingStorage storage, const std::filesystem::path& path) {
  const std::size_t g = shard.garments.size();
  const auto d = static_cast<std::size_t>(shard.meta.embedding_dim);
  LB_CHECK(shard.garment_embeddings.size() == g * d, "garment embeddings do not match the garment rows");
  Handle garments = CreateGroup(file, "garments", path);
  std::vector<std::int64_t> image_index, area;
  std::vector<const char*> slot;
  std::vector<std::int32_t> box;
  std::vector<float> score;
  for (const auto& row : shard.garments) {
    LB_CHECK(row.image_index >= 0 && static_cast<std::size_t>(row.image_index) < shard.images.size(),
             "garment of no image");
    image_index.push_back(row.image_index);
    slot.push_back(row.slot.c_str());
    box.insert(box.end(), row.box.begin(), row.box.end());
    area.push_back(row.area);
    score.push_back(row.score);
  }
  WriteDataset(garments.get(), "image_index", H5T_STD_I64LE, H5T_NATIVE_INT64, {g}, image_index.data(), path);
  WriteStrings(garments.get(), "slot", slot, path);
  WriteDataset(garments.get(), "box", H5T_STD_I32LE, H5T_NATIVE_INT32, {g, 4}, box.data(), path);
  WriteDataset(garments.get(), "area", H5T_STD_I64LE, H5T_NATIVE_INT64, {g}, area.data(), path);
  WriteDataset(garments.get(), "score", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {g}, score.data(), path);
  WriteEmbeddings(garments.get(), {g, d}, shard.garment_embeddings.data(), storage, path);

  const std::size_t m = shard.mask_image_index.size();
  const auto side = static_cast<hsize_t>(std::max(shard.mask_side, 1));
  LB_CHECK(shard.masks.size() == m * side * side || (m == 0 && shard.masks.empty()),
           "mask maps do not match their images");
  Handle masks = CreateGroup(file, "masks", path);
  WriteDataset(masks.get(), "image_index", H5T_STD_I64LE, H5T_NATIVE_INT64, {m}, shard.mask_image_index.data(), path);
  // One map per chunk, deflated: label maps are mostly runs of zeros.
  const hsize_t dims[3] = {m, side, side};
  const hsize_t max_dims[3] = {H5S_UNLIMITED, side, side};
  const hsize_t chunk[3] = {1, side, side};
  Handle space(H5Screate_simple(3, dims, max_dims), H5Sclose);
  Handle plist = UntimedDatasetCreation();
  H5Pset_chunk(plist.get(), 3, chunk);
  H5Pset_deflate(plist.get(), 1);
  Handle labels =
      Check(Handle(H5Dcreate2(masks.get(), "labels", H5T_STD_U8LE, space.get(), H5P_DEFAULT, plist.get(), H5P_DEFAULT),
                   H5Dclose),
            "create dataset /masks/labels in", path);
  if (m > 0 && H5Dwrite(labels.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, shard.masks.data()) < 0) {
    Fail("write dataset /masks/labels to", path);
  }
  WriteIntAttribute(labels.get(), "mask_side", shard.mask_side);
}

// One thumbnail per chunk, deflated: dedup reads the rows it verifies, not the whole shard. Level 1:
// an incremental night rewrites every row it copies, and level 4 cost 14% more of that night's
// embed for 3% fewer bytes (docs/outputs.md).
void WriteAlignThumbs(hid_t images, const EmbedShard& shard, const std::filesystem::path& path) {
  constexpr hsize_t kSide = kAlignThumbSide;
  const hsize_t n = shard.images.size();
  LB_CHECK(shard.align_thumbs.size() == n * kSide * kSide * 3, "align thumbnails do not match the image rows");
  const hsize_t dims[4] = {n, kSide, kSide, 3};
  const hsize_t max_dims[4] = {H5S_UNLIMITED, kSide, kSide, 3};
  const hsize_t chunk[4] = {1, kSide, kSide, 3};
  Handle space(H5Screate_simple(4, dims, max_dims), H5Sclose);
  Handle plist = UntimedDatasetCreation();
  H5Pset_chunk(plist.get(), 4, chunk);
  H5Pset_deflate(plist.get(), 1);
  Handle thumbs =
      Check(Handle(H5Dcreate2(images, "align_thumb", H5T_STD_U8LE, space.get(), H5P_DEFAULT, plist.get(), H5P_DEFAULT),
                   H5Dclose),
            "create dataset /images/align_thumb in", path);
  if (n > 0 && H5Dwrite(thumbs.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, shard.align_thumbs.data()) < 0) {
    Fail("write dataset /images/align_thumb to", path);
  }
}

}  // namespace

void WriteEmbedShard(const std::filesystem::path& path, const EmbedShard& shard, EmbeddingStorage storage) {
  const std::size_t n = shard.images.size();
  const auto d = static_cast<std::size_t>(shard.meta.embedding_dim);
  LB_CHECK(shard.embeddings.size() == n * d, "embedding matrix does not match the image rows");
  const std::filesystem::path name = MemoryFileName(path);
  std::string image;
  {
    std::lock_guard<std::mutex> lock(Hdf5Mutex());
    SilenceHdf5();
    Handle file = CreateMemoryFile(name);
    WriteIntAttribute(file.get(), "schema_version", kEmbedSchemaVersion);
    WriteIntAttribute(file.get(), "shard", shard.meta.shard);
    WriteIntAttribute(file.get(), "shard_count", shard.meta.shard_count);
    WriteIntAttribute(file.get(), "embedding_dim", shard.meta.embedding_dim);
    WriteStringAttribute(file.get(), "model_name", shard.meta.model_name);
    WriteStringAttribute(file.get(), "model_sha256", shard.meta.model_sha256);
    WriteStringAttribute(file.get(), "config_hash", shard.meta.config_hash);
    WriteStringAttribute(file.get(), "code_version", shard.meta.code_version);
    WriteStringAttribute(file.get(), "segmenter_name", shard.meta.segmenter_name);
    WriteStringAttribute(file.get(), "segmenter_sha256", shard.meta.segmenter_sha256);
    Handle images = Check(
        Handle(H5Gcreate2(file.get(), "images", H5P_DEFAULT, UntimedGroupCreation().get(), H5P_DEFAULT), H5Gclose),
        "create /images in", name);

    std::vector<const char*> key, product, reference, file_name, reason;
    std::vector<std::int8_t> status;
    std::vector<std::uint8_t> phash;
    std::vector<std::uint64_t> checksum;
    std::vector<std::int32_t> width, height;
    std::vector<std::int16_t> content_box;
    std::vector<float> colour;
    for (const auto& row : shard.images) {
      content_box.insert(content_box.end(), row.content_box.begin(), row.content_box.end());
      colour.insert(colour.end(), row.colour.begin(), row.colour.end());
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
    WriteStrings(images.get(), "key", key, name);
    WriteStrings(images.get(), "product_id", product, name);
    WriteStrings(images.get(), "path", reference, name);
    WriteStrings(images.get(), "file", file_name, name);
    WriteStrings(images.get(), "reason", reason, name);
    WriteDataset(images.get(), "status", H5T_STD_I8LE, H5T_NATIVE_INT8, {n}, status.data(), name);
    WriteDataset(images.get(), "phash", H5T_STD_U8LE, H5T_NATIVE_UINT8, {n, 8}, phash.data(), name);
    WriteDataset(images.get(), "checksum", H5T_STD_U64LE, H5T_NATIVE_UINT64, {n}, checksum.data(), name);
    WriteDataset(images.get(), "width", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, width.data(), name);
    WriteDataset(images.get(), "height", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, height.data(), name);
    WriteDataset(images.get(), "content_box", H5T_STD_I16LE, H5T_NATIVE_INT16, {n, 4}, content_box.data(), name);
    WriteDataset(images.get(), "colour", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {n, 6}, colour.data(), name);
    WriteAlignThumbs(images.get(), shard, name);
    WriteEmbeddings(images.get(), {n, d}, shard.embeddings.data(), storage, name);
    WriteGarments(file.get(), shard, storage, name);
    image = FileImage(file.get(), name);
  }
  PublishFile(path, image);
}

EmbedShard ReadEmbedShard(const std::filesystem::path& path, ShardParts parts) {
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
  shard.meta.segmenter_name = ReadStringAttribute(file.get(), "segmenter_name", path);
  shard.meta.segmenter_sha256 = ReadStringAttribute(file.get(), "segmenter_sha256", path);
  Handle images = Check(Handle(H5Gopen2(file.get(), "images", H5P_DEFAULT), H5Gclose), "open /images in", path);
  const auto key = ReadStrings(images.get(), "key", path);
  const auto product = ReadStrings(images.get(), "product_id", path);
  const bool names = parts != ShardParts::kRowsOnly;
  const bool vectors = parts != ShardParts::kRowsOnly && parts != ShardParts::kRowsWithNames;
  const auto reference = names ? ReadStrings(images.get(), "path", path) : std::vector<std::string>{};
  const auto file_name = names ? ReadStrings(images.get(), "file", path) : std::vector<std::string>{};
  const auto reason = names ? ReadStrings(images.get(), "reason", path) : std::vector<std::string>{};
  const auto status = ReadNumbers<std::int8_t>(images.get(), "status", H5T_NATIVE_INT8, 1, path);
  const auto phash = ReadNumbers<std::uint8_t>(images.get(), "phash", H5T_NATIVE_UINT8, 8, path);
  const auto checksum = ReadNumbers<std::uint64_t>(images.get(), "checksum", H5T_NATIVE_UINT64, 1, path);
  const auto width = ReadNumbers<std::int32_t>(images.get(), "width", H5T_NATIVE_INT32, 1, path);
  const auto height = ReadNumbers<std::int32_t>(images.get(), "height", H5T_NATIVE_INT32, 1, path);
  const auto content_box = ReadNumbers<std::int16_t>(images.get(), "content_box", H5T_NATIVE_INT16, 4, path);
  const auto colour = ReadNumbers<float>(images.get(), "colour", H5T_NATIVE_FLOAT, 6, path);
  constexpr std::size_t kThumb = static_cast<std::size_t>(kAlignThumbSide) * kAlignThumbSide * 3;
  if (parts == ShardParts::kAll) {
    shard.align_thumbs = ReadNumbers<std::uint8_t>(images.get(), "align_thumb", H5T_NATIVE_UINT8, kThumb, path);
  }
  if (vectors) {
    shard.embeddings = ReadNumbers<float>(images.get(), "embedding", H5T_NATIVE_FLOAT,
                                          static_cast<std::size_t>(shard.meta.embedding_dim), path);
  }
  const std::size_t n = key.size();
  if (product.size() != n || (names && (reference.size() != n || file_name.size() != n || reason.size() != n)) ||
      status.size() != n || checksum.size() != n || content_box.size() != 4 * n || colour.size() != 6 * n ||
      (parts == ShardParts::kAll && shard.align_thumbs.size() != n * kThumb) ||
      (vectors && shard.embeddings.size() != n * static_cast<std::size_t>(shard.meta.embedding_dim))) {
    throw InputError(path.string() + ": /images datasets differ in length");
  }
  shard.images.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    ImageRow& row = shard.images[i];
    row.key = key[i];
    row.product_id = product[i];
    if (names) {
      row.path = reference[i];
      row.file = file_name[i];
      row.reason = reason[i];
    }
    row.status = status[i];
    std::copy(phash.begin() + static_cast<long>(i * 8), phash.begin() + static_cast<long>(i * 8 + 8),
              row.phash.begin());
    row.checksum = checksum[i];
    row.width = width[i];
    row.height = height[i];
    std::copy(content_box.begin() + static_cast<long>(4 * i), content_box.begin() + static_cast<long>(4 * i + 4),
              row.content_box.begin());
    std::copy(colour.begin() + static_cast<long>(6 * i), colour.begin() + static_cast<long>(6 * i + 6),
              row.colour.begin());
  }
  if (parts == ShardParts::kImages) return shard;

  Handle garments = Check(Handle(H5Gopen2(file.get(), "garments", H5P_DEFAULT), H5Gclose), "open /garments in", path);
  const auto image_index = ReadNumbers<std::int64_t>(garments.get(), "image_index", H5T_NATIVE_INT64, 1, path);
  const auto slot = ReadStrings(garments.get(), "slot", path);
  const auto box = ReadNumbers<std::int32_t>(garments.get(), "box", H5T_NATIVE_INT32, 4, path);
  const auto area = ReadNumbers<std::int64_t>(garments.get(), "area", H5T_NATIVE_INT64, 1, path);
  const auto score = ReadNumbers<float>(garments.get(), "score", H5T_NATIVE_FLOAT, 1, path);
  if (vectors) {
    shard.garment_embeddings = ReadNumbers<float>(garments.get(), "embedding", H5T_NATIVE_FLOAT,
                                                  static_cast<std::size_t>(shard.meta.embedding_dim), path);
  }
  const std::size_t g = image_index.size();
  if (slot.size() != g || box.size() != 4 * g || area.size() != g || score.size() != g ||
      (vectors && shard.garment_embeddings.size() != g * static_cast<std::size_t>(shard.meta.embedding_dim))) {
    throw InputError(path.string() + ": /garments datasets differ in length");
  }
  shard.garments.resize(g);
  for (std::size_t i = 0; i < g; ++i) {
    if (image_index[i] < 0 || static_cast<std::size_t>(image_index[i]) >= n) {
      throw InputError(path.string() + ": /garments/image_index points outside /images");
    }
    shard.garments[i] = GarmentRow{
        image_index[i], slot[i], {box[4 * i], box[4 * i + 1], box[4 * i + 2], box[4 * i + 3]}, area[i], score[i]};
  }
  if (!vectors) return shard;
  Handle masks = Check(Handle(H5Gopen2(file.get(), "masks", H5P_DEFAULT), H5Gclose), "open /masks in", path);
  shard.mask_image_index = ReadNumbers<std::int64_t>(masks.get(), "image_index", H5T_NATIVE_INT64, 1, path);
  {
    Handle labels =
        Check(Handle(H5Dopen2(masks.get(), "labels", H5P_DEFAULT), H5Dclose), "open /masks/labels in", path);
    shard.mask_side = static_cast<int>(ReadIntAttribute(labels.get(), "mask_side", path));
  }
  const auto side = static_cast<std::size_t>(std::max(shard.mask_side, 1));
  shard.masks = ReadNumbers<std::uint8_t>(masks.get(), "labels", H5T_NATIVE_UINT8, side * side, path);
  if (shard.masks.size() != shard.mask_image_index.size() * side * side) {
    throw InputError(path.string() + ": /masks datasets differ in length");
  }
  return shard;
}

std::vector<std::uint8_t> ReadAlignThumbs(const std::filesystem::path& path, const std::vector<std::int64_t>& rows) {
  constexpr hsize_t kSide = kAlignThumbSide;
  constexpr std::size_t kThumb = kSide * kSide * 3;
  std::lock_guard<std::mutex> lock(Hdf5Mutex());
  SilenceHdf5();
  Handle file = Check(Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose), "open", path);
  Handle dataset = Check(Handle(H5Dopen2(file.get(), "images/align_thumb", H5P_DEFAULT), H5Dclose),
                         "open /images/align_thumb in", path);
  Handle space(H5Dget_space(dataset.get()), H5Sclose);
  hsize_t dims[4] = {0, 0, 0, 0};
  if (H5Sget_simple_extent_ndims(space.get()) != 4)
    throw InputError(path.string() + ": /images/align_thumb is not 4-D");
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  if (dims[1] != kSide || dims[2] != kSide || dims[3] != 3) {
    throw InputError(path.string() + ": /images/align_thumb is not n x 64 x 64 x 3");
  }
  std::vector<std::uint8_t> out(rows.size() * kThumb);
  // Runs of consecutive rows, one read each.
  for (std::size_t i = 0; i < rows.size();) {
    std::size_t j = i + 1;
    while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
    LB_CHECK(rows[i] >= 0 && (i == 0 || rows[i] > rows[i - 1]), "ReadAlignThumbs: rows not ascending");
    if (static_cast<hsize_t>(rows[j - 1]) >= dims[0]) {
      throw InputError(path.string() + ": /images/align_thumb has no row " + std::to_string(rows[j - 1]));
    }
    const hsize_t start[4] = {static_cast<hsize_t>(rows[i]), 0, 0, 0};
    const hsize_t count[4] = {j - i, kSide, kSide, 3};
    H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    Handle memory(H5Screate_simple(4, count, nullptr), H5Sclose);
    if (H5Dread(dataset.get(), H5T_NATIVE_UINT8, memory.get(), space.get(), H5P_DEFAULT, out.data() + i * kThumb) < 0) {
      Fail("read /images/align_thumb from", path);
    }
    i = j;
  }
  return out;
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
    Handle dataset = Check(Handle(H5Dopen2(file.get(), "images/embedding", H5P_DEFAULT), H5Dclose),
                           "open /images/embedding in", shard_file);
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

  const std::filesystem::path name = MemoryFileName(path);
  std::string image;
  {
    Handle file = CreateMemoryFile(name);
    WriteIntAttribute(file.get(), "schema_version", kEmbedSchemaVersion);
    WriteIntAttribute(file.get(), "shard_count", static_cast<long long>(sources.size()));
    WriteIntAttribute(file.get(), "embedding_dim", dim);
    Handle images = Check(
        Handle(H5Gcreate2(file.get(), "images", H5P_DEFAULT, UntimedGroupCreation().get(), H5P_DEFAULT), H5Gclose),
        "create /images in", name);
    Handle strings = StringType();
    struct Column {
      const char* name;
      hid_t type;
      hsize_t width;  // second dimension, 0 for 1-D
    };
    const std::vector<Column> columns = {
        {"key", strings.get(), 0},
        {"product_id", strings.get(), 0},
        {"path", strings.get(), 0},
        {"file", strings.get(), 0},
        {"reason", strings.get(), 0},
        {"status", H5T_STD_I8LE, 0},
        {"phash", H5T_STD_U8LE, 8},
        {"checksum", H5T_STD_U64LE, 0},
        {"width", H5T_STD_I32LE, 0},
        {"height", H5T_STD_I32LE, 0},
        {"content_box", H5T_STD_I16LE, 4},
        {"colour", H5T_IEEE_F32LE, 6},
        {"embedding", embedding_type, static_cast<hsize_t>(dim)},
    };
    for (const auto& column : columns) {
      const int rank = column.width > 0 ? 2 : 1;
      const hsize_t dims[2] = {total, column.width};
      Handle space(H5Screate_simple(rank, dims, nullptr), H5Sclose);
      Handle plist = UntimedDatasetCreation();
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
          Fail("map " + dataset + " of " + source.name + " into", name);
        }
        offset += source.rows;
      }
      H5Sselect_all(space.get());
      Check(
          Handle(H5Dcreate2(images.get(), column.name, column.type, space.get(), H5P_DEFAULT, plist.get(), H5P_DEFAULT),
                 H5Dclose),
          std::string("create virtual dataset ") + column.name + " in", name);
    }
    // Which shard each row came from: a small real dataset, not a view.
    std::vector<std::int32_t> shard_of;
    for (std::size_t s = 0; s < sources.size(); ++s)
      shard_of.insert(shard_of.end(), sources[s].rows, static_cast<std::int32_t>(s));
    WriteDataset(images.get(), "shard", H5T_STD_I32LE, H5T_NATIVE_INT32, {total}, shard_of.data(), name);
    image = FileImage(file.get(), name);
  }
  PublishFile(path, image);
}

void ReleaseReadMemory() {
  H5garbage_collect();
  malloc_trim(0);
}

}  // namespace lookbook
