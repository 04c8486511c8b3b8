#include "store/recs_file.h"

#include "store/hdf5_util.h"
#include "util/publish.h"

namespace lookbook {
namespace {

using namespace hdf5;  // NOLINT: the store's own helpers

template <typename Row, typename Field>
std::vector<Field> Column(const std::vector<Row>& rows, Field Row::*field) {
  std::vector<Field> out;
  out.reserve(rows.size());
  for (const auto& row : rows) out.push_back(row.*field);
  return out;
}

template <typename Row>
void WriteStringColumn(hid_t group, const char* name, const std::vector<Row>& rows, std::string Row::*field,
                       const std::filesystem::path& path) {
  std::vector<const char*> values;
  values.reserve(rows.size());
  for (const auto& row : rows) values.push_back((row.*field).c_str());
  WriteStrings(group, name, values, path);
}

Handle OpenGroup(hid_t file, const char* name, const std::filesystem::path& path) {
  return Check(Handle(H5Gopen2(file, name, H5P_DEFAULT), H5Gclose), std::string("open /") + name + " in", path);
}

void CheckLength(std::size_t expected, std::size_t actual, const char* what, const std::filesystem::path& path) {
  if (expected != actual) throw InputError(path.string() + ": " + what + " datasets differ in length");
}

}  // namespace

void WriteRecsFile(const std::filesystem::path& path, const RecsFile& file) {
  const std::filesystem::path name = MemoryFileName(path);
  std::string image;
  {
    std::lock_guard<std::mutex> lock(Hdf5Mutex());
    SilenceHdf5();
    const std::filesystem::path& at = name;
    Handle out = CreateMemoryFile(at);
    WriteIntAttribute(out.get(), "schema_version", kRecsSchemaVersion);
    WriteIntAttribute(out.get(), "top_k", file.top_k);
    WriteIntAttribute(out.get(), "outfit_top_k", file.outfit_top_k);
    WriteStringAttribute(out.get(), "substitutes_for", file.substitutes_for);

    Handle products = CreateGroup(out.get(), "products", at);
    const hsize_t p = file.products.size();
    WriteStringColumn(products.get(), "id", file.products, &RecsProduct::id, at);
    WriteStringColumn(products.get(), "category", file.products, &RecsProduct::category, at);
    WriteStringColumn(products.get(), "category_source", file.products, &RecsProduct::category_source, at);
    WriteStringColumn(products.get(), "slot", file.products, &RecsProduct::slot, at);
    WriteDataset(products.get(), "in_stock", H5T_STD_I8LE, H5T_NATIVE_INT8, {p},
                 Column(file.products, &RecsProduct::in_stock).data(), at);

    Handle substitutes = CreateGroup(out.get(), "substitutes", at);
    const hsize_t s = file.substitutes.size();
    const auto& sub = file.substitutes;
    WriteDataset(substitutes.get(), "product", H5T_STD_I64LE, H5T_NATIVE_INT64, {s},
                 Column(sub, &SubstituteRow::product).data(), at);
    WriteDataset(substitutes.get(), "rank", H5T_STD_I32LE, H5T_NATIVE_INT32, {s},
                 Column(sub, &SubstituteRow::rank).data(), at);
    WriteDataset(substitutes.get(), "substitute", H5T_STD_I64LE, H5T_NATIVE_INT64, {s},
                 Column(sub, &SubstituteRow::substitute).data(), at);
    WriteDataset(substitutes.get(), "score", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {s},
                 Column(sub, &SubstituteRow::score).data(), at);
    WriteDataset(substitutes.get(), "image", H5T_STD_I64LE, H5T_NATIVE_INT64, {s},
                 Column(sub, &SubstituteRow::image).data(), at);

    Handle outfits = CreateGroup(out.get(), "outfits", at);
    const hsize_t o = file.outfits.size();
    const auto& look = file.outfits;
    WriteDataset(outfits.get(), "product", H5T_STD_I64LE, H5T_NATIVE_INT64, {o},
                 Column(look, &OutfitRow::product).data(), at);
    WriteDataset(outfits.get(), "source_image", H5T_STD_I64LE, H5T_NATIVE_INT64, {o},
                 Column(look, &OutfitRow::source_image).data(), at);
    WriteStringColumn(outfits.get(), "slot", look, &OutfitRow::slot, at);
    std::vector<std::int32_t> boxes;
    for (const auto& row : look) boxes.insert(boxes.end(), row.box.begin(), row.box.end());
    WriteDataset(outfits.get(), "box", H5T_STD_I32LE, H5T_NATIVE_INT32, {o, 4}, boxes.data(), at);
    WriteDataset(outfits.get(), "rank", H5T_STD_I32LE, H5T_NATIVE_INT32, {o}, Column(look, &OutfitRow::rank).data(),
                 at);
    WriteDataset(outfits.get(), "item", H5T_STD_I64LE, H5T_NATIVE_INT64, {o}, Column(look, &OutfitRow::item).data(),
                 at);
    WriteDataset(outfits.get(), "score", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {o}, Column(look, &OutfitRow::score).data(),
                 at);
    image = FileImage(out.get(), at);
  }
  PublishFile(path, image);
}

RecsFile ReadRecsFile(const std::filesystem::path& path) {
  std::lock_guard<std::mutex> lock(Hdf5Mutex());
  SilenceHdf5();
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(path.string() + " is not an HDF5 file");
  Handle in = Check(Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose), "open", path);
  if (ReadIntAttribute(in.get(), "schema_version", path) != kRecsSchemaVersion) {
    throw InputError(path.string() + " is not a recs file of schema version " + std::to_string(kRecsSchemaVersion));
  }
  RecsFile file;
  file.top_k = static_cast<int>(ReadIntAttribute(in.get(), "top_k", path));
  file.outfit_top_k = static_cast<int>(ReadIntAttribute(in.get(), "outfit_top_k", path));
  file.substitutes_for = ReadStringAttribute(in.get(), "substitutes_for", path);

