#include "store/dedup_file.h"

#include "store/hdf5_util.h"
#include "util/publish.h"

namespace lookbook {
namespace {

using namespace hdf5;  // NOLINT: the store's own helpers

void WritePairs(hid_t parent, const char* name, const std::vector<ScoredPair>& pairs,
                const std::filesystem::path& path) {
  Handle group = CreateGroup(parent, name, path);
  std::vector<std::int64_t> a, b;
  std::vector<float> cosine, aligned;
  std::vector<std::int32_t> hamming;
  for (const auto& pair : pairs) {
    a.push_back(pair.a);
    b.push_back(pair.b);
    cosine.push_back(pair.cosine);
    hamming.push_back(pair.hamming);
    aligned.push_back(pair.aligned);
  }
  const hsize_t n = pairs.size();
  WriteDataset(group.get(), "image_a", H5T_STD_I64LE, H5T_NATIVE_INT64, {n}, a.data(), path);
  WriteDataset(group.get(), "image_b", H5T_STD_I64LE, H5T_NATIVE_INT64, {n}, b.data(), path);
  WriteDataset(group.get(), "cosine", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {n}, cosine.data(), path);
  WriteDataset(group.get(), "hamming", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, hamming.data(), path);
  WriteDataset(group.get(), "aligned", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {n}, aligned.data(), path);
}

std::vector<ScoredPair> ReadPairs(hid_t file, const char* name, const std::filesystem::path& path) {
  Handle group = Check(Handle(H5Gopen2(file, name, H5P_DEFAULT), H5Gclose), std::string("open /") + name + " in", path);
  const auto a = ReadNumbers<std::int64_t>(group.get(), "image_a", H5T_NATIVE_INT64, 1, path);
  const auto b = ReadNumbers<std::int64_t>(group.get(), "image_b", H5T_NATIVE_INT64, 1, path);
  const auto cosine = ReadNumbers<float>(group.get(), "cosine", H5T_NATIVE_FLOAT, 1, path);
  const auto hamming = ReadNumbers<std::int32_t>(group.get(), "hamming", H5T_NATIVE_INT32, 1, path);
  const auto aligned = ReadNumbers<float>(group.get(), "aligned", H5T_NATIVE_FLOAT, 1, path);
  if (b.size() != a.size() || cosine.size() != a.size() || hamming.size() != a.size() || aligned.size() != a.size()) {
    throw InputError(path.string() + ": /" + name + " datasets differ in length");
  }
  std::vector<ScoredPair> pairs(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) pairs[i] = ScoredPair{a[i], b[i], cosine[i], hamming[i], aligned[i]};
  return pairs;
}

void WriteDoubleAttribute(hid_t object, const char* name, double value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name, H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  H5Awrite(attribute.get(), H5T_NATIVE_DOUBLE, &value);
}

double ReadDoubleAttribute(hid_t object, const char* name, const std::filesystem::path& path) {
  Handle attribute =
      Check(Handle(H5Aopen(object, name, H5P_DEFAULT), H5Aclose), std::string("read attribute ") + name + " of", path);
  double value = 0;
  if (H5Aread(attribute.get(), H5T_NATIVE_DOUBLE, &value) < 0)
    Fail(std::string("read attribute ") + name + " of", path);
  return value;
}

}  // namespace

DedupRule DedupRule::WithThreshold(float value) const {
  DedupRule moved = *this;
  (verify ? moved.aligned : moved.cosine) = value;
  return moved;
}

bool IsDuplicate(const DedupRule& rule, const ScoredPair& pair) {
  const float signal = rule.signal(pair);  // NaN compares false
  return signal >= rule.threshold() || (signal >= rule.phash_threshold() && pair.hamming <= rule.max_hamming);
}

void WriteDedupFile(const std::filesystem::path& path, const DedupFile& file) {
  LB_CHECK(file.pair_kind.size() == file.pairs.size(), "a kind per pair");
  LB_CHECK(
      file.cluster_id.size() == file.cluster_image.size() && file.representative.size() == file.cluster_image.size(),
      "cluster columns of one length");
  const std::filesystem::path name = MemoryFileName(path);
  std::string image;
  {
    std::lock_guard<std::mutex> lock(Hdf5Mutex());
    SilenceHdf5();
    Handle out = CreateMemoryFile(name);
    WriteIntAttribute(out.get(), "schema_version", kDedupSchemaVersion);
    WriteIntAttribute(out.get(), "rule_verify", file.rule.verify ? 1 : 0);
    WriteDoubleAttribute(out.get(), "rule_aligned", file.rule.aligned);
    WriteDoubleAttribute(out.get(), "rule_aligned_phash", file.rule.aligned_phash);
    WriteDoubleAttribute(out.get(), "rule_cosine", file.rule.cosine);
    WriteDoubleAttribute(out.get(), "rule_phash_cosine", file.rule.phash_cosine);
    WriteIntAttribute(out.get(), "rule_max_hamming", file.rule.max_hamming);
    WriteDoubleAttribute(out.get(), "candidate_floor", file.candidate_floor);
    WriteStringAttribute(out.get(), "keep", file.keep);
    WritePairs(out.get(), "pairs", file.pairs, name);
    {
      Handle pairs = Check(Handle(H5Gopen2(out.get(), "pairs", H5P_DEFAULT), H5Gclose), "open /pairs in", name);
      WriteDataset(pairs.get(), "kind", H5T_STD_I8LE, H5T_NATIVE_INT8, {file.pair_kind.size()}, file.pair_kind.data(),
                   name);
    }
    Handle clusters = CreateGroup(out.get(), "clusters", name);
    const hsize_t c = file.cluster_image.size();
    WriteDataset(clusters.get(), "image", H5T_STD_I64LE, H5T_NATIVE_INT64, {c}, file.cluster_image.data(), name);
    WriteDataset(clusters.get(), "cluster_id", H5T_STD_I64LE, H5T_NATIVE_INT64, {c}, file.cluster_id.data(), name);
    WriteDataset(clusters.get(), "is_representative", H5T_STD_I8LE, H5T_NATIVE_INT8, {c}, file.representative.data(),
                 name);
    WritePairs(out.get(), "candidates", file.candidates, name);
    image = FileImage(out.get(), name);
  }
  PublishFile(path, image);
}

DedupFile ReadDedupFile(const std::filesystem::path& path) {
  std::lock_guard<std::mutex> lock(Hdf5Mutex());
  SilenceHdf5();
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(path.string() + " is not an HDF5 file");
  Handle in = Check(Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose), "open", path);
  if (ReadIntAttribute(in.get(), "schema_version", path) != kDedupSchemaVersion) {
    throw InputError(path.string() + " is not a dedup file of schema version " + std::to_string(kDedupSchemaVersion));
  }
  DedupFile file;
  // Written from the rule's floats, so the casts back are exact.
  file.rule.verify = ReadIntAttribute(in.get(), "rule_verify", path) != 0;
  file.rule.aligned = static_cast<float>(ReadDoubleAttribute(in.get(), "rule_aligned", path));
  file.rule.aligned_phash = static_cast<float>(ReadDoubleAttribute(in.get(), "rule_aligned_phash", path));
  file.rule.cosine = static_cast<float>(ReadDoubleAttribute(in.get(), "rule_cosine", path));
  file.rule.phash_cosine = static_cast<float>(ReadDoubleAttribute(in.get(), "rule_phash_cosine", path));
  file.rule.max_hamming = static_cast<int>(ReadIntAttribute(in.get(), "rule_max_hamming", path));
  file.candidate_floor = ReadDoubleAttribute(in.get(), "candidate_floor", path);
  file.keep = ReadStringAttribute(in.get(), "keep", path);
  file.pairs = ReadPairs(in.get(), "pairs", path);
  {
    Handle pairs = Check(Handle(H5Gopen2(in.get(), "pairs", H5P_DEFAULT), H5Gclose), "open /pairs in", path);
    file.pair_kind = ReadNumbers<std::int8_t>(pairs.get(), "kind", H5T_NATIVE_INT8, 1, path);
  }
  Handle clusters = Check(Handle(H5Gopen2(in.get(), "clusters", H5P_DEFAULT), H5Gclose), "open /clusters in", path);
  file.cluster_image = ReadNumbers<std::int64_t>(clusters.get(), "image", H5T_NATIVE_INT64, 1, path);
  file.cluster_id = ReadNumbers<std::int64_t>(clusters.get(), "cluster_id", H5T_NATIVE_INT64, 1, path);
  file.representative = ReadNumbers<std::int8_t>(clusters.get(), "is_representative", H5T_NATIVE_INT8, 1, path);
  file.candidates = ReadPairs(in.get(), "candidates", path);
  if (file.pair_kind.size() != file.pairs.size() || file.cluster_id.size() != file.cluster_image.size() ||
      file.representative.size() != file.cluster_image.size()) {
    throw InputError(path.string() + ": dataset lengths differ");
  }
  return file;
}

}  // namespace lookbook
