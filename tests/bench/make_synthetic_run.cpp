// make_synthetic_run RUN --vectors N [--dim 512] [--shards S] [--clusters C] [--planted P] [--seed X]
//                        [--thumbs 1]:
// writes a run whose ingest and embed stages look published, with synthetic embeddings that
// have the structure of real ones: unit norm, grouped around C cluster centres (products of
// one kind), and P planted near-duplicate pairs (a copy = the original plus a small
// perturbation, cosine about 0.96..0.995). RUN/truth_pairs.csv lists the planted pairs as
// image paths (image_a,image_b,cosine), the format `lookbook eval dedup --truth` reads.
// With --thumbs 1, every image also gets a synthetic align thumbnail (a few ellipses in its
// cluster's colours on a light background; a planted copy is its original's, shifted by up to 2
// pixels and brightened a little), so that dedup can verify at that scale. Every image has a
// perceptual hash: random for an original, within 3 bits of its original's for a copy.
// For the dedup benchmarks at a scale no image set here reaches.
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "catalog/csv.h"
#include "catalog/ingest.h"
#include "catalog/sharding.h"
#include "image/align.h"
#include "store/embed_shard.h"
#include "util/manifest.h"
#include "util/parallel.h"
#include "util/publish.h"

int main(int argc, char** argv) {
  using namespace lookbook;
  if (argc < 2) {
    std::cerr
        << "usage: make_synthetic_run RUN --vectors N [--dim D] [--shards S] [--clusters C] [--planted P] [--seed X]\n";
    return 2;
  }
  const std::filesystem::path run = argv[1];
  std::int64_t n = 100000, planted = 1000;
  int dim = 512, shards = 8, clusters = 2000;
  std::uint64_t seed = 1;
  bool thumbs = false;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--vectors"))
      n = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--dim"))
      dim = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--shards"))
      shards = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--clusters"))
      clusters = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--planted"))
      planted = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seed"))
      seed = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--thumbs"))
      thumbs = std::atoi(argv[i + 1]) != 0;
  }
  const auto d = static_cast<std::size_t>(dim);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> centres(static_cast<std::size_t>(clusters) * d);
  for (auto& x : centres) x = normal(rng);
  // Vector i: a centre plus noise of a per-vector spread (some products are near their kind's
  // centre, some far), normalised. The last `planted` vectors are copies of random earlier ones.
  std::vector<float> vectors(static_cast<std::size_t>(n) * d);
  std::vector<std::int64_t> original(static_cast<std::size_t>(n), -1);
  std::vector<std::uint32_t> cluster_of(static_cast<std::size_t>(n), 0);
  const std::int64_t base = n - planted;
  std::vector<std::uint64_t> seeds(static_cast<std::size_t>(n));
  for (auto& s : seeds) s = rng();
  for (std::int64_t i = base; i < n; ++i)
    original[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(base));
  auto normalise = [&](float* v) {
    double norm = 0;
    for (std::size_t j = 0; j < d; ++j) norm += static_cast<double>(v[j]) * v[j];
    const float scale = static_cast<float>(1.0 / std::sqrt(norm));
    for (std::size_t j = 0; j < d; ++j) v[j] *= scale;
  };
  ParallelFor(static_cast<std::size_t>(n), 2, [&](std::size_t i) {
    std::mt19937_64 local(seeds[i]);
    std::normal_distribution<float> noise;
    float* v = vectors.data() + i * d;
    if (static_cast<std::int64_t>(i) < base) {
      const std::size_t c = local() % static_cast<std::uint64_t>(clusters);
      cluster_of[i] = static_cast<std::uint32_t>(c);
      const float spread = 0.6f + 0.8f * static_cast<float>(local() % 1000) / 1000.0f;
      for (std::size_t j = 0; j < d; ++j) v[j] = centres[c * d + j] + spread * noise(local);
      normalise(v);
    }
  });
  for (std::int64_t i = base; i < n; ++i) {  // after the originals exist
    std::mt19937_64 local(seeds[static_cast<std::size_t>(i)]);
    std::normal_distribution<float> noise;
    const float* from = vectors.data() + static_cast<std::size_t>(original[static_cast<std::size_t>(i)]) * d;
    float* v = vectors.data() + static_cast<std::size_t>(i) * d;
    const float eps = (0.1f + 0.2f * static_cast<float>(local() % 1000) / 1000.0f) / std::sqrt(static_cast<float>(dim));
    for (std::size_t j = 0; j < d; ++j) v[j] = from[j] + eps * noise(local);
    normalise(v);
  }

  // Image i's perceptual hash: random bits for an original (pictures of different products share
  // few: two random 64-bit hashes are within dedup's 4-bit radius with odds of about 1e-13), and
  // a planted copy's within 3 bits of its original's, as a re-encoded or shifted copy's is.
  auto phash_of = [&](std::int64_t i) {
    const std::int64_t o = original[static_cast<std::size_t>(i)] >= 0 ? original[static_cast<std::size_t>(i)] : i;
    std::uint64_t bits = std::mt19937_64(seeds[static_cast<std::size_t>(o)] ^ 0xC2B2AE3D27D4EB4Full)();
    if (o != i) {
      std::mt19937_64 copy(seeds[static_cast<std::size_t>(i)] ^ 0x165667B19E3779F9ull);
      const int flips = static_cast<int>(copy() % 4);
      for (int f = 0; f < flips; ++f) bits ^= std::uint64_t{1} << (copy() % 64);
    }
    std::array<std::uint8_t, 8> out{};
    std::memcpy(out.data(), &bits, 8);
    return out;
  };

  // Image i's synthetic thumbnail (--thumbs 1).
  auto draw = [&](std::int64_t i, std::uint8_t* out) {
    const std::int64_t o = original[static_cast<std::size_t>(i)] >= 0 ? original[static_cast<std::size_t>(i)] : i;
    std::mt19937_64 local(seeds[static_cast<std::size_t>(o)] ^ 0x9E3779B97F4A7C15ull);
    std::mt19937_64 kind(cluster_of[static_cast<std::size_t>(o)] * 7919ull + seed);
    const int side = AlignView::kSide;
    cv::Mat m(side, side, CV_8UC3, cv::Scalar(245, 245, 245));
    const cv::Scalar base(static_cast<double>(kind() % 200), static_cast<double>(kind() % 200),
                          static_cast<double>(kind() % 200));
    for (int e = 0; e < 3; ++e) {
      const cv::Point centre(16 + static_cast<int>(local() % 32), 16 + static_cast<int>(local() % 32));
      const cv::Size axes(6 + static_cast<int>(local() % 14), 6 + static_cast<int>(local() % 14));
      const cv::Scalar colour = base + cv::Scalar(static_cast<double>(local() % 50), static_cast<double>(local() % 50),
                                                  static_cast<double>(local() % 50));
      cv::ellipse(m, centre, axes, static_cast<double>(local() % 180), 0, 360, colour, cv::FILLED, cv::LINE_AA);
    }
    if (o != i) {  // a copy: shifted and brighter
      std::mt19937_64 copy(seeds[static_cast<std::size_t>(i)]);
      const cv::Mat shift = (cv::Mat_<double>(2, 3) << 1, 0, static_cast<double>(copy() % 5) - 2.0, 0, 1,
                             static_cast<double>(copy() % 5) - 2.0);
      cv::Mat moved;
      cv::warpAffine(m, moved, shift, m.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
      moved.convertTo(m, -1, 1.0, static_cast<double>(copy() % 10));
    }
    std::memcpy(out, m.data, kAlignThumbBytes);
  };

  // Shards: vector i is product p<i> with one image; shard by the product id's hash as ingest does.
  std::vector<std::vector<std::int64_t>> members(static_cast<std::size_t>(shards));
  auto id_of = [](std::int64_t i) { return "p" + std::to_string(i); };
  for (std::int64_t i = 0; i < n; ++i) members[static_cast<std::size_t>(ShardOf(id_of(i), shards))].push_back(i);
  std::filesystem::create_directories(run / "ingest");
  std::filesystem::create_directories(run / "embed");
  StageManifest ingest, embed;
  ingest.stage = "ingest";
  ingest.options = {{"shards", std::to_string(shards)}, {"images", (run / "images").string()}};
  embed.stage = "embed";
  std::vector<std::string> path_of(static_cast<std::size_t>(n));
  for (int k = 0; k < shards; ++k) {
    std::string csv = std::string(kIngestShardHeader) + "\n";
    EmbedShard shard;
    shard.meta = EmbedShardMeta{k, shards, dim, "synthetic", std::string(64, '0'), "synthetic", "synthetic", "", ""};
    for (const std::int64_t i : members[static_cast<std::size_t>(k)]) {
      const std::string id = id_of(i), path = "synthetic/" + id + ".jpg";
      path_of[static_cast<std::size_t>(i)] = path;
      AppendCsvRow({id, "image_1", path, path, "synthetic", "1", "", std::to_string(i + 1), "0", "0"}, &csv);
      ImageRow row;
      row.key = id + "/image_1";
      row.product_id = id;
      row.path = path;
      row.file = path;
      row.width = row.height = 224;
      row.phash = phash_of(i);
      row.content_box = {0, 0, AlignView::kSide, AlignView::kSide};
      shard.images.push_back(row);
      shard.embeddings.insert(shard.embeddings.end(),
                              vectors.begin() + static_cast<long>(static_cast<std::size_t>(i) * d),
                              vectors.begin() + static_cast<long>(static_cast<std::size_t>(i + 1) * d));
    }
    shard.align_thumbs.assign(shard.images.size() * kAlignThumbBytes, 0);
    if (thumbs) {
      const auto& list = members[static_cast<std::size_t>(k)];
      ParallelFor(list.size(), 2, [&](std::size_t r) {
        std::uint8_t* thumb = shard.align_thumbs.data() + r * kAlignThumbBytes;
        draw(list[r], thumb);
        const ThumbStats stats = DescribeThumb(thumb);
        shard.images[r].content_box = stats.box;
        shard.images[r].colour = stats.colour;
      });
    }
    PublishFile(run / "ingest" / ShardFileName(k, ".csv"), csv);
    ingest.outputs.push_back(DescribeFile(run / "ingest" / ShardFileName(k, ".csv"), ShardFileName(k, ".csv"),
                                          static_cast<std::int64_t>(members[static_cast<std::size_t>(k)].size())));
    WriteEmbedShard(run / "embed" / ShardFileName(k, ".h5"), shard, EmbeddingStorage::kFloat32);
    embed.outputs.push_back(DescribeFile(run / "embed" / ShardFileName(k, ".h5"), ShardFileName(k, ".h5"),
                                         static_cast<std::int64_t>(shard.images.size())));
    // The shard's record, as the embed stage writes it: which ingest shard it was made from.
    StageManifest record;
    record.stage = "embed-shard";
    record.inputs.push_back(ingest.outputs.back());
    record.inputs.back().path = "ingest/" + ShardFileName(k, ".csv");
    record.outputs.push_back(embed.outputs.back());
    WriteManifestFile(run / "embed" / ShardFileName(k, ".json"), record);
  }
  embed.counts = {{"shards", shards}, {"shards_valid", shards}, {"images", n}};
  WriteManifest(run / "ingest", ingest);
  WriteManifest(run / "embed", embed);
  std::string truth = "image_a,image_b,cosine\n";
  for (std::int64_t i = base; i < n; ++i) {
    const auto o = static_cast<std::size_t>(original[static_cast<std::size_t>(i)]);
    double dot = 0;
    for (std::size_t j = 0; j < d; ++j)
      dot += static_cast<double>(vectors[o * d + j]) * vectors[static_cast<std::size_t>(i) * d + j];
    char cosine[32];
    std::snprintf(cosine, sizeof(cosine), "%.6f", dot);
    AppendCsvRow({path_of[o], path_of[static_cast<std::size_t>(i)], cosine}, &truth);
  }
  PublishFile(run / "truth_pairs.csv", truth);
  std::cout << "{\"vectors\": " << n << ", \"dim\": " << dim << ", \"shards\": " << shards
            << ", \"planted\": " << planted << "}" << std::endl;
  return 0;
}
