#include "index/index_stage.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "catalog/sharding.h"
#include "index/vector_index.h"
#include "stage/counts.h"
#include "stage/run_status.h"
#include "stage/stage.h"
#include "store/embed_run.h"
#include "util/blas.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/publish.h"
#include "util/run_path.h"
#include "util/stop.h"

namespace lookbook {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

std::string IndexFileName(int shard) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%05d.faiss", shard);
  return name;
}

// One shard's ok vectors and their image ids.
struct ShardVectors {
  int shard = 0;
  int dim = 0;
  std::vector<float> vectors;
  std::vector<std::int64_t> ids;
  std::int64_t size() const { return static_cast<std::int64_t>(ids.size()); }
};

ShardVectors LoadShardVectors(Stage& stage, int shard) {
  const EmbedShard file =
      ReadEmbedShard(stage.VerifiedPath("embed", ShardFileName(shard, ".h5"), false), ShardParts::kWithoutThumbs);
  ShardVectors out;
  out.shard = shard;
  out.dim = file.meta.embedding_dim;
  const auto d = static_cast<std::size_t>(out.dim);
  for (std::size_t row = 0; row < file.images.size(); ++row) {
    if (file.images[row].status != 0) continue;
    out.ids.push_back(ImageId(shard, static_cast<std::int64_t>(row)));
    out.vectors.insert(out.vectors.end(), file.embeddings.begin() + static_cast<long>(row * d),
                       file.embeddings.begin() + static_cast<long>((row + 1) * d));
  }
  return out;
}

// `take` of the shard's rows, chosen by a Fisher-Yates shuffle seeded by (seed, shard):
// the same on every machine and for any number of ranks.
std::vector<std::int64_t> SampleRows(std::int64_t rows, std::int64_t take, std::uint64_t seed, int shard) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(rows));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(shard));
  for (std::int64_t i = 0; i < take; ++i) {
    const auto j = i + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(rows - i));
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  order.resize(static_cast<std::size_t>(take));
  std::sort(order.begin(), order.end());
  return order;
}

std::map<std::string, std::string> Options(const IndexOptions& options) { return IndexOptionTable().Identity(options); }

// A previous run's trained quantizer, when it may stand in for training: the same model, the
// same dimension and factory, and a vector count within `growth` of tonight's. The bytes are
// checked against that run's index manifest. Empty when it may not.
std::vector<std::uint8_t> ReusableQuantizer(const IndexOptions& options, const EmbedRun& embed, std::int64_t total,
                                            int d, const std::string& factory, std::string* note) {
  if (options.previous_run.empty()) return {};
  std::string why;
  const auto index = ReadManifest(options.previous_run / "index", &why);
  const auto previous_embed = ReadManifest(options.previous_run / "embed", &why);
  if (!index || !previous_embed) return {};
  const auto vectors = index->counts.find("vectors");
  if (ManifestOption(*index, "index_factory") != factory || ManifestOption(*index, "dim") != std::to_string(d) ||
      ManifestOption(*previous_embed, "model_sha256") != embed.model_sha256 || vectors == index->counts.end() ||
      vectors->second <= 0) {
    *note = "trained (the previous run's quantizer is for another model, dimension or factory)";
    return {};
  }
  const double growth = std::abs(static_cast<double>(total - vectors->second)) / static_cast<double>(vectors->second);
  if (growth >= options.retrain_growth) {
    *note = "trained (the catalog moved by " + std::to_string(static_cast<int>(growth * 100)) + "% since " +
            options.previous_run.filename().string() + ")";
    return {};
  }
  // Read once and checked on those very bytes (not verified as a file, then read again).
  for (const auto& output : index->outputs) {
    if (output.path != "trained.faiss") continue;
    const auto path = InsideRun(options.previous_run / "index", output.path, &why);
    if (!path) return {};
    std::string bytes;
    try {
      bytes = ReadFileBytes(*path);
    } catch (const InputError&) {
      return {};
    }
    if (!MatchesEntry(bytes, output)) return {};
    *note = "reused from " + options.previous_run.filename().string() + " (" + output.checksum + ")";
    return std::vector<std::uint8_t>(bytes.begin(), bytes.end());
  }
  return {};
}

}  // namespace

