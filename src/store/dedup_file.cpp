#include "store/dedup_file.h"

#include "store/hdf5_util.h"
#include "util/publish.h"

namespace lookbook {
namespace {

using namespace hdf5;  // NOLINT: the store's own helpers

// With checks: the cascade's columns too (/candidates).
void WritePairs(hid_t parent, const char* name, const std::vector<ScoredPair>& pairs, bool checks,
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
  if (!checks) return;
  std::vector<float> brightness, hue, coarse, half_aligned;
  std::vector<std::int8_t> verified_by;
  for (const auto& pair : pairs) {
    half_aligned.push_back(pair.half_aligned);
    brightness.push_back(pair.colour_brightness);
    hue.push_back(pair.colour_hue);
    coarse.push_back(pair.coarse);
    verified_by.push_back(pair.verified_by);
  }
  WriteDataset(group.get(), "colour_brightness", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {n}, brightness.data(), path);
  WriteDataset(group.get(), "colour_hue", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {n}, hue.data(), path);
  WriteDataset(group.get(), "coarse", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {n}, coarse.data(), path);
  WriteDataset(group.get(), "half_aligned", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {n}, half_aligned.data(), path);
  WriteDataset(group.get(), "verified_by", H5T_STD_I8LE, H5T_NATIVE_INT8, {n}, verified_by.data(), path);
}

std::vector<ScoredPair> ReadPairs(hid_t file, const char* name, bool checks, const std::filesystem::path& path) {
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
  if (!checks) return pairs;
  const auto brightness = ReadNumbers<float>(group.get(), "colour_brightness", H5T_NATIVE_FLOAT, 1, path);
  const auto hue = ReadNumbers<float>(group.get(), "colour_hue", H5T_NATIVE_FLOAT, 1, path);
  const auto coarse = ReadNumbers<float>(group.get(), "coarse", H5T_NATIVE_FLOAT, 1, path);
  const auto half_aligned = ReadNumbers<float>(group.get(), "half_aligned", H5T_NATIVE_FLOAT, 1, path);
  const auto verified_by = ReadNumbers<std::int8_t>(group.get(), "verified_by", H5T_NATIVE_INT8, 1, path);
  if (brightness.size() != a.size() || hue.size() != a.size() || coarse.size() != a.size() ||
      half_aligned.size() != a.size() || verified_by.size() != a.size()) {
    throw InputError(path.string() + ": /" + name + " datasets differ in length");
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    pairs[i].colour_brightness = brightness[i];
    pairs[i].colour_hue = hue[i];
    pairs[i].coarse = coarse[i];
    pairs[i].half_aligned = half_aligned[i];
    pairs[i].verified_by = verified_by[i];
  }
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

const char* VerifiedByName(VerifiedBy by) {
  switch (by) {
    case VerifiedBy::kNotVerified: return "not_verified";
    case VerifiedBy::kAlignment: return "alignment";
    case VerifiedBy::kColourGate: return "colour_gate";
    case VerifiedBy::kCoarseGate: return "coarse_gate";
    case VerifiedBy::kHalfSizeAlignment: return "half_size_alignment";
  }
  return "unknown";
}

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
  LB_CHECK(file.pair_kind.size() == file.pairs.size() && file.pair_decided_by.size() == file.pairs.size(),
           "a kind and a decider per pair");
  const NeighbourLists& lists = file.neighbours;
  LB_CHECK(lists.key.size() == lists.rows() && lists.checksum.size() == lists.rows() &&
               lists.truncated.size() == lists.rows() && lists.offset.size() == lists.rows() + 1 &&
               lists.score.size() == lists.member.size() &&
               static_cast<std::size_t>(lists.offset.back()) == lists.member.size(),
           "neighbour list columns of matching lengths");
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
    WritePairs(out.get(), "pairs", file.pairs, false, name);
    {
      Handle pairs = Check(Handle(H5Gopen2(out.get(), "pairs", H5P_DEFAULT), H5Gclose), "open /pairs in", name);
      WriteDataset(pairs.get(), "kind", H5T_STD_I8LE, H5T_NATIVE_INT8, {file.pair_kind.size()}, file.pair_kind.data(),
                   name);
      WriteDataset(pairs.get(), "decided_by", H5T_STD_I8LE, H5T_NATIVE_INT8, {file.pair_decided_by.size()},
                   file.pair_decided_by.data(), name);
    }
    Handle clusters = CreateGroup(out.get(), "clusters", name);
    const hsize_t c = file.cluster_image.size();
    WriteDataset(clusters.get(), "image", H5T_STD_I64LE, H5T_NATIVE_INT64, {c}, file.cluster_image.data(), name);
    WriteDataset(clusters.get(), "cluster_id", H5T_STD_I64LE, H5T_NATIVE_INT64, {c}, file.cluster_id.data(), name);
    WriteDataset(clusters.get(), "is_representative", H5T_STD_I8LE, H5T_NATIVE_INT8, {c}, file.representative.data(),
                 name);
    WritePairs(out.get(), "candidates", file.candidates, true, name);
    Handle neighbours = CreateGroup(out.get(), "neighbours", name);
    WriteIntAttribute(neighbours.get(), "list_size", lists.list_size);
    WriteDoubleAttribute(neighbours.get(), "list_floor", lists.list_floor);
    const hsize_t rows = lists.rows(), entries = lists.member.size();
    std::vector<const char*> keys;
    for (const auto& key : lists.key) keys.push_back(key.c_str());
    WriteDataset(neighbours.get(), "image", H5T_STD_I64LE, H5T_NATIVE_INT64, {rows}, lists.image.data(), name);
    WriteStrings(neighbours.get(), "key", keys, name);
    WriteDataset(neighbours.get(), "checksum", H5T_STD_U64LE, H5T_NATIVE_UINT64, {rows}, lists.checksum.data(), name);
    WriteDataset(neighbours.get(), "truncated", H5T_STD_I8LE, H5T_NATIVE_INT8, {rows}, lists.truncated.data(), name);
    WriteDataset(neighbours.get(), "offset", H5T_STD_I64LE, H5T_NATIVE_INT64, {rows + 1}, lists.offset.data(), name);
    WriteDataset(neighbours.get(), "member", H5T_STD_I64LE, H5T_NATIVE_INT64, {entries}, lists.member.data(), name);
    WriteDataset(neighbours.get(), "score", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {entries}, lists.score.data(), name);
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
  file.pairs = ReadPairs(in.get(), "pairs", false, path);
  {
    Handle pairs = Check(Handle(H5Gopen2(in.get(), "pairs", H5P_DEFAULT), H5Gclose), "open /pairs in", path);
    file.pair_kind = ReadNumbers<std::int8_t>(pairs.get(), "kind", H5T_NATIVE_INT8, 1, path);
    file.pair_decided_by = ReadNumbers<std::int8_t>(pairs.get(), "decided_by", H5T_NATIVE_INT8, 1, path);
  }
  Handle clusters = Check(Handle(H5Gopen2(in.get(), "clusters", H5P_DEFAULT), H5Gclose), "open /clusters in", path);
  file.cluster_image = ReadNumbers<std::int64_t>(clusters.get(), "image", H5T_NATIVE_INT64, 1, path);
  file.cluster_id = ReadNumbers<std::int64_t>(clusters.get(), "cluster_id", H5T_NATIVE_INT64, 1, path);
  file.representative = ReadNumbers<std::int8_t>(clusters.get(), "is_representative", H5T_NATIVE_INT8, 1, path);
  file.candidates = ReadPairs(in.get(), "candidates", true, path);
  {
    Handle group = Check(Handle(H5Gopen2(in.get(), "neighbours", H5P_DEFAULT), H5Gclose), "open /neighbours in", path);
    NeighbourLists& lists = file.neighbours;
    lists.list_size = static_cast<int>(ReadIntAttribute(group.get(), "list_size", path));
    lists.list_floor = ReadDoubleAttribute(group.get(), "list_floor", path);
    lists.image = ReadNumbers<std::int64_t>(group.get(), "image", H5T_NATIVE_INT64, 1, path);
    lists.key = ReadStrings(group.get(), "key", path);
    lists.checksum = ReadNumbers<std::uint64_t>(group.get(), "checksum", H5T_NATIVE_UINT64, 1, path);
    lists.truncated = ReadNumbers<std::int8_t>(group.get(), "truncated", H5T_NATIVE_INT8, 1, path);
    lists.offset = ReadNumbers<std::int64_t>(group.get(), "offset", H5T_NATIVE_INT64, 1, path);
    lists.member = ReadNumbers<std::int64_t>(group.get(), "member", H5T_NATIVE_INT64, 1, path);
    lists.score = ReadNumbers<float>(group.get(), "score", H5T_NATIVE_FLOAT, 1, path);
    const std::size_t rows = lists.image.size();
    bool ok = lists.key.size() == rows && lists.checksum.size() == rows && lists.truncated.size() == rows &&
              lists.offset.size() == rows + 1 && lists.score.size() == lists.member.size() && lists.offset[0] == 0 &&
              static_cast<std::size_t>(lists.offset.back()) == lists.member.size();
    for (std::size_t r = 0; ok && r < rows; ++r) ok = lists.offset[r] <= lists.offset[r + 1];
    for (std::size_t i = 0; ok && i < lists.member.size(); ++i) {
      ok = lists.member[i] >= 0 && static_cast<std::size_t>(lists.member[i]) < rows;
    }
    if (!ok) throw InputError(path.string() + ": /neighbours is inconsistent (lengths, offsets or rows)");
  }
  if (file.pair_kind.size() != file.pairs.size() || file.pair_decided_by.size() != file.pairs.size() ||
      file.cluster_id.size() != file.cluster_image.size() || file.representative.size() != file.cluster_image.size()) {
    throw InputError(path.string() + ": dataset lengths differ");
  }
  return file;
}

}  // namespace lookbook
