#include "dedup/dedup_stage.h"

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
#include "image/align.h"
#include "image/decode.h"
#include "image/preprocess.h"
#include "index/index_stage.h"
#include "index/vector_index.h"
#include "stage/counts.h"
#include "stage/stage.h"
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

std::map<std::string, std::string> Options(const DedupOptions& options) { return DedupOptionTable().Identity(options); }

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

// This rank's share of the verification: the aligned correlation of candidates i = rank,
// rank + ranks, ... (image/align.h). Each image is read again and checked against the checksum
// embed recorded before it is decoded: verification looks at what embed saw, or at nothing. Views
// are decoded once while they stay in a small cache (candidates come sorted by their first
// image). A candidate with an image that cannot be read again, or that changed since embed,
// keeps NaN (not a duplicate) and is counted.
struct Verification {
  std::vector<std::int64_t> index;
  std::vector<float> aligned;
  std::int64_t unreadable_pairs = 0;
  std::vector<std::int64_t> changed_images;  // ids whose file no longer has embed's checksum
};

Verification VerifyCandidates(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b,
                              const Catalog& catalog, const std::filesystem::path& image_root, const MpiWorld& world) {
  constexpr std::size_t kCachedViews = 1024;  // 64 kB each
  std::unordered_map<std::int64_t, std::optional<AlignView>> views;
  int warnings = 0;
  Verification out;
  auto view = [&](std::int64_t id) -> const std::optional<AlignView>& {
    auto found = views.find(id);
    if (found != views.end()) return found->second;
    const ImageRow& row = catalog.row(id);
    DecodeLimits limits;
    limits.min_side = kAlignMinSide;
    std::string bytes;
    ImageStatus status = ReadImageFile(image_root / row.file, limits.max_file_bytes, &bytes);
    std::optional<AlignView> made;
    if (status == ImageStatus::kOk && Xxh3(bytes) != row.checksum) {
      out.changed_images.push_back(id);
      if (warnings++ < 10) {
        spdlog::warn("dedup: {} ({}) changed since embed read it: its candidates are not verified", row.key,
                     (image_root / row.file).string());
      }
      return views.emplace(id, std::move(made)).first->second;
    }
    if (status == ImageStatus::kOk) {
      const DecodeResult decoded = DecodeImage(bytes, limits);
      status = decoded.status;
      if (status == ImageStatus::kOk) made = MakeAlignView(decoded.image);
    }
    if (status != ImageStatus::kOk && warnings++ < 10) {
      spdlog::warn("dedup: cannot verify candidates of {} ({}): {}", row.key, (image_root / row.file).string(),
                   ImageStatusName(status));
    }
    return views.emplace(id, std::move(made)).first->second;
  };
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

// The stage's counts, summed over ranks (stage/counts.h).
struct DedupCounts {
  std::int64_t queries = 0, neighbours_scored = 0, verify_unreadable_pairs = 0, stopped = 0;
  template <typename F>
  void ForEach(F&& f) {
    f("queries", queries);
    f("neighbours_scored", neighbours_scored);
    f("verify_unreadable_pairs", verify_unreadable_pairs);
    f("stopped", stopped);
  }
};

// One run of the stage: its inputs, what each pass leaves for the next, and the report.
struct DedupRun {
  const DedupOptions& options;
  const MpiWorld& world;
  Stage stage;
  StageReport report;
  EmbedRun embed;
  std::filesystem::path image_root;
  Catalog catalog;
  std::optional<ShardedIndex> index;
  StageManifest index_manifest;
  std::vector<ScoredPair> mine;        // this rank's candidates
  std::vector<ScoredPair> candidates;  // rank 0: every candidate, once, in (a, b) order
  DedupCounts counts;
  std::int64_t changed_images = 0;
  double load_seconds = 0, search_seconds = 0, verify_seconds = 0;
  Clock::time_point start = Clock::now();

  DedupRun(const DedupOptions& o, const MpiWorld& w) : options(o), world(w), stage(&w, o.run, "dedup", o.code_version) {
    report.stage = "dedup";
    report.throughput_unit = "queries";
    report.facts["run"] = options.run.string();
  }

  // Collective: true (and the report says "stopped") when any rank was asked to stop.
  bool Stopped() {
    counts.stopped = StopRequested() ? 1 : 0;
    if (world.SumAll({counts.stopped})[0] == 0) return false;
    if (world.is_root()) spdlog::warn("stop requested: nothing of the dedup stage is published; rerun lookbook dedup");
    report.status = "stopped";
    report.seconds = Seconds(start);
    return true;
  }
};

// Pass 1: the inputs and the key. Every embed shard, every index file and every ingest shard
// (catalog order and stock, for the keep policy) is an input. True when the published stage is
// still valid for them.
bool ReadInputs(DedupRun& run) {
  const DedupOptions& options = run.options;
  run.embed = ReadEmbedRun(options.run);
  run.stage.Upstream("embed");
  const StageManifest& index = run.stage.Upstream("index");
  const StageManifest& ingest = run.stage.Upstream("ingest");
  for (int k = 0; k < run.embed.shard_count; ++k) run.stage.UseInput("embed", ShardFileName(k, ".h5"));
  for (const auto& output : index.outputs) run.stage.UseInput("index", output.path);
  for (int k = 0; k < run.embed.shard_count; ++k) run.stage.UseInput("ingest", ShardFileName(k, ".csv"));
  run.stage.Key().Add("options", OptionsHash(Options(options)));
  if (options.rule.verify) {
    const auto images = ingest.options.find("images");
    if (images == ingest.options.end() || images->second.empty()) {
      throw InputError(
          "run " + options.run.string() +
          " does not say where its images are (ingest manifest): verification needs them; use --verify off");
    }
    run.image_root = images->second;
  }
  std::string why = "--force";
  const bool fresh = options.rerun == RerunPolicy::kReuseValid && run.stage.Fresh(&why);
  if (run.world.is_root()) {
    if (!fresh)
      spdlog::info("dedup over {} shard(s) ({})", run.embed.shard_count, why);
    else
      spdlog::info("dedup outputs are valid: nothing to do");
  }
  return fresh;
}

// Pass 2: every rank holds the whole catalog's vectors (for the exact re-rank) and every index
// shard, checked against their manifests first.
void LoadCatalog(DedupRun& run) {
  const auto load_start = Clock::now();
  for (int k = 0; k < run.embed.shard_count; ++k) {
    run.catalog.shards.push_back(ReadEmbedShard(run.stage.VerifiedPath("embed", ShardFileName(k, ".h5"), false)));
  }
  run.catalog.dim = run.catalog.shards.front().meta.embedding_dim;
  run.index.emplace(ReadRunIndex(run.options.run, run.embed, &run.index_manifest));
  run.load_seconds = run.world.MaxAll(Seconds(load_start));
}

// Pass 3: this rank's queries (the ok images of its shards) against the index; each neighbour
// re-ranked exactly; those at or above the candidate floor kept.
void FindCandidates(DedupRun& run) {
  const auto search_start = Clock::now();
  const DedupOptions& options = run.options;
  const Catalog& catalog = run.catalog;
  std::vector<std::int64_t> queries;
  for (int k = run.world.rank(); k < run.embed.shard_count; k += run.world.size()) {
    const auto& images = catalog.shards[static_cast<std::size_t>(k)].images;
    for (std::size_t row = 0; row < images.size(); ++row) {
      if (images[row].status == 0) queries.push_back(ImageId(k, static_cast<std::int64_t>(row)));
    }
  }
  const int k_search = options.candidates + 1;  // the query itself comes back too
  std::vector<float> batch;
  for (std::size_t begin = 0; begin < queries.size(); begin += static_cast<std::size_t>(options.query_batch)) {
    if (StopRequested()) break;
    const std::size_t end = std::min(queries.size(), begin + static_cast<std::size_t>(options.query_batch));
    batch.clear();
    for (std::size_t q = begin; q < end; ++q) {
      batch.insert(batch.end(), catalog.vector(queries[q]), catalog.vector(queries[q]) + catalog.dim);
    }
    const SearchResult found =
        run.index->Search(batch.data(), static_cast<std::int64_t>(end - begin), k_search, options.nprobe);
    for (std::size_t q = begin; q < end; ++q) {
      const std::int64_t self = queries[q];
      for (int j = 0; j < k_search; ++j) {
        const std::int64_t other =
            found.ids[(q - begin) * static_cast<std::size_t>(k_search) + static_cast<std::size_t>(j)];
        if (other < 0 || other == self) continue;
        ++run.counts.neighbours_scored;
        const float cosine = Dot(catalog.vector(self), catalog.vector(other), catalog.dim);
        if (cosine < options.candidate_floor) continue;
        run.mine.push_back(ScoredPair{std::min(self, other), std::max(self, other), cosine,
                                      HammingDistance(catalog.row(self).phash, catalog.row(other).phash)});
      }
    }
  }
  run.counts.queries = static_cast<std::int64_t>(queries.size());
  run.search_seconds = run.world.MaxAll(Seconds(search_start));
}

// Pass 4: every rank's candidates on rank 0, one entry per pair (both ends may have found it;
// the cosine is the same either way), in (a, b) order.
void GatherCandidates(DedupRun& run) {
  std::vector<std::int64_t> a, b;
  std::vector<float> cosine;
  std::vector<std::int32_t> hamming;
  for (const auto& pair : run.mine) {
    a.push_back(pair.a);
    b.push_back(pair.b);
    cosine.push_back(pair.cosine);
    hamming.push_back(pair.hamming);
  }
  a = run.world.GatherToRoot(a);
  b = run.world.GatherToRoot(b);
  cosine = run.world.GatherToRoot(cosine);
  hamming = run.world.GatherToRoot(hamming);
  run.mine.clear();
  if (!run.world.is_root()) return;
  auto& candidates = run.candidates;
  candidates.resize(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) candidates[i] = ScoredPair{a[i], b[i], cosine[i], hamming[i]};
  std::sort(candidates.begin(), candidates.end(),
            [](const ScoredPair& x, const ScoredPair& y) { return std::tie(x.a, x.b) < std::tie(y.a, y.b); });
  candidates.erase(std::unique(candidates.begin(), candidates.end(),
                               [](const ScoredPair& x, const ScoredPair& y) { return x.a == y.a && x.b == y.b; }),
                   candidates.end());
}

// Pass 5: every rank aligns its share of the candidates; rank 0 collects the scores.
void VerifyPairs(DedupRun& run) {
  const auto verify_start = Clock::now();
  std::vector<std::int64_t> pair_a, pair_b;
  for (const auto& pair : run.candidates) {
    pair_a.push_back(pair.a);
    pair_b.push_back(pair.b);
  }
  pair_a = run.world.BroadcastFromRoot(std::move(pair_a));
  pair_b = run.world.BroadcastFromRoot(std::move(pair_b));
  const Verification mine = VerifyCandidates(pair_a, pair_b, run.catalog, run.image_root, run.world);
  const std::vector<std::int64_t> index = run.world.GatherToRoot(mine.index);
  const std::vector<float> aligned = run.world.GatherToRoot(mine.aligned);
  std::vector<std::int64_t> changed = run.world.GatherToRoot(mine.changed_images);
  for (std::size_t i = 0; i < index.size() && run.world.is_root(); ++i) {
    run.candidates[static_cast<std::size_t>(index[i])].aligned = aligned[i];
  }
  std::sort(changed.begin(), changed.end());
  run.changed_images = static_cast<std::int64_t>(std::unique(changed.begin(), changed.end()) - changed.begin());
  run.counts.verify_unreadable_pairs = mine.unreadable_pairs;
  run.verify_seconds = run.world.MaxAll(Seconds(verify_start));
}

// Pass 6 (rank 0 computes, every rank publishes): the rule, the clusters and their
// representatives, the tables, dedup.h5, the manifest.
std::vector<std::int64_t> ClusterAndPublish(DedupRun& run) {
  const DedupOptions& options = run.options;
  const Catalog& catalog = run.catalog;
  std::vector<std::int64_t> published(6, 0);  // pairs, same, cross, clusters, clustered images, candidates
  StageManifest manifest;
  const std::filesystem::path& staging = run.stage.Staging();
  if (run.world.is_root()) {
    const auto write_start = Clock::now();
    DedupFile out;
    out.rule = options.rule;
    out.candidate_floor = options.candidate_floor;
    out.keep = KeepPolicyName(options.keep);
    for (const auto& pair : run.candidates) {
      if (!IsDuplicate(options.rule, pair)) continue;
      out.pairs.push_back(pair);
      out.pair_kind.push_back(catalog.row(pair.a).product_id == catalog.row(pair.b).product_id ? 0 : 1);
    }
    out.candidates = std::move(run.candidates);

    // Clusters: connected components of the duplicate pairs, each with its representative.
    // Catalog order and stock from the ingest shards (their rows are the embed rows).
    std::map<int, std::vector<std::vector<std::string>>> ingest_rows;
    auto ingest_row = [&](std::int64_t id) -> const std::vector<std::string>& {
      const int k = ShardOfImageId(id);
      auto it = ingest_rows.find(k);
      if (it == ingest_rows.end()) {
        it = ingest_rows.emplace(k, ReadIngestRows(options.run, k, catalog.shards[static_cast<std::size_t>(k)].images))
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
    std::int64_t clusters = 0;
    for (const auto& member : members) {
      out.cluster_image.push_back(member.image);
      out.cluster_id.push_back(member.cluster);
      out.representative.push_back(member.representative ? 1 : 0);
      clusters = std::max(clusters, member.cluster + 1);
    }

    std::string pairs_csv = "image_a,image_b,product_a,product_b,cosine,hamming,kind\n";
    for (std::size_t i = 0; i < out.pairs.size(); ++i) {
      const auto& pair = out.pairs[i];
      const ImageRow& a = catalog.row(pair.a);
      const ImageRow& b = catalog.row(pair.b);
      AppendCsvRow({a.key, b.key, a.product_id, b.product_id, Format("%.6f", pair.cosine), std::to_string(pair.hamming),
                    out.pair_kind[i] == 0 ? "same_product" : "cross_product"},
                   &pairs_csv);
    }
    std::string clusters_csv = "cluster_id,image,product_id,is_representative\n";
    for (std::size_t i = 0; i < out.cluster_image.size(); ++i) {
      const ImageRow& image = catalog.row(out.cluster_image[i]);
      AppendCsvRow({std::to_string(out.cluster_id[i]), image.key, image.product_id, out.representative[i] ? "1" : "0"},
                   &clusters_csv);
    }
    PublishFile(staging / "pairs.csv", pairs_csv);
    PublishFile(staging / "clusters.csv", clusters_csv);
    WriteDedupFile(staging / "dedup.h5", out);

    published = {static_cast<std::int64_t>(out.pairs.size()),
                 std::count(out.pair_kind.begin(), out.pair_kind.end(), 0),
                 std::count(out.pair_kind.begin(), out.pair_kind.end(), 1),
                 clusters,
                 static_cast<std::int64_t>(out.cluster_image.size()),
                 static_cast<std::int64_t>(out.candidates.size())};
    manifest.options = Options(options);
    manifest.options_hash = OptionsHash(manifest.options);
    run.stage.AddOutput("pairs.csv", published[0]);
    run.stage.AddOutput("clusters.csv", published[4]);
    run.stage.AddOutput("dedup.h5", published[0]);
    manifest.counts = {{"queries", run.counts.queries},      {"pairs", published[0]},
                       {"pairs_same_product", published[1]}, {"pairs_cross_product", published[2]},
                       {"clusters", published[3]},           {"clustered_images", published[4]},
                       {"candidates", published[5]},         {"verify_changed_images", run.changed_images}};
    run.report.steps.push_back(StepTiming{"clusters + publish (rank 0)", Seconds(write_start), published[0]});
  }
  run.stage.Publish(manifest);
  return run.world.BroadcastFromRoot(published);
}

}  // namespace

const OptionTable<DedupOptions>& DedupOptionTable() {
  static const OptionTable<DedupOptions> table = [] {
    using O = DedupOptions;
    OptionTable<O> t;
    t.Path(
        "run", "DIR", [](O& o) -> std::filesystem::path& { return o.run; }, true,
        "the run folder (reads DIR/embed and DIR/index, writes DIR/dedup)");
    t.Integer<int>(
        "candidates", "K", [](O& o) -> int& { return o.candidates; }, 16, 1, 1024, OptionEffect::kOutput,
        "neighbours asked of the index per image");
    t.Integer<int>(
        "nprobe", "N", [](O& o) -> int& { return o.nprobe; }, 8, 1, 65536, OptionEffect::kOutput,
        "inverted lists searched per query (IVF indexes)");
    t.Add(
        OptionSpec{"verify", "on|off", "on", false, false, "on | off",
                   "align the images of every candidate pair (on), or decide on cosine and perceptual hash alone "
                   "(off: runs without their images)",
                   OptionEffect::kOutput},
        [](const std::vector<std::string>& values, O* out) {
          if (values.back() != "on" && values.back() != "off") throw UsageError("--verify must be on or off");
          out->rule.verify = values.back() == "on";
        },
        [](const O& o) { return std::string(o.rule.verify ? "on" : "off"); });
    t.Real<float>(
        "aligned", "R", [](O& o) -> float& { return o.rule.aligned; }, "0.975", -1, 1, OptionEffect::kOutput,
        "verified: a candidate at or above this aligned correlation is a duplicate");
    t.Real<float>(
        "aligned-phash", "R", [](O& o) -> float& { return o.rule.aligned_phash; }, "0.96", -1, 1, OptionEffect::kOutput,
        "verified: a candidate at or above this aligned correlation is a duplicate when its perceptual "
        "hashes agree (--max-hamming)");
    t.Real<float>(
        "cosine", "C", [](O& o) -> float& { return o.rule.cosine; }, "0.99", -1, 1, OptionEffect::kOutput,
        "--verify off: a pair at or above this cosine is a duplicate");
    t.Real<float>(
        "phash-cosine", "C", [](O& o) -> float& { return o.rule.phash_cosine; }, "0.965", -1, 1, OptionEffect::kOutput,
        "--verify off: a pair at or above this cosine is a duplicate when its perceptual hashes agree");
    t.Integer<int>(
        "max-hamming", "BITS", [](O& o) -> int& { return o.rule.max_hamming; }, 3, 0, 64, OptionEffect::kOutput,
        "perceptual hashes agree when at most this many of their 64 bits differ");
    t.Real<float>(
        "candidate-floor", "C", [](O& o) -> float& { return o.candidate_floor; }, "0.9", -1, 1, OptionEffect::kOutput,
        "candidates at or above this cosine are verified and kept in dedup.h5 for threshold sweeps");
    t.Add(
        OptionSpec{"keep", "POLICY", "first", false, false, "first | largest | in-stock",
                   "each cluster's representative: the first in catalog order, the largest (pixels), or the first "
                   "in-stock one",
                   OptionEffect::kOutput},
        [](const std::vector<std::string>& values, O* out) {
          if (!ParseKeepPolicy(values.back(), &out->keep)) {
            throw UsageError("--keep must be first, largest or in-stock, not '" + values.back() + "'");
          }
        },
        [](const O& o) { return std::string(KeepPolicyName(o.keep)); });
    t.Integer<int>(
        "query-batch", "N", [](O& o) -> int& { return o.query_batch; }, 4096, 1, 1 << 20, OptionEffect::kResource,
        "queries per index search call");
    t.Integer<int>(
        "threads", "N", [](O& o) -> int& { return o.threads; }, 1, 1, 256, OptionEffect::kResource,
        "FAISS (OpenMP) threads per rank");
    t.Force([](O& o) -> RerunPolicy& { return o.rerun; }, "redo the stage even when its outputs are valid");
    return t;
  }();
  return table;
}

StageReport RunDedup(const DedupOptions& options, const MpiWorld& world) {
  DedupRun run(options, world);
  if (ReadInputs(run)) {
    run.report.status = "skipped";
    run.report.seconds = Seconds(run.start);
    return run.report;
  }
  LoadCatalog(run);
  FindCandidates(run);
  if (run.Stopped()) return run.report;
  GatherCandidates(run);
  if (options.rule.verify) {
    VerifyPairs(run);
    if (run.Stopped()) return run.report;
  }
  const DedupCounts totals = SumCounts(&world, run.counts);
  if (world.is_root() && totals.verify_unreadable_pairs > 0) {
    spdlog::warn(
        "dedup: {} candidate pair(s) could not be verified (an image could not be read again, or changed "
        "since embed): not duplicates",
        totals.verify_unreadable_pairs);
  }
  run.counts.queries = totals.queries;  // the manifest counts every rank's queries
  const double peak = world.MaxAll(static_cast<double>(PeakRssBytes()));
  const std::vector<std::int64_t> published = ClusterAndPublish(run);
  const std::int64_t changed = world.BroadcastFromRoot(run.changed_images);

  StageReport& report = run.report;
  report.counts["queries"] = totals.queries;
  report.counts["neighbours_scored"] = totals.neighbours_scored;
  report.counts["candidates"] = published[5];
  report.counts["verify_unreadable_pairs"] = totals.verify_unreadable_pairs;
  report.counts["verify_changed_images"] = changed;
  report.counts["pairs"] = published[0];
  report.counts["pairs_same_product"] = published[1];
  report.counts["pairs_cross_product"] = published[2];
  report.counts["clusters"] = published[3];
  report.counts["clustered_images"] = published[4];
  report.counts["peak_rss_bytes_max_rank"] = static_cast<std::int64_t>(peak);
  report.counts["index_code_bytes"] = static_cast<std::int64_t>(run.index->code_bytes());
  report.facts["ranks"] = std::to_string(world.size());
  report.facts["index_factory"] =
      run.index_manifest.options.count("index_factory") ? run.index_manifest.options.at("index_factory") : "";
  report.facts["blas_core"] = BlasCoreName();
  report.facts["verify"] = options.rule.verify ? "on" : "off";
  if (options.rule.verify) {
    report.steps.insert(report.steps.begin(),
                        StepTiming{"verify: decode + align (slowest rank)", run.verify_seconds, published[5]});
  }
  report.steps.insert(report.steps.begin(),
                      StepTiming{"search + re-rank (slowest rank)", run.search_seconds, totals.queries});
  report.steps.insert(report.steps.begin(),
                      StepTiming{"load vectors + index (slowest rank)", run.load_seconds, totals.queries});
  report.seconds = Seconds(run.start);
  report.throughput_items = totals.queries;
  return report;
}

}  // namespace lookbook