const OptionTable<IndexOptions>& IndexOptionTable() {
  static const OptionTable<IndexOptions> table = [] {
    using O = IndexOptions;
    OptionTable<O> t;
    t.Path(
        "run", "DIR", [](O& o) -> std::filesystem::path& { return o.run; }, true,
        "the run folder (reads DIR/embed, writes DIR/index)");
    t.Text(
        "factory", "SPEC", [](O& o) -> std::string& { return o.factory; }, "auto", OptionEffect::kOutput,
        "a FAISS index_factory string over inner product (IVF4096,PQ64np: np turns polysemous training off), or "
        "auto: Flat up to 50,000 vectors, else IVF<nlist>,PQ<m>x4np within --memory-budget");
    t.Integer<std::uint64_t>(
        "memory-budget", "BYTES", [](O& o) -> std::uint64_t& { return o.memory_budget; }, 8ull << 30, 1ull << 20,
        1ull << 50, OptionEffect::kOutput, "auto: bytes the codes of all shards may take");
    t.Integer<std::int64_t>(
        "train-sample", "N", [](O& o) -> std::int64_t& { return o.train_sample; }, 131072, 1, 1ll << 30,
        OptionEffect::kOutput, "training vectors drawn from all shards");
    t.Integer<std::uint64_t>(
        "seed", "S", [](O& o) -> std::uint64_t& { return o.seed; }, 1, 0, std::numeric_limits<std::uint64_t>::max(),
        OptionEffect::kOutput, "the training sample's seed");
    t.Integer<int>(
        "threads", "N", [](O& o) -> int& { return o.threads; }, 1, 1, 256, OptionEffect::kResource,
        "FAISS (OpenMP) threads per rank");
    t.Path(
        "previous-run", "DIR", [](O& o) -> std::filesystem::path& { return o.previous_run; }, false,
        "a finished run whose trained quantizer is reused when the model, dimension and factory match and the "
        "vector count moved by less than --retrain-growth (lookbook run passes it under a runs root)");
    t.Real<double>(
        "retrain-growth", "F", [](O& o) -> double& { return o.retrain_growth; }, "0.2", 0, 1000, OptionEffect::kOutput,
        "train again when the vector count moved by this fraction or more");
    t.Force([](O& o) -> RerunPolicy& { return o.rerun; }, "redo the stage even when its outputs are valid");
    return t;
  }();
  return table;
}