  Handle products = OpenGroup(in.get(), "products", path);
  const auto ids = ReadStrings(products.get(), "id", path);
  const auto categories = ReadStrings(products.get(), "category", path);
  const auto sources = ReadStrings(products.get(), "category_source", path);
  const auto slots = ReadStrings(products.get(), "slot", path);
  const auto stock = ReadNumbers<std::int8_t>(products.get(), "in_stock", H5T_NATIVE_INT8, 1, path);
  for (const std::size_t n : {categories.size(), sources.size(), slots.size(), stock.size()})
    CheckLength(ids.size(), n, "/products", path);
  for (std::size_t i = 0; i < ids.size(); ++i)
    file.products.push_back(RecsProduct{ids[i], categories[i], sources[i], slots[i], stock[i]});

  Handle substitutes = OpenGroup(in.get(), "substitutes", path);
  const auto product = ReadNumbers<std::int64_t>(substitutes.get(), "product", H5T_NATIVE_INT64, 1, path);
  const auto rank = ReadNumbers<std::int32_t>(substitutes.get(), "rank", H5T_NATIVE_INT32, 1, path);
  const auto substitute = ReadNumbers<std::int64_t>(substitutes.get(), "substitute", H5T_NATIVE_INT64, 1, path);
  const auto score = ReadNumbers<float>(substitutes.get(), "score", H5T_NATIVE_FLOAT, 1, path);
  const auto image = ReadNumbers<std::int64_t>(substitutes.get(), "image", H5T_NATIVE_INT64, 1, path);
  for (const std::size_t n : {rank.size(), substitute.size(), score.size(), image.size()})
    CheckLength(product.size(), n, "/substitutes", path);
  for (std::size_t i = 0; i < product.size(); ++i)
    file.substitutes.push_back(SubstituteRow{product[i], rank[i], substitute[i], score[i], image[i]});

  Handle outfits = OpenGroup(in.get(), "outfits", path);
  const auto owner = ReadNumbers<std::int64_t>(outfits.get(), "product", H5T_NATIVE_INT64, 1, path);
  const auto source = ReadNumbers<std::int64_t>(outfits.get(), "source_image", H5T_NATIVE_INT64, 1, path);
  const auto slot = ReadStrings(outfits.get(), "slot", path);
  const auto box = ReadNumbers<std::int32_t>(outfits.get(), "box", H5T_NATIVE_INT32, 4, path);
  const auto look_rank = ReadNumbers<std::int32_t>(outfits.get(), "rank", H5T_NATIVE_INT32, 1, path);
  const auto item = ReadNumbers<std::int64_t>(outfits.get(), "item", H5T_NATIVE_INT64, 1, path);
  const auto look_score = ReadNumbers<float>(outfits.get(), "score", H5T_NATIVE_FLOAT, 1, path);
  for (const std::size_t n :
       {source.size(), slot.size(), box.size() / 4, look_rank.size(), item.size(), look_score.size()}) {
    CheckLength(owner.size(), n, "/outfits", path);
  }
  for (std::size_t i = 0; i < owner.size(); ++i) {
    OutfitRow row{owner[i],     source[i], slot[i],      {box[4 * i], box[4 * i + 1], box[4 * i + 2], box[4 * i + 3]},
                  look_rank[i], item[i],   look_score[i]};
    file.outfits.push_back(std::move(row));
  }
  return file;
}

}  // namespace lookbook
