#include "index/dedup_stage.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <unordered_map>

#include "catalog/csv.h"
#include "catalog/ingest.h"
#include "catalog/sharding.h"
#include "dist/stage_gate.h"
#include "image/align.h"
#include "image/decode.h"
#include "image/preprocess.h"
#include "index/index_stage.h"
#include "index/vector_index.h"
#include "store/dedup_file.h"
#include "store/embed_run.h"
#include "util/blas.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/publish.h"
#include "util/stop.h"
#include "util/vectors.h"

namespace lookbook {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// Every image of the catalog as dedup needs it: full vectors, hashes, names.
struct Catalog {
  int dim = 0;
  std::vector<EmbedShard> shards;
  const EmbedShard& shard(std::int64_t id) const { return shards[static_cast<std::size_t>(ShardOfImageId(id))]; }
  const ImageRow& row(std::int64_t id) const { return shard(id).images[static_cast<std::size_t>(RowOfImageId(id))]; }
  const float* vector(std::int64_t id) const {
    return shard(id).embeddings.data() + static_cast<std::size_t>(RowOfImageId(id)) * static_cast<std::size_t>(dim);
  }
};

std::map<std::string, std::string> Options(const DedupOptions& options) {
  char buffer[64];
  auto text = [&](double value) {
    std::snprintf(buffer, sizeof(buffer), "%.9g", value);  // every float apart
    return std::string(buffer);
  };
  return {{"candidates", std::to_string(options.candidates)},
          {"nprobe", std::to_string(options.nprobe)},
          {"verify", options.rule.verify ? "on" : "off"},
          {"rule_aligned", text(options.rule.aligned)},
          {"rule_aligned_phash", text(options.rule.aligned_phash)},
          {"rule_cosine", text(options.rule.cosine)},
          {"rule_phash_cosine", text(options.rule.phash_cosine)},
          {"rule_max_hamming", std::to_string(options.rule.max_hamming)},
          {"candidate_floor", text(options.candidate_floor)},
          {"keep", KeepPolicyName(options.keep)}};
}

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

// This rank's share of the verification: the aligned correlation of candidates i = rank,
// rank + ranks, ... (image/align.h). Views are decoded once while they stay in a small cache
// (candidates come sorted by their first image). A candidate with an image that cannot be read
// again keeps NaN and is counted.
struct Verification {
  std::vector<std::int64_t> index;
  std::vector<float> aligned;
  std::int64_t unreadable_pairs = 0;
};

Verification VerifyCandidates(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b,
                              const Catalog& catalog, const std::filesystem::path& image_root, const MpiWorld& world) {
  constexpr std::size_t kCachedViews = 1024;  // 64 kB each
  std::unordered_map<std::int64_t, std::optional<AlignView>> views;
  int warnings = 0;
  auto view = [&](std::int64_t id) -> const std::optional<AlignView>& {
    auto found = views.find(id);
    if (found != views.end()) return found->second;
    const ImageRow& row = catalog.row(id);
    DecodeLimits limits;
    limits.min_side = kAlignMinSide;
    const DecodeResult decoded = DecodeImageFile(image_root / row.file, limits);
    std::optional<AlignView> made;
    if (decoded.status == ImageStatus::kOk) {
      made = MakeAlignView(decoded.image);
    } else if (warnings++ < 10) {
      spdlog::warn("dedup: cannot verify candidates of {} ({}): {}", row.key, (image_root / row.file).string(),
                   ImageStatusName(decoded.status));
    }
    return views.emplace(id, std::move(made)).first->second;
  };
  Verification out;
  for (std::size_t i = static_cast<std::size_t>(world.rank()); i < a.size();
       i += static_cast<std::size_t>(world.size())) {
    if (StopRequested()) break;
    if (views.size() + 2 > kCachedViews) views.clear();  // never between the two lookups below
    const std::optional<AlignView>& first = view(a[i]);
    const std::optional<AlignView>& second = view(b[i]);  // references into the map stay valid
    out.index.push_back(static_cast<std::int64_t>(i));
    if (first && second) {
      out.aligned.push_back(AlignedCorrelation(*first, *second));
    } else {
      out.aligned.push_back(std::numeric_limits<float>::quiet_NaN());
      ++out.unreadable_pairs;
    }
  }
  return out;
}

}  // namespace