namespace {

// The quantizer the index will have, known from the manifests before a vector is read: a
// previous run's (its bytes) when ReusableQuantizer allows it, else empty (trained tonight).
std::vector<std::uint8_t> PlanQuantizer(const IndexOptions& options, const EmbedRun& embed,
                                        const StageManifest& embed_manifest, std::string* note) {
  const std::int64_t expected_total = embed_manifest.counts.count("ok") ? embed_manifest.counts.at("ok") : 0;
  const int expected_d =
      embed_manifest.counts.count("embedding_dim") ? static_cast<int>(embed_manifest.counts.at("embedding_dim")) : 0;
  *note = "trained";
  if (expected_total <= 0 || expected_d <= 0) return {};
  const std::string expected_factory =
      options.factory == "auto" ? AutoFactory(expected_total, expected_d, options.memory_budget) : options.factory;
  return ReusableQuantizer(options, embed, expected_total, expected_d, expected_factory, note);
}

// The vectors of this rank's shards, and what every rank learns of all shards.
struct RankVectors {
  std::vector<ShardVectors> mine;
  std::vector<std::int64_t> per_shard;  // vectors per shard, every shard
  int d = 0;
  std::int64_t total = 0;
};

// Pass 1 (collective): this rank's shards read and verified; counts and width agreed.
RankVectors ReadRankVectors(Stage& stage, const EmbedRun& embed, const MpiWorld& world) {
  RankVectors out;
  for (int k = 0; k < embed.shard_count; ++k) {
    if (RankOfShard(k, world.size()) == world.rank()) out.mine.push_back(LoadShardVectors(stage, k));
  }
  out.per_shard.assign(static_cast<std::size_t>(embed.shard_count), 0);  // ReadEmbedRun: at least one
  int dim = 0;
  for (const auto& shard : out.mine) {
    out.per_shard[static_cast<std::size_t>(shard.shard)] = shard.size();
    if (dim != 0 && shard.dim != dim) throw InputError("embed shards differ in embedding width");
    dim = shard.dim;
  }
  out.d = static_cast<int>(world.MaxAll(dim));
  if (dim != 0 && dim != out.d) throw InputError("embed shards differ in embedding width");
  out.per_shard = world.SumAll(out.per_shard);
  out.total = std::accumulate(out.per_shard.begin(), out.per_shard.end(), std::int64_t{0});
  if (out.total == 0) throw InputError("the run has no ok image to index");
  return out;
}

// Pass 2 (collective): the training sample on rank 0, in shard order whatever the number of
// ranks. Each shard gives its share in proportion to its vectors (SampleRows, seeded per shard).
std::vector<float> GatherTrainingSample(const RankVectors& vectors, std::int64_t sample, std::uint64_t seed,
                                        const MpiWorld& world) {
  const int d = vectors.d;
  std::vector<float> my_sample;
  std::vector<std::int64_t> my_tags;  // shard of each sampled vector
  std::int64_t before = 0;
  for (std::size_t k = 0; k < vectors.per_shard.size(); ++k) {
    const std::int64_t n = vectors.per_shard[k];
    const std::int64_t take = (sample * (before + n)) / vectors.total - (sample * before) / vectors.total;
    before += n;
    const auto it = std::find_if(vectors.mine.begin(), vectors.mine.end(),
                                 [&](const ShardVectors& s) { return s.shard == static_cast<int>(k); });
    if (it == vectors.mine.end() || take == 0) continue;
    for (const std::int64_t row : SampleRows(n, take, seed, static_cast<int>(k))) {
      my_sample.insert(my_sample.end(), it->vectors.begin() + row * d, it->vectors.begin() + (row + 1) * d);
      my_tags.push_back(static_cast<std::int64_t>(k));
    }
  }
  const std::vector<float> gathered = world.GatherToRoot(my_sample);
  const std::vector<std::int64_t> tags = world.GatherToRoot(my_tags);
  if (!world.is_root()) return {};
  std::vector<std::size_t> order(tags.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return tags[a] < tags[b]; });
  std::vector<float> training(gathered.size());
  const auto width = static_cast<std::size_t>(d);
  for (std::size_t i = 0; i < order.size(); ++i) {
    std::copy(gathered.begin() + static_cast<long>(order[i] * width),
              gathered.begin() + static_cast<long>((order[i] + 1) * width),
              training.begin() + static_cast<long>(i * width));
  }
  return training;
}

// Pass 3 (rank 0): the trained index's bytes (every rank gets them by broadcast).
std::vector<std::uint8_t> TrainQuantizer(const std::string& factory, int d, const std::vector<float>& training,
                                         std::int64_t total) {
  const auto rows = static_cast<std::int64_t>(training.size() / static_cast<std::size_t>(d));
  spdlog::info("training {} on {} of {} vectors (d = {}, BLAS core {})", factory, rows, total, d, BlasCoreName());
  return VectorIndex::Train(factory, d, training.data(), rows).Serialize();
}

// Pass 4 (each rank): its shards' vectors added to copies of the trained index, written into
// the staging folder. Returns the code bytes written; stops early on a stop request.
std::int64_t AddShards(const RankVectors& vectors, const std::vector<std::uint8_t>& trained,
                       const std::filesystem::path& staging) {
  std::int64_t code_bytes = 0;
  for (const auto& shard : vectors.mine) {
    if (StopRequested()) break;
    VectorIndex index = VectorIndex::Deserialize(trained);
    index.Add(shard.vectors.data(), shard.ids.data(), shard.size());
    index.WriteFile(staging / IndexFileName(shard.shard));
    code_bytes += static_cast<std::int64_t>(index.code_bytes());
  }
  return code_bytes;
}

