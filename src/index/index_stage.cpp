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

StageReport RunIndex(const IndexOptions& options, const MpiWorld& world) {
  const auto start = Clock::now();
  StageReport report;
  report.stage = "index";
  report.throughput_unit = "vectors";
  report.facts["run"] = options.run.string();
  Stage stage(&world, options.run, "index", options.code_version);
  const EmbedRun embed = ReadEmbedRun(options.run);
  stage.Upstream("embed");
  // The key: the options and every embed shard's checksum.
  for (int k = 0; k < embed.shard_count; ++k) stage.UseInput("embed", ShardFileName(k, ".h5"));
  const std::string options_hash = OptionsHash(Options(options));
  stage.Key().Add("options", options_hash);
  // What the quantizer will be (trained tonight, or a previous run's) is part of the key: known
  // from the manifests before a vector is read.
  const StageManifest& embed_manifest = stage.Upstream("embed");
  const std::int64_t expected_total = embed_manifest.counts.count("ok") ? embed_manifest.counts.at("ok") : 0;
  const int expected_d =
      embed_manifest.counts.count("embedding_dim") ? static_cast<int>(embed_manifest.counts.at("embedding_dim")) : 0;
  std::string quantizer_note = "trained";
  std::vector<std::uint8_t> reused_quantizer;
  if (expected_total > 0 && expected_d > 0) {
    const std::string expected_factory =
        options.factory == "auto" ? AutoFactory(expected_total, expected_d, options.memory_budget) : options.factory;
    reused_quantizer = ReusableQuantizer(options, embed, expected_total, expected_d, expected_factory, &quantizer_note);
  }
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

  // This rank's shards, read and verified.
  std::vector<ShardVectors> mine;
  {
    StepTimer timer(&report, "read (rank 0)");
    for (int k = world.rank(); k < embed.shard_count; k += world.size()) mine.push_back(LoadShardVectors(stage, k));
  }
  std::vector<std::int64_t> per_shard(static_cast<std::size_t>(embed.shard_count) + 1, 0);
  int dim = 0;
  for (const auto& shard : mine) {
    per_shard[static_cast<std::size_t>(shard.shard)] = shard.size();
    dim = shard.dim;
  }
  for (const auto& shard : mine) {
    if (shard.dim != dim) throw InputError("embed shards differ in embedding width");
  }
  const int d = static_cast<int>(world.MaxAll(dim));
  if (dim != 0 && dim != d) throw InputError("embed shards differ in embedding width");
  per_shard = world.SumAll(per_shard);
  const std::int64_t total = std::accumulate(per_shard.begin(), per_shard.end(), std::int64_t{0});
  if (total == 0) throw InputError("the run has no ok image to index");

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

  // Each shard's share of the sample, in proportion to its vectors; gathered on rank 0 in
  // shard order whatever the number of ranks.
  std::vector<float> my_sample;
  std::vector<std::int64_t> my_tags;  // shard of each sampled vector
  std::int64_t before = 0;
  for (int k = 0; k < embed.shard_count; ++k) {
    const std::int64_t n = per_shard[static_cast<std::size_t>(k)];
    const std::int64_t take = (sample * (before + n)) / total - (sample * before) / total;
    before += n;
    const auto it = std::find_if(mine.begin(), mine.end(), [&](const ShardVectors& s) { return s.shard == k; });
    if (it == mine.end() || take == 0) continue;
    for (const std::int64_t row : SampleRows(n, take, options.seed, k)) {
      my_sample.insert(my_sample.end(), it->vectors.begin() + row * d, it->vectors.begin() + (row + 1) * d);
      my_tags.push_back(k);
    }
  }
  const std::vector<float> gathered = world.GatherToRoot(my_sample);
  const std::vector<std::int64_t> tags = world.GatherToRoot(my_tags);

  std::vector<std::uint8_t> trained_bytes;
  const auto train_start = Clock::now();
  if (!reused_quantizer.empty()) {
    if (total != expected_total || d != expected_d) {
      throw InputError("the embed manifest's counts do not match its shards: rerun lookbook embed --force");
    }
    trained_bytes = reused_quantizer;  // the same on every rank: read from the same file
    if (world.is_root()) spdlog::info("quantizer {}", quantizer_note);
  } else if (world.is_root()) {
    std::vector<std::size_t> order(tags.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return tags[a] < tags[b]; });
    std::vector<float> training(gathered.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
      std::copy(gathered.begin() + static_cast<long>(order[i] * static_cast<std::size_t>(d)),
                gathered.begin() + static_cast<long>((order[i] + 1) * static_cast<std::size_t>(d)),
                training.begin() + static_cast<long>(i * static_cast<std::size_t>(d)));
    }
    spdlog::info("training {} on {} of {} vectors (d = {}, BLAS core {})", factory, order.size(), total, d,
                 BlasCoreName());
    const VectorIndex trained =
        VectorIndex::Train(factory, d, training.data(), static_cast<std::int64_t>(order.size()));
    trained_bytes = trained.Serialize();
  }
  trained_bytes = world.BroadcastBytesFromRoot(std::move(trained_bytes));
  const double train_seconds = Seconds(train_start);

  // Every rank adds its shards' vectors to copies of the trained index, into the staging folder.
  const std::filesystem::path& staging = stage.Staging();
  if (world.is_root()) VectorIndex::Deserialize(trained_bytes).WriteFile(staging / "trained.faiss");
  const auto add_start = Clock::now();
  std::vector<std::int64_t> code_bytes(1, 0);
  for (const auto& shard : mine) {
    if (StopRequested()) break;
    VectorIndex index = VectorIndex::Deserialize(trained_bytes);
    index.Add(shard.vectors.data(), shard.ids.data(), shard.size());
    index.WriteFile(staging / IndexFileName(shard.shard));
    code_bytes[0] += static_cast<std::int64_t>(index.code_bytes());
  }
  const double add_seconds = world.MaxAll(Seconds(add_start));
  code_bytes.push_back(StopRequested() ? 1 : 0);
  code_bytes = world.SumAll(code_bytes);
  if (code_bytes[1] > 0) {
    // Nothing is published: the staging folder goes, the published index (if any) stays whole.
    if (world.is_root()) spdlog::warn("stop requested: the index is not published; rerun lookbook index");
    report.status = "stopped";
    report.seconds = Seconds(start);
    return report;
  }
  const double peak = world.MaxAll(static_cast<double>(PeakRssBytes()));
  mine.clear();

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
      stage.AddOutput(IndexFileName(k), per_shard[static_cast<std::size_t>(k)]);
    manifest.counts["vectors"] = total;
    manifest.counts["shards"] = embed.shard_count;
    manifest.counts["training_vectors"] = sample;
  }
  stage.Publish(manifest);  // collective: every rank's files are in; one rename publishes them all

  report.counts["shards"] = embed.shard_count;
  report.counts["vectors"] = total;
  report.counts["training_vectors"] = sample;
  report.counts["code_bytes"] = code_bytes[0];
  report.counts["peak_rss_bytes_max_rank"] = static_cast<std::int64_t>(peak);
  report.facts["factory"] = factory;
  report.facts["dim"] = std::to_string(d);
  report.facts["ranks"] = std::to_string(world.size());
  report.facts["blas_core"] = BlasCoreName();
  report.steps.push_back(StepTiming{"train (rank 0, with gather)", train_seconds, sample});
  report.steps.push_back(StepTiming{"add + publish (slowest rank)", add_seconds, total});
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