StageReport RunDedup(const DedupOptions& options, const MpiWorld& world) {
  const auto start = Clock::now();
  StageReport report;
  report.stage = "dedup";
  report.throughput_unit = "queries";
  report.facts["run"] = options.run.string();
  const EmbedRun embed = ReadEmbedRun(options.run);
  const std::filesystem::path stage_dir = options.run / "dedup";
  if (!std::filesystem::exists(options.run / "index" / "manifest.json")) {
    throw InputError("run " + options.run.string() + " has no index stage: run lookbook index first");
  }
  const std::vector<ManifestEntry> inputs = {
      DescribeFile(embed.dir / "manifest.json", "embed/manifest.json", -1),
      DescribeFile(options.run / "index" / "manifest.json", "index/manifest.json", -1)};
  const std::string options_hash = OptionsHash(Options(options));
  std::filesystem::path image_root;
  if (options.rule.verify) {
    std::string why_not;
    const auto ingest = ReadManifest(options.run / "ingest", &why_not);
    if (!ingest || !ingest->options.count("images") || ingest->options.at("images").empty()) {
      throw InputError("run " + options.run.string() + " does not say where its images are (ingest manifest: " +
                       (ingest ? "no images option" : why_not) + "): verification needs them; use --verify off");
    }
    image_root = ingest->options.at("images");
  }

  const std::string why = WhyRunStage(world, stage_dir, inputs, options_hash, options.code_version, options.rerun);
  if (world.is_root()) {
    if (!why.empty())
      spdlog::info("dedup over {} shard(s) ({})", embed.shard_count, why);
    else
      spdlog::info("dedup outputs are valid: nothing to do");
  }
  if (why.empty()) {
    report.status = "skipped";
    report.seconds = Seconds(start);
    return report;
  }

  // Every rank holds the whole catalog's vectors (for the exact re-rank) and every index shard.
  Catalog catalog;
  const auto load_start = Clock::now();
  for (int k = 0; k < embed.shard_count; ++k) catalog.shards.push_back(ReadVerifiedShard(embed, k));
  catalog.dim = catalog.shards.front().meta.embedding_dim;
  StageManifest index_manifest;
  const ShardedIndex index = ReadRunIndex(options.run, embed, &index_manifest);
  const double load_seconds = world.MaxAll(Seconds(load_start));

  // This rank's queries: the ok images of its shards.
  const auto search_start = Clock::now();
  std::vector<std::int64_t> queries;
  for (int k = world.rank(); k < embed.shard_count; k += world.size()) {
    const auto& images = catalog.shards[static_cast<std::size_t>(k)].images;
    for (std::size_t row = 0; row < images.size(); ++row) {
      if (images[row].status == 0) queries.push_back(ImageId(k, static_cast<std::int64_t>(row)));
    }
  }
  const int k_search = options.candidates + 1;  // the query itself comes back too
  std::vector<std::int64_t> cand_a, cand_b;
  std::vector<float> cand_cosine;
  std::vector<std::int32_t> cand_hamming;
  std::vector<float> batch;
  std::int64_t scored = 0;
  for (std::size_t begin = 0; begin < queries.size(); begin += static_cast<std::size_t>(options.query_batch)) {
    if (StopRequested()) break;
    const std::size_t end = std::min(queries.size(), begin + static_cast<std::size_t>(options.query_batch));
    batch.clear();
    for (std::size_t q = begin; q < end; ++q)
      batch.insert(batch.end(), catalog.vector(queries[q]), catalog.vector(queries[q]) + catalog.dim);
    const SearchResult found =
        index.Search(batch.data(), static_cast<std::int64_t>(end - begin), k_search, options.nprobe);
    for (std::size_t q = begin; q < end; ++q) {
      const std::int64_t self = queries[q];
      for (int j = 0; j < k_search; ++j) {
        const std::int64_t other =
            found.ids[(q - begin) * static_cast<std::size_t>(k_search) + static_cast<std::size_t>(j)];
        if (other < 0 || other == self) continue;
        ++scored;
        const float cosine = Dot(catalog.vector(self), catalog.vector(other), catalog.dim);
        if (cosine < options.candidate_floor) continue;
        cand_a.push_back(std::min(self, other));
        cand_b.push_back(std::max(self, other));
        cand_cosine.push_back(cosine);
        cand_hamming.push_back(HammingDistance(catalog.row(self).phash, catalog.row(other).phash));
      }
    }
  }
  const double search_seconds = world.MaxAll(Seconds(search_start));
  // Collective: true (and the report says "stopped") when any rank was asked to stop.
  auto stopped = [&] {
    if (world.SumAll({StopRequested() ? 1 : 0})[0] == 0) return false;
    if (world.is_root()) spdlog::warn("stop requested: nothing of the dedup stage is published; rerun lookbook dedup");
    report.status = "stopped";
    report.seconds = Seconds(start);
    return true;
  };
  if (stopped()) return report;
  const std::vector<std::int64_t> totals = world.SumAll({static_cast<std::int64_t>(queries.size()), scored});
  const std::vector<std::int64_t> all_a = world.GatherToRoot(cand_a), all_b = world.GatherToRoot(cand_b);
  const std::vector<float> all_cosine = world.GatherToRoot(cand_cosine);
  const std::vector<std::int32_t> all_hamming = world.GatherToRoot(cand_hamming);

  // One entry per pair (both ends may have found it); the cosine is the same either way.
  std::vector<ScoredPair> candidates;
  if (world.is_root()) {
    candidates.resize(all_a.size());
    for (std::size_t i = 0; i < all_a.size(); ++i)
      candidates[i] = ScoredPair{all_a[i], all_b[i], all_cosine[i], all_hamming[i]};
    std::sort(candidates.begin(), candidates.end(),
              [](const ScoredPair& x, const ScoredPair& y) { return std::tie(x.a, x.b) < std::tie(y.a, y.b); });
    candidates.erase(std::unique(candidates.begin(), candidates.end(),
                                 [](const ScoredPair& x, const ScoredPair& y) { return x.a == y.a && x.b == y.b; }),
                     candidates.end());
  }

  // Verification: every rank aligns its share of the candidates, rank 0 collects the scores.
  std::int64_t unreadable_pairs = 0;
  double verify_seconds = 0;
  if (options.rule.verify) {
    const auto verify_start = Clock::now();
    std::vector<std::int64_t> pair_a, pair_b;
    for (const auto& pair : candidates) {
      pair_a.push_back(pair.a);
      pair_b.push_back(pair.b);
    }
    pair_a = world.BroadcastFromRoot(std::move(pair_a));
    pair_b = world.BroadcastFromRoot(std::move(pair_b));
    const Verification mine = VerifyCandidates(pair_a, pair_b, catalog, image_root, world);
    const std::vector<std::int64_t> index = world.GatherToRoot(mine.index);
    const std::vector<float> aligned = world.GatherToRoot(mine.aligned);
    for (std::size_t i = 0; i < index.size() && world.is_root(); ++i) {
      candidates[static_cast<std::size_t>(index[i])].aligned = aligned[i];
    }
    unreadable_pairs = world.SumAll({mine.unreadable_pairs})[0];
    verify_seconds = world.MaxAll(Seconds(verify_start));
    if (stopped()) return report;
    if (world.is_root() && unreadable_pairs > 0) {
      spdlog::warn(
          "dedup: {} candidate pair(s) could not be verified (an image could not be read again): not duplicates",
          unreadable_pairs);
    }
  }
  const double peak = world.MaxAll(static_cast<double>(PeakRssBytes()));

  std::vector<std::int64_t> published(6, 0);  // pairs, same, cross, clusters, clustered images, candidates
  if (world.is_root()) {
    const auto write_start = Clock::now();
    DedupFile out;
    out.rule = options.rule;
    out.candidate_floor = options.candidate_floor;
    out.keep = KeepPolicyName(options.keep);
    for (const auto& pair : candidates) {
      if (!IsDuplicate(options.rule, pair)) continue;
      out.pairs.push_back(pair);
      out.pair_kind.push_back(catalog.row(pair.a).product_id == catalog.row(pair.b).product_id ? 0 : 1);
    }
    out.candidates = std::move(candidates);

    // Clusters: connected components of the duplicate pairs, each with its representative.
    // Catalog order and stock from the ingest shards (their rows are the embed rows).
    std::map<int, std::vector<std::vector<std::string>>> ingest_rows;
    auto ingest_row = [&](std::int64_t id) -> const std::vector<std::string>& {
      const int k = ShardOfImageId(id);
      auto it = ingest_rows.find(k);
      if (it == ingest_rows.end()) {
        it = ingest_rows
                 .emplace(k, ReadIngestRows(options.run, embed, k,
                                            catalog.shards[static_cast<std::size_t>(k)].images.size()))
                 .first;
      }
      return it->second[static_cast<std::size_t>(RowOfImageId(id))];
    };
    std::vector<std::pair<std::int64_t, std::int64_t>> duplicate_pairs;
    for (const auto& pair : out.pairs) duplicate_pairs.emplace_back(pair.a, pair.b);
    const std::vector<ClusterMember> members = ClusterPairs(duplicate_pairs, options.keep, [&](std::int64_t id) {
      const auto& row = ingest_row(id);
      KeepFacts facts;
      try {
        facts.catalog_row = std::stoll(row[kIngestRow]);
      } catch (const std::exception&) {
        throw InputError("ingest shard " + std::to_string(ShardOfImageId(id)) + ": row '" + row[kIngestRow] +
                         "' is not a number");
      }
      facts.pixels = static_cast<std::int64_t>(catalog.row(id).width) * catalog.row(id).height;
      facts.in_stock = row[kIngestInStock] == "1";
      return facts;
    });
    std::int64_t cluster = 0;
    for (const auto& member : members) {
      out.cluster_image.push_back(member.image);
      out.cluster_id.push_back(member.cluster);
      out.representative.push_back(member.representative ? 1 : 0);
      cluster = std::max(cluster, member.cluster + 1);
    }

    std::string pairs_csv = "image_a,image_b,product_a,product_b,cosine,hamming,kind\n";
    for (std::size_t i = 0; i < out.pairs.size(); ++i) {
      const auto& pair = out.pairs[i];
      const ImageRow& a = catalog.row(pair.a);
      const ImageRow& b = catalog.row(pair.b);
      const std::string cosine = Format("%.6f", pair.cosine), hamming = std::to_string(pair.hamming);
      AppendCsvRow({a.key, b.key, a.product_id, b.product_id, cosine, hamming,
                    out.pair_kind[i] == 0 ? "same_product" : "cross_product"},
                   &pairs_csv);
    }
    std::string clusters_csv = "cluster_id,image,product_id,is_representative\n";
    for (std::size_t i = 0; i < out.cluster_image.size(); ++i) {
      const ImageRow& image = catalog.row(out.cluster_image[i]);
      const std::string id = std::to_string(out.cluster_id[i]);
      AppendCsvRow({id, image.key, image.product_id, out.representative[i] ? "1" : "0"}, &clusters_csv);
    }
    PublishFile(stage_dir / "pairs.csv", pairs_csv);
    PublishFile(stage_dir / "clusters.csv", clusters_csv);
    WriteDedupFile(stage_dir / "dedup.h5", out);

    published = {static_cast<std::int64_t>(out.pairs.size()),
                 std::count(out.pair_kind.begin(), out.pair_kind.end(), 0),
                 std::count(out.pair_kind.begin(), out.pair_kind.end(), 1),
                 cluster,
                 static_cast<std::int64_t>(out.cluster_image.size()),
                 static_cast<std::int64_t>(out.candidates.size())};
    StageManifest manifest;
    manifest.stage = "dedup";
    manifest.code_version = options.code_version;
    manifest.options = Options(options);
    manifest.options_hash = options_hash;
    manifest.inputs = inputs;
    manifest.outputs.push_back(DescribeFile(stage_dir / "pairs.csv", "pairs.csv", published[0]));
    manifest.outputs.push_back(DescribeFile(stage_dir / "clusters.csv", "clusters.csv", published[4]));
    manifest.outputs.push_back(DescribeFile(stage_dir / "dedup.h5", "dedup.h5", published[0]));
    manifest.counts = {{"queries", totals[0]},
                       {"pairs", published[0]},
                       {"pairs_same_product", published[1]},
                       {"pairs_cross_product", published[2]},
                       {"clusters", published[3]},
                       {"clustered_images", published[4]},
                       {"candidates", published[5]}};
    WriteManifest(stage_dir, manifest);
    report.steps.push_back(StepTiming{"clusters + publish (rank 0)", Seconds(write_start), published[0]});
  }
  published = world.BroadcastFromRoot(published);

  report.counts["queries"] = totals[0];
  report.counts["neighbours_scored"] = totals[1];
  report.counts["candidates"] = published[5];
  report.counts["verify_unreadable_pairs"] = unreadable_pairs;
  report.counts["pairs"] = published[0];
  report.counts["pairs_same_product"] = published[1];
  report.counts["pairs_cross_product"] = published[2];
  report.counts["clusters"] = published[3];
  report.counts["clustered_images"] = published[4];
  report.counts["peak_rss_bytes_max_rank"] = static_cast<std::int64_t>(peak);
  report.counts["index_code_bytes"] = static_cast<std::int64_t>(index.code_bytes());
  report.facts["ranks"] = std::to_string(world.size());
  report.facts["index_factory"] =
      index_manifest.options.count("index_factory") ? index_manifest.options.at("index_factory") : "";
  report.facts["blas_core"] = BlasCoreName();
  report.facts["verify"] = options.rule.verify ? "on" : "off";
  if (options.rule.verify) {
    report.steps.insert(report.steps.begin(),
                        StepTiming{"verify: decode + align (slowest rank)", verify_seconds, published[5]});
  }
  report.steps.insert(report.steps.begin(), StepTiming{"search + re-rank (slowest rank)", search_seconds, totals[0]});
  report.steps.insert(report.steps.begin(), StepTiming{"load vectors + index (slowest rank)", load_seconds, totals[0]});
  report.seconds = Seconds(start);
  report.throughput_items = totals[0];
  return report;
}

}  // namespace lookbook