// Summed over ranks after the add.
struct AddCounts {
  std::int64_t code_bytes = 0, stopped = 0;
  template <typename F>
  void ForEach(F&& f) {
    f("code_bytes", code_bytes);
    f("stopped", stopped);
  }
};

}  // namespace

StageReport RunIndex(const IndexOptions& options, const MpiWorld& world) {
  const auto start = Clock::now();
  StageReport report;
  report.stage = "index";
  report.throughput_unit = "vectors";
  report.facts["run"] = options.run.string();
  Stage stage(&world, options.run, "index", options.code_version);
  const EmbedRun embed = ReadEmbedRun(options.run);
  // The key: the options, every embed shard's checksum and the quantizer it will have.
  const StageManifest& embed_manifest = stage.Upstream("embed");
  for (int k = 0; k < embed.shard_count; ++k) stage.UseInput("embed", ShardFileName(k, ".h5"));
  const std::string options_hash = OptionsHash(Options(options));
  stage.Key().Add("options", options_hash);
  std::string quantizer_note;
  const std::vector<std::uint8_t> reused_quantizer = PlanQuantizer(options, embed, embed_manifest, &quantizer_note);
  stage.Key().Add("quantizer",
                  reused_quantizer.empty()
                      ? "trained"
                      : FormatChecksum(Xxh3(std::string_view(reinterpret_cast<const char*>(reused_quantizer.data()),
                                                             reused_quantizer.size()))));
  std::string why = "--force";
  const bool fresh = options.rerun == RerunPolicy::kReuseValid && stage.Fresh(&why);
  if (world.is_root()) {
    spdlog::info(!fresh ? "indexing {} shard(s) ({})" : "index of {} shard(s) is valid: nothing to do",
                 embed.shard_count, why);
  }
  if (fresh) {
    report.status = "skipped";
    report.counts["shards"] = embed.shard_count;
    report.seconds = Seconds(start);
    return report;
  }

  RankVectors vectors;
  {
    StepTimer timer(&report, "read (rank 0)");
    vectors = ReadRankVectors(stage, embed, world);
  }
  const int d = vectors.d;
  const std::int64_t total = vectors.total;
  const std::string factory =
      options.factory == "auto" ? AutoFactory(total, d, options.memory_budget) : options.factory;
  const std::int64_t sample = std::min(total, options.train_sample);
  if (sample * d * static_cast<std::int64_t>(sizeof(float)) >= (std::int64_t{1} << 31)) {
    throw InputError("--train-sample " + std::to_string(sample) + " of " + std::to_string(d) +
                     "-d vectors is 2 GiB or more: take fewer");
  }
  if (world.is_root() && sample < TrainingSize(factory, total)) {
    spdlog::warn("{} training vectors for {}: FAISS wants {} (raise --train-sample)", sample, factory,
                 TrainingSize(factory, total));
  }

  const std::vector<float> training = GatherTrainingSample(vectors, sample, options.seed, world);
  std::vector<std::uint8_t> trained_bytes;
  const auto train_start = Clock::now();
  if (!reused_quantizer.empty()) {
    const auto expected_d = embed_manifest.counts.at("embedding_dim");
    if (total != embed_manifest.counts.at("ok") || d != expected_d) {
      throw InputError("the embed manifest's counts do not match its shards: rerun lookbook embed --force");
    }
    trained_bytes = reused_quantizer;  // the same on every rank: read from the same file
    if (world.is_root()) spdlog::info("quantizer {}", quantizer_note);
  } else if (world.is_root()) {
    trained_bytes = TrainQuantizer(factory, d, training, total);
  }
  trained_bytes = world.BroadcastBytesFromRoot(std::move(trained_bytes));
  const double train_seconds = Seconds(train_start);

  const std::filesystem::path& staging = stage.Staging();
  if (world.is_root()) VectorIndex::Deserialize(trained_bytes).WriteFile(staging / "trained.faiss");
  const auto add_start = Clock::now();
  AddCounts added;
  added.code_bytes = AddShards(vectors, trained_bytes, staging);
  const double add_seconds = world.MaxAll(Seconds(add_start));
  added.stopped = StopRequested() ? 1 : 0;
  added = SumCounts(&world, added);
  if (added.stopped > 0) {
    // Nothing is published: the staging folder goes, the published index (if any) stays whole.
    if (world.is_root()) spdlog::warn("stop requested: the index is not published; rerun lookbook index");
    report.status = "stopped";
    report.seconds = Seconds(start);
    return report;
  }
  const double peak = world.MaxAll(static_cast<double>(PeakRssBytes()));
  vectors.mine.clear();

  StageManifest manifest;
  if (world.is_root()) {
    manifest.options = Options(options);
    manifest.options_hash = options_hash;
    // What `auto` resolved to, recorded beside the options (the hash is of the options given).
    manifest.options["index_factory"] = factory;
    manifest.options["dim"] = std::to_string(d);
    manifest.options["quantizer"] = quantizer_note;
    stage.AddOutput("trained.faiss", 0);
    for (int k = 0; k < embed.shard_count; ++k)
      stage.AddOutput(IndexFileName(k), vectors.per_shard[static_cast<std::size_t>(k)]);
    manifest.counts["vectors"] = total;
    manifest.counts["shards"] = embed.shard_count;
    manifest.counts["training_vectors"] = sample;
  }
  stage.Publish(manifest);  // collective: every rank's files are in; one rename publishes them all

  report.counts["shards"] = embed.shard_count;
  report.counts["vectors"] = total;
  report.counts["training_vectors"] = sample;
  report.counts["code_bytes"] = added.code_bytes;
  report.counts["peak_rss_bytes_max_rank"] = static_cast<std::int64_t>(peak);
  report.facts["factory"] = factory;
  report.facts["dim"] = std::to_string(d);
  report.facts["ranks"] = std::to_string(world.size());
  report.facts["blas_core"] = BlasCoreName();
  report.steps.push_back(StepTiming{"train (rank 0, with gather)", train_seconds, sample});
  report.steps.push_back(StepTiming{"add + publish (slowest rank)", add_seconds, total});
  report.steps.push_back(StepTiming{"stage skeleton (rank 0)", stage.skeleton_seconds(), 0});
  report.seconds = Seconds(start);
  report.throughput_items = total;
  return report;
}

ShardedIndex ReadRunIndex(const std::filesystem::path& run, const EmbedRun& embed, StageManifest* out) {
  std::string why;
  const auto manifest = ReadManifest(run / "index", &why);
  if (!manifest)
    throw InputError("run " + run.string() + " has no index stage (" + why + "): run lookbook index first");
  if (const std::string bad = CheckManifestPaths(run, "index", *manifest); !bad.empty()) {
    throw InputError((run / "index" / "manifest.json").string() + " is damaged: " + bad +
                     ": rerun lookbook index --force");
  }
  const std::string damaged = VerifyOutputs(run / "index", *manifest);
  if (!damaged.empty()) throw InputError((run / "index").string() + ": " + damaged + ": rerun lookbook index --force");
  // Older than the embeddings (StaleInputs, the one staleness rule), or made over another shard count.
  if (const std::string stale = StaleInputs(run, "index"); !stale.empty())
    throw InputError("the index is older than the embeddings (" + stale + "): rerun lookbook index");
  if (manifest->inputs.size() != embed.shards.size())
    throw InputError("the index is older than the embeddings: rerun lookbook index");
  std::vector<VectorIndex> shards;
  for (const auto& output : manifest->outputs) {
    if (output.path != "trained.faiss") shards.push_back(VectorIndex::ReadFile(run / "index" / output.path));
  }
  if (shards.empty())
    throw InputError((run / "index").string() + " holds no index shard: rerun lookbook index --force");
  if (out != nullptr) *out = *manifest;
  return ShardedIndex(std::move(shards));
}

}  // namespace lookbook
