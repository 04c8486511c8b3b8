#include "dedup/dedup_stage.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "catalog/csv.h"
#include "catalog/ingest.h"
#include "catalog/sharding.h"
#include "dedup/decisions.h"
#include "dedup/neighbours.h"
#include "dist/remote_scores.h"
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
#include "util/run_path.h"
#include "util/stop.h"
#include "util/vectors.h"

namespace lookbook {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// The candidates from an image's neighbour list (docs/architecture.md#dedup-in-detail): every
// neighbour at or above --candidate-floor, and its nearest of another product (the first such in
// list order) down to --nearest-floor. A relisted copy whose crop, frame or turn moved its
// embedding below the floor is another product, and still, most often, its original's nearest
// (real-photo relistings: 14 of 21 such misses of the tune half); a product's own images below
// the floor are its other shots and outfit photo, not copies. At most one pair an image, whatever
// the catalog's density. With verification off the rule needs a cosine far above either floor,
// so the nearest floor is not used.
float NearestFloor(const DedupOptions& options) {
  return options.rule.verify ? options.nearest_floor : options.candidate_floor;
}
bool IsCandidate(const DedupOptions& options, float cosine, bool nearest) {
  return cosine >= options.candidate_floor || (nearest && cosine >= NearestFloor(options));
}

// What dedup keeps of one image: an /images row without its path, file name and reason, its
// key in its shard's key text (the product id is the key up to its last '/'). At 1M images the
// full rows were ~0.35 GB on every rank whatever the rank count; these are ~0.09 GB.
struct DedupImage {
  std::array<std::uint8_t, 8> phash{};
  std::uint64_t checksum = 0;
  std::int32_t width = 0;
  std::int32_t height = 0;
  std::array<std::int16_t, 4> content_box{};
  std::array<float, 6> colour{};
  std::uint32_t key_begin = 0;  // in CatalogShard::keys; the key ends where the next begins
  std::int8_t status = 0;
};
static_assert(sizeof(DedupImage) <= 64, "one cache line per image");

struct CatalogShard {
  std::vector<DedupImage> images;
  std::string keys;               // every image's key, one after another
  std::vector<float> embeddings;  // this rank's shards only: images.size() x dim
  std::string_view key(std::size_t row) const {
    const std::size_t end = row + 1 < images.size() ? images[row + 1].key_begin : keys.size();
    return std::string_view(keys).substr(images[row].key_begin, end - images[row].key_begin);
  }
};

// Every image of the catalog as dedup needs it: hashes, keys, colour statistics; and the full
// vectors of the shards this rank owns (shard k belongs to rank k mod ranks). Scores against
// another rank's images are asked of that rank (dist/remote_scores.h).
struct Catalog {
  int dim = 0;
  int rank = 0, ranks = 1;
  std::vector<CatalogShard> shards;
  const CatalogShard& shard(std::int64_t id) const { return shards[static_cast<std::size_t>(ShardOfImageId(id))]; }
  const DedupImage& row(std::int64_t id) const { return shard(id).images[static_cast<std::size_t>(RowOfImageId(id))]; }
  std::string_view key(std::int64_t id) const { return shard(id).key(static_cast<std::size_t>(RowOfImageId(id))); }
  // The key's product id (ingest's keys are product_id/column, and a column holds no '/').
  std::string_view product_id(std::int64_t id) const {
    const std::string_view k = key(id);
    return k.substr(0, k.rfind('/'));
  }
  int owner(std::int64_t id) const { return RankOfShard(ShardOfImageId(id), ranks); }
  const float* vector(std::int64_t id) const {
    LB_CHECK(owner(id) == rank, "dedup: the vector of an image another rank holds");
    return shard(id).embeddings.data() + static_cast<std::size_t>(RowOfImageId(id)) * static_cast<std::size_t>(dim);
  }
  RemoteScores Scores(const MpiWorld& world) const {
    return RemoteScores(
        &world, dim, [this](std::int64_t id) { return owner(id); }, [this](std::int64_t id) { return vector(id); });
  }
};

std::map<std::string, std::string> Options(const DedupOptions& options) { return DedupOptionTable().Identity(options); }

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

// This rank's share of the verification: candidates i = rank, rank + ranks, ... go through the
// cascade (image/align.h): the colour gate on the stored colour statistics, then the coarse
// correlation and the alignment on the align thumbnails embed stored. No image file is read:
// verification looks at the pixels embed saw. Each rank reads the thumbnails of its pairs' images
// only (those the colour gate leaves), shard by shard.
struct Verification {
  std::vector<std::int64_t> index;
  std::vector<float> aligned, brightness, hue, coarse, half_aligned;
  std::vector<std::int8_t> verified_by;
  std::int64_t thumbs_read = 0;
};

Verification VerifyCandidates(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b,
                              const Catalog& catalog, const std::vector<std::filesystem::path>& shard_files, bool gates,
                              const MpiWorld& world) {
  Verification out;
  auto stats = [&](std::int64_t id) {
    const DedupImage& row = catalog.row(id);
    return ThumbStats{row.content_box, row.colour};
  };
  // Colour gate first: it needs no pixels. `mine` holds the pairs it leaves (their place in
  // `out`, and the two images in key order: the score depends on the two images alone, not on
  // where the catalog put them, so an incremental night reuses it for two unchanged images).
  struct Pending {
    std::size_t k;
    std::int64_t first, second;
  };
  std::vector<Pending> mine;
  for (std::size_t i = static_cast<std::size_t>(world.rank()); i < a.size();
       i += static_cast<std::size_t>(world.size())) {
    const bool swap = catalog.key(b[i]) < catalog.key(a[i]);
    const std::int64_t first = swap ? b[i] : a[i], second = swap ? a[i] : b[i];
    const ColourShift shift = CompareColour(stats(first), stats(second));
    out.index.push_back(static_cast<std::int64_t>(i));
    out.brightness.push_back(shift.brightness);
    out.hue.push_back(shift.hue);
    out.coarse.push_back(std::numeric_limits<float>::quiet_NaN());
    out.half_aligned.push_back(std::numeric_limits<float>::quiet_NaN());
    out.aligned.push_back(-1.0f);
    if (gates && (shift.brightness > kGateMaxBrightness || shift.hue > kGateMaxHue)) {
      out.verified_by.push_back(static_cast<std::int8_t>(VerifiedBy::kColourGate));
      continue;
    }
    out.verified_by.push_back(static_cast<std::int8_t>(VerifiedBy::kAlignment));
    mine.push_back(Pending{out.index.size() - 1, first, second});
  }
  // The thumbnails those pairs need, read once per image.
  std::map<int, std::vector<std::int64_t>> rows_of_shard;
  for (const Pending& pair : mine) {
    for (const std::int64_t id : {pair.first, pair.second})
      rows_of_shard[ShardOfImageId(id)].push_back(RowOfImageId(id));
  }
  std::unordered_map<std::int64_t, std::size_t> offset;
  std::vector<std::uint8_t> thumbs;
  for (auto& [shard, rows] : rows_of_shard) {
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    const std::vector<std::uint8_t> read = ReadAlignThumbs(shard_files.at(static_cast<std::size_t>(shard)), rows);
    for (std::size_t r = 0; r < rows.size(); ++r)
      offset.emplace(ImageId(shard, rows[r]), thumbs.size() + r * kAlignThumbBytes);
    thumbs.insert(thumbs.end(), read.begin(), read.end());
    out.thumbs_read += static_cast<std::int64_t>(rows.size());
  }
  auto thumb = [&](std::int64_t id) { return thumbs.data() + offset.at(id); };
  for (const Pending& pair : mine) {
    if (StopRequested()) break;
    const std::size_t k = pair.k;
    const ThumbStats stats_a = stats(pair.first), stats_b = stats(pair.second);
    out.coarse[k] = CoarseCorrelation(thumb(pair.first), stats_a, thumb(pair.second), stats_b);
    if (gates && out.coarse[k] < kGateMinCoarse) {
      out.verified_by[k] = static_cast<std::int8_t>(VerifiedBy::kCoarseGate);
      continue;
    }
    const AlignView view_a = ViewFromThumb(thumb(pair.first)), view_b = ViewFromThumb(thumb(pair.second));
    AlignSearch search;
    if (!gates) search.min_half_colour = -1.5f;  // measured, never decides
    const AlignResult result = AlignCoarseToFine(view_a, view_b, search, &stats_a, &stats_b);
    out.half_aligned[k] = result.half_colour;
    if (gates) {
      out.aligned[k] = result.aligned;
      if (!result.aligned_full) out.verified_by[k] = static_cast<std::int8_t>(VerifiedBy::kHalfSizeAlignment);
    } else {
      out.aligned[k] = AlignedCorrelation(view_a, view_b);  // the full-size search from every start
    }
  }
  return out;
}

// The stage's counts, summed over ranks (stage/counts.h).
struct DedupCounts {
  std::int64_t queries = 0, neighbours_scored = 0, thumbs_read = 0, score_bytes_sent = 0, hash_pairs = 0,
               hash_neighbours_dropped = 0, stopped = 0;
  template <typename F>
  void ForEach(F&& f) {
    f("queries", queries);
    f("hash_pairs", hash_pairs);
    f("hash_neighbours_dropped", hash_neighbours_dropped);
    f("score_bytes_sent", score_bytes_sent);
    f("neighbours_scored", neighbours_scored);
    f("thumbs_read", thumbs_read);
    f("stopped", stopped);
  }
};

// Lists found by this rank's searches, and (fresh images) the reverse hits: flat columns, so
// that they gather to rank 0 in one message each.
struct FoundLists {
  std::vector<std::int64_t> owner;             // per list
  std::vector<std::int8_t> truncated;          // per list
  std::vector<std::int64_t> entry_of;          // per entry: its list's owner
  std::vector<std::int64_t> member;            // per entry
  std::vector<float> score;                    // per entry
  std::vector<std::int64_t> hit_to, hit_from;  // reverse hits: hit_from scored hit_to >= the list floor
  std::vector<float> hit_score;

  void Add(std::int64_t image, const NeighbourList& list) {
    owner.push_back(image);
    truncated.push_back(list.truncated ? 1 : 0);
    for (const auto& entry : list.entries) {
      entry_of.push_back(image);
      member.push_back(entry.image);
      score.push_back(entry.score);
    }
  }
  void GatherToRoot(const MpiWorld& world) {
    owner = world.GatherToRoot(owner);
    truncated = world.GatherToRoot(truncated);
    entry_of = world.GatherToRoot(entry_of);
    member = world.GatherToRoot(member);
    score = world.GatherToRoot(score);
    hit_to = world.GatherToRoot(hit_to);
    hit_from = world.GatherToRoot(hit_from);
    hit_score = world.GatherToRoot(hit_score);
  }
};

// One run of the stage: its inputs, what each pass leaves for the next, and the report.
struct DedupRun {
  const DedupOptions& options;
  const MpiWorld& world;
  Stage stage;
  StageReport report;
  EmbedRun embed;
  std::vector<std::filesystem::path> shard_files;  // RUN/embed/shard-K.h5, verified
  Catalog catalog;
  std::optional<ShardedIndex> index;
  StageManifest index_manifest;
  int list_size = 0;
  float list_floor = 0;
  KeyOf key_of;                 // image id -> key: the list order's tie-break
  std::string search_identity;  // what must match for last night's lists to be carried
  // Incremental (every rank): searched tonight. Rank 0 also holds the carried lists.
  bool incremental = false;
  std::string incremental_note = "full: no --previous-run";
  NightPlan plan;
  std::unordered_map<std::string, ScoredPair> previous_aligned;  // rank 0
  FoundLists found;                                              // this rank's, then (rank 0) everyone's
  std::map<std::int64_t, NeighbourList> lists;                   // rank 0: every ok image's list
  std::vector<ScoredPair> mine;                                  // this rank's candidates
  std::vector<ScoredPair> candidates;                            // rank 0: every candidate, once, in (a, b) order
  std::vector<std::int8_t> reused;  // rank 0: per candidate, 1 when last night's verification was reused
  std::int64_t pairs_verified = 0, pairs_reused = 0;
  DecisionsFile decisions;
  std::string decisions_checksum;
  DedupCounts counts;
  std::map<std::string, std::int64_t> verified_by;  // rank 0: candidates by how verification ended
  double load_seconds = 0, search_seconds = 0, verify_seconds = 0;
  Clock::time_point start = Clock::now();

  DedupRun(const DedupOptions& o, const MpiWorld& w) : options(o), world(w), stage(&w, o.run, "dedup", o.code_version) {
    report.stage = "dedup";
    report.throughput_unit = "queries";
    report.facts["run"] = options.run.string();
    list_size = options.candidates + 1;  // the query itself comes back too
    list_floor = std::min(options.candidate_floor, NearestFloor(options)) - kListMargin;
    key_of = [this](std::int64_t id) { return catalog.key(id); };
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

// Appends the candidate pairs of `image`'s list (IsCandidate: every entry at or above the
// candidate floor, and its first entry of another product down to the nearest floor) to *out.
void AppendCandidates(const DedupRun& run, std::int64_t image, const std::vector<Neighbour>& entries,
                      std::vector<ScoredPair>* out) {
  const Catalog& catalog = run.catalog;
  bool nearest = true;
  for (const auto& entry : entries) {
    if (entry.image == image) continue;
    const bool other_product = catalog.product_id(entry.image) != catalog.product_id(image);
    const bool is_candidate = IsCandidate(run.options, entry.score, nearest && other_product);
    nearest = nearest && !other_product;
    if (!is_candidate) continue;
    out->push_back(ScoredPair{std::min(image, entry.image), std::max(image, entry.image), entry.score,
                              HammingDistance(catalog.row(image).phash, catalog.row(entry.image).phash)});
  }
}

// Everything last night's lists and verifications depend on besides the images: every dedup
// option that changes outputs (from the option table, so a new one cannot be left out) except
// those that only decide among verified candidates (the rule's thresholds, the keep policy); the
// cascade's gate constants and the alignment's version; the embedding's identity (model and options); the index factory
// and its trained quantizer.
std::string SearchIdentity(DedupRun& run) {
  const StageManifest& index = run.stage.Upstream("index");
  std::map<std::string, std::string> options = Options(run.options);
  for (const char* decides_only : {"aligned", "aligned-phash", "cosine", "phash-cosine", "max-hamming", "keep"}) {
    LB_CHECK(options.erase(decides_only) == 1, std::string("dedup has no output option ") + decides_only);
  }
  StageKey key;
  key.Add("lists", kNeighbourListsVersion);
  key.Add("align", kAlignVersion);
  key.Add("options", OptionsHash(options));
  key.Add("list_floor", Format("%.9g", run.list_floor));
  key.Add("gates", Format("%.9g", kGateMaxBrightness) + "," + Format("%.9g", kGateMaxHue) + "," +
                       Format("%.9g", kGateMinCoarse) + "," + Format("%.9g", kGateMinHalfColour));
  key.Add("embed", run.stage.Upstream("embed").options_hash);
  key.Add("index_factory", ManifestOption(index, "index_factory"));
  for (const auto& output : index.outputs) {
    if (output.path == "trained.faiss") key.Add("quantizer", output.checksum);
  }
  return key.Hash();
}

// The reviewer decisions file (--decisions): read, its checksum part of the key.
void ReadDecisions(DedupRun& run) {
  const DedupOptions& options = run.options;
  if (options.decisions.empty()) return;
  std::string text;
  try {
    text = ReadFileBytes(options.decisions);
  } catch (const InputError& error) {
    throw InputError("--decisions " + options.decisions.string() + ": " + error.what());
  }
  run.decisions = ParseDecisions(options.decisions.string(), text);
  run.decisions_checksum = FormatChecksum(Xxh3(text));
  ManifestEntry source;
  source.path = std::filesystem::absolute(options.decisions).lexically_normal().string();
  source.size = text.size();
  source.checksum = run.decisions_checksum;
  source.rows = run.decisions.total;
  run.stage.AddSource(source);
  if (run.world.is_root() && !run.decisions.rejected.empty()) {
    spdlog::warn("{}: {} of {} decision(s) rejected; the first: {}", options.decisions.string(),
                 run.decisions.rejected.size(), run.decisions.total, run.decisions.rejected.front().reason);
  }
}

// Pass 1: the inputs and the key. Every embed shard, every index file and every ingest shard
// (catalog order and stock, for the keep policy) is an input, and the reviewer decisions. True
// when the published stage is still valid for them.
bool ReadInputs(DedupRun& run) {
  const DedupOptions& options = run.options;
  run.embed = ReadEmbedRun(options.run);
  run.stage.Upstream("embed");
  const StageManifest& index = run.stage.Upstream("index");
  run.stage.Upstream("ingest");  // catalog order and stock (the keep policy)
  for (int k = 0; k < run.embed.shard_count; ++k) run.stage.UseInput("embed", ShardFileName(k, ".h5"));
  for (const auto& output : index.outputs) run.stage.UseInput("index", output.path);
  for (int k = 0; k < run.embed.shard_count; ++k) run.stage.UseInput("ingest", ShardFileName(k, ".csv"));
  run.stage.Key().Add("options", OptionsHash(Options(options)));
  ReadDecisions(run);
  run.stage.Key().Add("decisions", run.decisions_checksum.empty() ? "none" : run.decisions_checksum);
  run.search_identity = SearchIdentity(run);
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

// Pass 2: every rank holds every image's row (key, hashes, colour statistics), the full vectors of
// its own shards (for the exact re-rank) and every index shard, checked against their manifests
// first.
void LoadCatalog(DedupRun& run) {
  const auto load_start = Clock::now();
  run.catalog.rank = run.world.rank();
  run.catalog.ranks = run.world.size();
  for (int k = 0; k < run.embed.shard_count; ++k) {
    run.shard_files.push_back(run.stage.VerifiedPath("embed", ShardFileName(k, ".h5"), false));
    const bool mine = RankOfShard(k, run.world.size()) == run.world.rank();
    EmbedShard read = ReadEmbedShard(run.shard_files.back(), mine ? ShardParts::kImages : ShardParts::kRowsOnly);
    if (k == 0) run.catalog.dim = read.meta.embedding_dim;
    CatalogShard shard;
    shard.embeddings = std::move(read.embeddings);
    shard.images.reserve(read.images.size());
    std::size_t key_bytes = 0;
    for (const ImageRow& row : read.images) key_bytes += row.key.size();
    LB_CHECK(key_bytes <= std::numeric_limits<std::uint32_t>::max(), "dedup: a shard's keys exceed 4 GB");
    shard.keys.reserve(key_bytes);
    for (const ImageRow& row : read.images) {
      LB_CHECK(row.key.find('/') != std::string::npos, "dedup: image key '" + row.key + "' has no column");
      DedupImage image{row.phash,
                       row.checksum,
                       row.width,
                       row.height,
                       row.content_box,
                       row.colour,
                       static_cast<std::uint32_t>(shard.keys.size()),
                       row.status};
      shard.keys += row.key;
      shard.images.push_back(image);
    }
    run.catalog.shards.push_back(std::move(shard));
  }
  run.index.emplace(ReadRunIndex(run.options.run, run.embed, &run.index_manifest));
  // The shards' full rows and read buffers are freed by now: hand their pages back, or every
  // rank would carry the load's peak through the search.
  ReleaseReadMemory();
  run.load_seconds = run.world.MaxAll(Seconds(load_start));
}

// Every ok image of the run, in image id order.
std::vector<ImageIdentity> OkImages(const Catalog& catalog) {
  std::vector<ImageIdentity> out;
  for (std::size_t k = 0; k < catalog.shards.size(); ++k) {
    const auto& images = catalog.shards[k].images;
    for (std::size_t row = 0; row < images.size(); ++row) {
      if (images[row].status != 0) continue;
      out.push_back(ImageIdentity{ImageId(static_cast<int>(k), static_cast<std::int64_t>(row)),
                                  std::string(catalog.shards[k].key(row)), images[row].checksum});
    }
  }
  return out;
}

// Last night's dedup.h5, when its lists may be carried: the previous run's dedup stage searched
// with this identity, and its file matches its manifest. Otherwise nullopt and *note says why.
std::optional<DedupFile> ReadPreviousDedup(const std::filesystem::path& previous, const std::string& identity,
                                           std::string* note) {
  std::string why;
  const auto manifest = ReadManifest(previous / "dedup", &why);
  if (!manifest) {
    *note = "full: " + previous.filename().string() + " has no valid dedup stage (" + why + ")";
    return std::nullopt;
  }
  if (ManifestOption(*manifest, "search_identity") != identity) {
    *note =
        "full: " + previous.filename().string() + " searched with another model, index, quantizer or search options";
    return std::nullopt;
  }
  const auto path = VerifiedOutput(previous / "dedup", *manifest, "dedup.h5", &why);
  if (!path) {
    *note = "full: " + previous.filename().string() + "/dedup/" + why;
    return std::nullopt;
  }
  try {
    DedupFile file = ReadDedupFile(*path);
    *note = "incremental from " + previous.filename().string();
    return file;
  } catch (const InputError& e) {
    *note = "full: " + std::string(e.what());
    return std::nullopt;
  }
}

// Rank 0 decides whether tonight is incremental and what it searches; every rank learns it.
void PlanSearch(DedupRun& run) {
  std::vector<std::int64_t> fresh, requery;
  std::int64_t incremental = 0;
  if (run.world.is_root() && !run.options.previous_run.empty()) {
    std::optional<DedupFile> previous =
        ReadPreviousDedup(run.options.previous_run, run.search_identity, &run.incremental_note);
    if (previous) {
      const std::vector<ImageIdentity> images = OkImages(run.catalog);
      run.plan = PlanNight(images, previous->neighbours);
      const std::size_t searched = run.plan.fresh.size() + run.plan.requery.size();
      if (2 * searched > images.size()) {
        run.incremental_note = "full: " + std::to_string(searched) + " of " + std::to_string(images.size()) +
                               " images are new, changed or lost a neighbour since " +
                               run.options.previous_run.filename().string();
        run.plan = NightPlan{};
      } else {
        incremental = 1;
        fresh = run.plan.fresh;
        requery = run.plan.requery;
        run.previous_aligned = PreviousAligned(*previous);
      }
    }
  }
  if (run.world.is_root()) spdlog::info("dedup: {}", run.incremental_note);
  run.incremental = run.world.BroadcastFromRoot(incremental) != 0;
  if (!run.incremental) return;
  run.plan.fresh = run.world.BroadcastFromRoot(std::move(fresh));
  run.plan.requery = run.world.BroadcastFromRoot(std::move(requery));
}

// This rank's searches: each query's list (the top list_size hits at or above the list floor,
// and any whose exact cosine is a candidate's) and its candidates. A query with `reverse` is
// searched with a growing k until its hits fall below the list floor; every hit past its own
// list is kept as a reverse hit (the other image may list it).
// Collective: the exact cosines against other ranks' images are asked of them, so the ranks go
// through the batches and rounds in step (a rank with fewer queries asks nothing in the rest).
void Search(DedupRun& run, const std::vector<std::int64_t>& queries, bool reverse) {
  const DedupOptions& options = run.options;
  const Catalog& catalog = run.catalog;
  const MpiWorld& world = run.world;
  const std::int64_t total = run.index->size();
  const auto batch_size = static_cast<std::size_t>(options.query_batch);
  const auto batches =
      static_cast<std::size_t>(world.MaxAll(static_cast<double>((queries.size() + batch_size - 1) / batch_size)));
  RemoteScores scores = catalog.Scores(world);
  std::vector<float> batch;
  for (std::size_t b = 0; b < batches; ++b) {
    if (world.AnyStopRequested()) break;
    const std::size_t begin = std::min(queries.size(), b * batch_size);
    const std::size_t end = std::min(queries.size(), begin + batch_size);
    std::vector<std::int64_t> pending(queries.begin() + static_cast<long>(begin),
                                      queries.begin() + static_cast<long>(end));
    // One hit more than the list holds: a tie at its end shows, and is searched past.
    int k = reverse ? std::max(run.list_size, 64) : run.list_size + 1;
    while (world.SumAll({static_cast<std::int64_t>(pending.size())})[0] > 0) {
      k = static_cast<int>(std::min<std::int64_t>(k, std::max<std::int64_t>(total, 1)));
      batch.clear();
      for (const std::int64_t q : pending)
        batch.insert(batch.end(), catalog.vector(q), catalog.vector(q) + catalog.dim);
      SearchResult found;
      if (!pending.empty())
        found = run.index->Search(batch.data(), static_cast<std::int64_t>(pending.size()), k, options.nprobe);
      // Which rows are done, and the exact cosine of each of their hits (this rank's or asked).
      std::vector<std::int64_t> again;
      std::vector<std::size_t> done;
      std::vector<std::unordered_map<std::int64_t, std::size_t>> ticket(pending.size());
      scores.Clear();
      for (std::size_t q = 0; q < pending.size(); ++q) {
        const std::int64_t* ids = found.ids.data() + q * static_cast<std::size_t>(k);
        const float* hit_scores = found.scores.data() + q * static_cast<std::size_t>(k);
        // More may reach the list floor (reverse: the index's score, with room for its error), or
        // the list may end on a tie: search it again with a larger k.
        const bool more = reverse ? k < total && ids[k - 1] >= 0 && hit_scores[k - 1] >= run.list_floor - kListMargin
                                  : MayEndOnATie(hit_scores, ids, k, run.list_size, run.list_floor, total);
        if (more) {
          again.push_back(pending[q]);
          continue;
        }
        done.push_back(q);
        const float* self = batch.data() + q * static_cast<std::size_t>(catalog.dim);
        for (int j = 0; j < k && ids[j] >= 0; ++j) {
          if (!ticket[q].count(ids[j])) ticket[q].emplace(ids[j], scores.Ask(self, ids[j]));
        }
      }
      scores.Exchange();
      for (const std::size_t q : done) {
        const std::int64_t self = pending[q];
        const std::int64_t* ids = found.ids.data() + q * static_cast<std::size_t>(k);
        auto exact = [&](std::int64_t other) { return scores.Answer(ticket[q].at(other)); };
        const NeighbourList list = ListFromHits(ids, k, run.list_size, run.list_floor, exact, run.key_of);
        for (int j = 0; j < std::min(k, run.list_size); ++j) {
          if (ids[j] >= 0 && ids[j] != self) ++run.counts.neighbours_scored;
        }
        AppendCandidates(run, self, list.entries, &run.mine);
        run.found.Add(self, list);
        // Reverse hits: every image this one scores at or above the list floor with may list it.
        for (int j = 0; reverse && j < k; ++j) {
          if (ids[j] < 0) break;
          if (ids[j] == self) continue;
          const float c = exact(ids[j]);
          if (c < run.list_floor) continue;
          run.found.hit_to.push_back(ids[j]);
          run.found.hit_from.push_back(self);
          run.found.hit_score.push_back(c);
        }
      }
      pending = std::move(again);
      k *= 2;
    }
  }
  run.counts.queries += static_cast<std::int64_t>(queries.size());
  run.counts.score_bytes_sent += scores.bytes_sent();
}

// Pass 3: this rank's queries against the index. A full night: the ok images of this rank's
// shards. An incremental night: this rank's share of the fresh and requeried images.
void FindCandidates(DedupRun& run) {
  const auto search_start = Clock::now();
  const Catalog& catalog = run.catalog;
  const int rank = run.world.rank(), ranks = run.world.size();
  if (!run.incremental) {
    std::vector<std::int64_t> queries;
    for (int k = rank; k < run.embed.shard_count; k += ranks) {
      const auto& images = catalog.shards[static_cast<std::size_t>(k)].images;
      for (std::size_t row = 0; row < images.size(); ++row) {
        if (images[row].status == 0) queries.push_back(ImageId(k, static_cast<std::int64_t>(row)));
      }
    }
    Search(run, queries, false);
  } else {
    // Each rank searches the images of its own shards: their vectors are the ones it holds.
    auto share = [&](const std::vector<std::int64_t>& all) {
      std::vector<std::int64_t> out;
      for (const std::int64_t image : all) {
        if (catalog.owner(image) == rank) out.push_back(image);
      }
      return out;
    };
    Search(run, share(run.plan.fresh), true);
    Search(run, share(run.plan.requery), false);
  }
  run.search_seconds = run.world.MaxAll(Seconds(search_start));
}

// Pass 3b (with --hash-radius): candidates by perceptual hash, whatever their cosine. For each
// of its ok images, a rank finds the neighbours whose hashes differ in at most hash_radius bits
// (index/vector_index.h HashNeighbourIndex over every image's hash, which every rank holds, built
// once; in batches of queries) and keeps the hash_candidates nearest (fewest bits, then smallest image
// id): plain-background catalogs have many look-alikes within a few bits, and a copy is nearly
// always among the nearest. A pair is a candidate when either image keeps the other: each kept
// pair goes to the rank owning its smaller image (one exchange), which takes it once and asks
// the other image's rank for the cosine. Searched in full every night (no vector is needed).
void FindHashCandidates(DedupRun& run) {
  if (run.options.hash_radius < 0) return;
  const Catalog& catalog = run.catalog;
  // Every ok image's id and hash (ids only: the identities' keys would double the rows' memory).
  std::vector<std::int64_t> images;
  std::vector<std::array<std::uint8_t, 8>> codes;
  std::vector<std::size_t> mine;
  for (std::size_t k = 0; k < catalog.shards.size(); ++k) {
    const auto& rows = catalog.shards[k].images;
    for (std::size_t row = 0; row < rows.size(); ++row) {
      if (rows[row].status != 0) continue;
      const std::int64_t id = ImageId(static_cast<int>(k), static_cast<std::int64_t>(row));
      if (catalog.owner(id) == run.world.rank()) mine.push_back(images.size());
      images.push_back(id);
      codes.push_back(rows[row].phash);
    }
  }
  using Pair = std::array<std::int64_t, 2>;  // (smaller id, larger id); trivially copyable for the exchange
  std::vector<std::vector<Pair>> to_rank(static_cast<std::size_t>(run.world.size()));
  const auto keep = static_cast<std::size_t>(run.options.hash_candidates);
  const HashNeighbourIndex hashes(codes, run.options.hash_radius);
  constexpr std::size_t kQueriesPerBatch = std::size_t{1} << 16;
  for (std::size_t start = 0; start < mine.size(); start += kQueriesPerBatch) {
    const std::vector<std::size_t> queries(
        mine.begin() + static_cast<std::ptrdiff_t>(start),
        mine.begin() + static_cast<std::ptrdiff_t>(std::min(mine.size(), start + kQueriesPerBatch)));
    // Positions follow image id order: the nearest are those of fewest bits, then smallest id.
    const std::vector<HashNeighbours> found = hashes.Nearest(queries, keep);
    for (std::size_t i = 0; i < queries.size(); ++i) {
      run.counts.hash_neighbours_dropped += found[i].within_radius - static_cast<std::int64_t>(found[i].nearest.size());
      for (const auto& [bits, p] : found[i].nearest) {
        const std::int64_t x = images[queries[i]], y = images[p];
        const Pair pair{std::min(x, y), std::max(x, y)};
        to_rank[static_cast<std::size_t>(catalog.owner(pair[0]))].push_back(pair);
      }
    }
  }
  std::vector<std::vector<std::uint8_t>> out(to_rank.size());
  for (std::size_t r = 0; r < to_rank.size(); ++r) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(to_rank[r].data());
    out[r].assign(bytes, bytes + to_rank[r].size() * sizeof(Pair));
  }
  std::vector<Pair> pairs;
  for (const auto& bytes : run.world.ExchangeBytes(out)) {
    const std::size_t n = bytes.size() / sizeof(Pair);
    const std::size_t at = pairs.size();
    pairs.resize(at + n);
    if (n > 0) std::memcpy(pairs.data() + at, bytes.data(), n * sizeof(Pair));
  }
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  RemoteScores scores = catalog.Scores(run.world);
  std::vector<std::size_t> tickets;
  for (const auto& [a, b] : pairs) tickets.push_back(scores.Ask(catalog.vector(a), b));
  scores.Exchange();
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto [a, b] = pairs[i];
    run.mine.push_back(
        ScoredPair{a, b, scores.Answer(tickets[i]), HammingDistance(catalog.row(a).phash, catalog.row(b).phash)});
  }
  run.counts.hash_pairs += static_cast<std::int64_t>(pairs.size());
  run.counts.score_bytes_sent += scores.bytes_sent();
}

// Rank 0: every ok image's list. Searched lists as found; carried lists (incremental) merged with
// the reverse hits that name them, and their candidates added.
void AssembleLists(DedupRun& run) {
  FoundLists& found = run.found;
  std::unordered_map<std::int64_t, std::size_t> slot;
  for (std::size_t i = 0; i < found.owner.size(); ++i) {
    slot.emplace(found.owner[i], i);
    run.lists[found.owner[i]].truncated = found.truncated[i] != 0;
  }
  for (std::size_t e = 0; e < found.member.size(); ++e) {
    run.lists[found.entry_of[e]].entries.push_back(Neighbour{found.member[e], found.score[e]});
  }
  if (!run.incremental) return;
  std::unordered_map<std::int64_t, std::vector<Neighbour>> added;
  for (std::size_t h = 0; h < found.hit_to.size(); ++h) {
    if (run.plan.carried.count(found.hit_to[h])) {
      added[found.hit_to[h]].push_back(Neighbour{found.hit_from[h], found.hit_score[h]});
    }
  }
  for (auto& [image, list] : run.plan.carried) {
    LB_CHECK(!slot.count(image), "a carried image was also searched");
    const auto hits = added.find(image);
    NeighbourList merged =
        MergeList(std::move(list.entries), hits == added.end() ? std::vector<Neighbour>{} : hits->second,
                  list.truncated, run.list_size, run.key_of);
    for (const auto& entry : merged.entries) run.counts.neighbours_scored += entry.image != image;
    AppendCandidates(run, image, merged.entries, &run.candidates);
    run.lists[image] = std::move(merged);
  }
  run.plan.carried.clear();
}

// Pass 4: every rank's candidates and lists on rank 0, one entry per pair (both ends may have
// found it; the cosine is the same either way), in (a, b) order.
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
  run.found.GatherToRoot(run.world);
  run.mine.clear();
  if (!run.world.is_root()) return;
  auto& candidates = run.candidates;
  for (std::size_t i = 0; i < a.size(); ++i) candidates.push_back(ScoredPair{a[i], b[i], cosine[i], hamming[i]});
  AssembleLists(run);
  run.found = FoundLists{};
  std::sort(candidates.begin(), candidates.end(),
            [](const ScoredPair& x, const ScoredPair& y) { return std::tie(x.a, x.b) < std::tie(y.a, y.b); });
  candidates.erase(std::unique(candidates.begin(), candidates.end(),
                               [](const ScoredPair& x, const ScoredPair& y) { return x.a == y.a && x.b == y.b; }),
                   candidates.end());
}

// Pass 5: last night's verification of two unchanged images is reused (the aligned correlation
// depends on the two files alone); every rank aligns its share of the rest; rank 0 collects.
void VerifyPairs(DedupRun& run) {
  const auto verify_start = Clock::now();
  std::vector<std::int64_t> todo, pair_a, pair_b;
  if (run.world.is_root()) {
    run.reused.assign(run.candidates.size(), 0);
    for (std::size_t i = 0; i < run.candidates.size(); ++i) {
      ScoredPair& pair = run.candidates[i];
      if (!run.previous_aligned.empty()) {
        const auto before =
            run.previous_aligned.find(PairIdentity(run.catalog.key(pair.a), run.catalog.row(pair.a).checksum,
                                                   run.catalog.key(pair.b), run.catalog.row(pair.b).checksum));
        if (before != run.previous_aligned.end()) {
          pair.aligned = before->second.aligned;
          pair.colour_brightness = before->second.colour_brightness;
          pair.colour_hue = before->second.colour_hue;
          pair.coarse = before->second.coarse;
          pair.half_aligned = before->second.half_aligned;
          pair.verified_by = before->second.verified_by;
          run.reused[i] = 1;
          continue;
        }
      }
      todo.push_back(static_cast<std::int64_t>(i));
      pair_a.push_back(pair.a);
      pair_b.push_back(pair.b);
    }
    run.pairs_reused = static_cast<std::int64_t>(run.candidates.size() - todo.size());
    run.pairs_verified = static_cast<std::int64_t>(todo.size());
  }
  pair_a = run.world.BroadcastFromRoot(std::move(pair_a));
  pair_b = run.world.BroadcastFromRoot(std::move(pair_b));
  const Verification mine =
      VerifyCandidates(pair_a, pair_b, run.catalog, run.shard_files, run.options.verify_gates, run.world);
  const std::vector<std::int64_t> index = run.world.GatherToRoot(mine.index);
  const std::vector<float> aligned = run.world.GatherToRoot(mine.aligned);
  const std::vector<float> brightness = run.world.GatherToRoot(mine.brightness);
  const std::vector<float> hue = run.world.GatherToRoot(mine.hue);
  const std::vector<float> coarse = run.world.GatherToRoot(mine.coarse);
  const std::vector<float> half_aligned = run.world.GatherToRoot(mine.half_aligned);
  const std::vector<std::int8_t> verified_by = run.world.GatherToRoot(mine.verified_by);
  for (std::size_t i = 0; i < index.size() && run.world.is_root(); ++i) {
    ScoredPair& pair = run.candidates[static_cast<std::size_t>(todo[static_cast<std::size_t>(index[i])])];
    pair.aligned = aligned[i];
    pair.colour_brightness = brightness[i];
    pair.colour_hue = hue[i];
    pair.coarse = coarse[i];
    pair.half_aligned = half_aligned[i];
    pair.verified_by = verified_by[i];
  }
  if (run.world.is_root()) {
    for (std::size_t i = 0; i < run.candidates.size(); ++i) {
      const auto by = static_cast<VerifiedBy>(run.candidates[i].verified_by);
      ++run.verified_by[std::string(run.reused[i] ? "reused_" : "") + VerifiedByName(by)];
    }
  }
  run.counts.thumbs_read = mine.thumbs_read;
  run.verify_seconds = run.world.MaxAll(Seconds(verify_start));
}

// The reviewer decisions applied to the rule's pairs (rank 0): the published pairs, each with who
// decided it, and RUN/dedup/decisions.csv (every decision with what became of it).
// What became of the reviewer decisions: every row of decisions.csv has one status.
struct DecisionCounts {
  std::int64_t decisions = 0, overrides_rule = 0, agrees_with_rule = 0, superseded = 0, unmatched = 0, rejected = 0;
  std::int64_t& of(DecisionStatus status) {
    switch (status) {
      case DecisionStatus::kOverridesRule: return overrides_rule;
      case DecisionStatus::kAgreesWithRule: return agrees_with_rule;
      case DecisionStatus::kSuperseded: return superseded;
      case DecisionStatus::kUnmatched: return unmatched;
      case DecisionStatus::kRejected: return rejected;
    }
    ThrowInternalError(__FILE__, __LINE__, "of", "a decision status without a count");
  }
  template <typename F>
  void ForEach(F&& f) {
    f("decisions", decisions);
    for (const DecisionStatus status :
         {DecisionStatus::kOverridesRule, DecisionStatus::kAgreesWithRule, DecisionStatus::kSuperseded,
          DecisionStatus::kUnmatched, DecisionStatus::kRejected}) {
      const std::string name = std::string("decisions_") + DecisionStatusName(status);
      f(name.c_str(), of(status));
    }
  }
};

struct DecidedPairs {
  std::vector<ScoredPair> pairs;
  std::vector<std::int8_t> decided_by;
  std::string decisions_csv;
  DecisionCounts counts;
};

using ImagePair = std::pair<std::int64_t, std::int64_t>;  // image ids, the smaller first
using PairCosines = std::map<ImagePair, float>;

// Each reviewer decision's two images as ok images of this run (their ids, the smaller first),
// or why not: the key that is not an ok image here. Every rank computes the same (every rank
// read the same decisions and holds every image row).
struct ResolvedDecision {
  std::optional<ImagePair> pair;
  std::string missing;  // the image key that is not an ok image of this run
};
std::vector<ResolvedDecision> ResolveDecisions(const DedupRun& run) {
  std::vector<ResolvedDecision> out;
  if (run.decisions.decisions.empty()) return out;
  std::unordered_map<std::string, std::int64_t> id_of;
  for (const auto& image : OkImages(run.catalog)) id_of.emplace(image.key, image.image);
  for (const Decision& decision : run.decisions.decisions) {
    ResolvedDecision resolved;
    const auto a = id_of.find(decision.image_a), b = id_of.find(decision.image_b);
    if (a == id_of.end() || b == id_of.end()) {
      resolved.missing = a == id_of.end() ? decision.image_a : decision.image_b;
    } else {
      resolved.pair = ImagePair{std::min(a->second, b->second), std::max(a->second, b->second)};
    }
    out.push_back(std::move(resolved));
  }
  return out;
}

// The exact cosine of every pair of ok images the reviewer decisions name: a reviewer may call
// two images duplicates that were never candidates. Collective (every rank read the same
// decisions): the rank holding the first image's vector asks for the score; rank 0 gets them all.
PairCosines ScoreDecidedPairs(const DedupRun& run, const std::vector<ResolvedDecision>& resolved) {
  PairCosines out;
  if (resolved.empty()) return out;
  const Catalog& catalog = run.catalog;
  RemoteScores scores = catalog.Scores(run.world);
  std::vector<std::int64_t> first, second;
  std::vector<std::size_t> tickets;
  for (const ResolvedDecision& decision : resolved) {
    if (!decision.pair) continue;
    const auto [x, y] = *decision.pair;
    if (catalog.owner(x) != run.world.rank()) continue;
    first.push_back(x);
    second.push_back(y);
    tickets.push_back(scores.Ask(catalog.vector(x), y));
  }
  scores.Exchange();
  std::vector<float> cosine;
  for (const std::size_t ticket : tickets) cosine.push_back(scores.Answer(ticket));
  first = run.world.GatherToRoot(first);
  second = run.world.GatherToRoot(second);
  cosine = run.world.GatherToRoot(cosine);
  for (std::size_t i = 0; i < first.size(); ++i) out[{first[i], second[i]}] = cosine[i];
  return out;
}

// The candidate for `pair` in `candidates` (sorted by (a, b)), or nullptr.
const ScoredPair* FindCandidate(const std::vector<ScoredPair>& candidates, const ImagePair& pair) {
  const auto it = std::lower_bound(
      candidates.begin(), candidates.end(), pair,
      [](const ScoredPair& x, const ImagePair& p) { return std::tie(x.a, x.b) < std::tie(p.first, p.second); });
  return it != candidates.end() && it->a == pair.first && it->b == pair.second ? &*it : nullptr;
}

DecidedPairs ApplyDecisions(const DedupRun& run, const std::vector<ResolvedDecision>& resolved,
                            const PairCosines& decided_cosine) {
  const Catalog& catalog = run.catalog;
  const std::vector<Decision>& decisions = run.decisions.decisions;
  LB_CHECK(resolved.size() == decisions.size(), "one resolution per decision");
  // The last decision about each pair of images wins.
  std::map<ImagePair, std::size_t> last;
  std::vector<DecisionStatus> status(decisions.size(), DecisionStatus::kUnmatched);
  std::vector<std::string> note(decisions.size());
  for (std::size_t i = 0; i < decisions.size(); ++i) {
    if (!resolved[i].pair) {
      note[i] = resolved[i].missing + " is not an ok image of this run";
      continue;
    }
    const ImagePair pair = *resolved[i].pair;
    const auto previous = last.find(pair);
    if (previous != last.end()) {
      status[previous->second] = DecisionStatus::kSuperseded;
      note[previous->second] = "record " + std::to_string(decisions[i].record) + " decides these images again";
    }
    last[pair] = i;
  }
  DecidedPairs out;
  std::map<ImagePair, bool> forced;  // pair -> duplicate
  for (const auto& [pair, i] : last) {
    const ScoredPair* candidate = FindCandidate(run.candidates, pair);
    const bool rule = candidate != nullptr && IsDuplicate(run.options.rule, *candidate);
    status[i] = rule == decisions[i].duplicate ? DecisionStatus::kAgreesWithRule : DecisionStatus::kOverridesRule;
    if (status[i] == DecisionStatus::kOverridesRule) forced[pair] = decisions[i].duplicate;
  }
  for (const auto& pair : run.candidates) {
    if (!IsDuplicate(run.options.rule, pair) || forced.count({pair.a, pair.b})) continue;
    out.pairs.push_back(pair);
    out.decided_by.push_back(static_cast<std::int8_t>(DecidedBy::kRule));
  }
  for (const auto& [pair, duplicate] : forced) {
    if (!duplicate) continue;
    // A pair that was never a candidate is scored here (its exact cosine, its hashes' distance).
    const ScoredPair* candidate = FindCandidate(run.candidates, pair);
    const ScoredPair scored =
        candidate != nullptr
            ? *candidate
            : ScoredPair{pair.first, pair.second, decided_cosine.at(pair),
                         HammingDistance(catalog.row(pair.first).phash, catalog.row(pair.second).phash)};
    out.pairs.push_back(scored);
    out.decided_by.push_back(static_cast<std::int8_t>(DecidedBy::kReviewer));
  }
  std::vector<std::size_t> order(out.pairs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
    return std::tie(out.pairs[x].a, out.pairs[x].b) < std::tie(out.pairs[y].a, out.pairs[y].b);
  });
  std::vector<ScoredPair> pairs;
  std::vector<std::int8_t> decided_by;
  for (const std::size_t i : order) {
    pairs.push_back(out.pairs[i]);
    decided_by.push_back(out.decided_by[i]);
  }
  out.pairs = std::move(pairs);
  out.decided_by = std::move(decided_by);

  out.decisions_csv = "image_a,image_b,decision,who,when,status,note\n";
  for (std::size_t i = 0; i < decisions.size(); ++i) {
    const Decision& d = decisions[i];
    AppendCsvRowForPeople({d.image_a, d.image_b, d.duplicate ? "duplicate" : "not_duplicate", d.who, d.when,
                           DecisionStatusName(status[i]), note[i]},
                          &out.decisions_csv);
    ++out.counts.of(status[i]);
  }
  for (const RejectedDecision& rejected : run.decisions.rejected) {
    std::vector<std::string> fields = rejected.fields;
    fields.resize(5);
    fields.push_back(DecisionStatusName(DecisionStatus::kRejected));
    fields.push_back(rejected.reason);
    AppendCsvRowForPeople(std::vector<std::string_view>(fields.begin(), fields.end()), &out.decisions_csv);
  }
  out.counts.decisions = run.decisions.total;
  out.counts.rejected = static_cast<std::int64_t>(run.decisions.rejected.size());
  return out;
}

// Every ok image's list as dedup.h5 keeps it (rows in image id order; members as rows).
// Consumes run.lists (each list is freed once copied: at 1M images the map and the file's
// arrays would otherwise both be held on rank 0 at once).
NeighbourLists TakeListsForFile(DedupRun& run) {
  NeighbourLists out;
  out.list_size = run.list_size;
  out.list_floor = run.list_floor;
  out.image.reserve(run.lists.size());
  for (const auto& [image, list] : run.lists) out.image.push_back(image);  // ascending: a member's row by search
  auto row_of = [&](std::int64_t image) {
    const auto it = std::lower_bound(out.image.begin(), out.image.end(), image);
    LB_CHECK(it != out.image.end() && *it == image, "dedup: a list member without a list of its own");
    return static_cast<std::int64_t>(it - out.image.begin());
  };
  out.key.reserve(out.image.size());
  out.checksum.reserve(out.image.size());
  out.truncated.reserve(out.image.size());
  out.offset.reserve(out.image.size());
  while (!run.lists.empty()) {
    const auto node = run.lists.begin();
    const std::int64_t image = node->first;
    const NeighbourList& list = node->second;
    out.key.emplace_back(run.catalog.key(image));
    out.checksum.push_back(run.catalog.row(image).checksum);
    out.truncated.push_back(list.truncated ? 1 : 0);
    for (const auto& entry : list.entries) {
      out.member.push_back(row_of(entry.image));
      out.score.push_back(entry.score);
    }
    out.offset.push_back(static_cast<std::int64_t>(out.member.size()));
    run.lists.erase(node);
  }
  return out;
}

// What rank 0 published, as the manifest and the summary count it (stage/counts.h).
struct PublishedCounts {
  std::int64_t pairs = 0, pairs_same_product = 0, pairs_cross_product = 0, clusters = 0, clustered_images = 0,
               candidates = 0, pairs_verified = 0, pairs_reused = 0, lists_carried = 0;
  DecisionCounts decisions;
  template <typename F>
  void ForEach(F&& f) {
    f("pairs", pairs);
    f("pairs_same_product", pairs_same_product);
    f("pairs_cross_product", pairs_cross_product);
    f("clusters", clusters);
    f("clustered_images", clustered_images);
    f("candidates", candidates);
    f("pairs_verified", pairs_verified);
    f("pairs_reused", pairs_reused);
    f("lists_carried", lists_carried);
    decisions.ForEach(f);
  }
};

// Pass 6 (rank 0 computes, every rank publishes): the rule, the clusters and their
// representatives, the tables, dedup.h5, the manifest.
PublishedCounts ClusterAndPublish(DedupRun& run) {
  const DedupOptions& options = run.options;
  const Catalog& catalog = run.catalog;
  PublishedCounts published;
  StageManifest manifest;
  const std::filesystem::path& staging = run.stage.Staging();
  const std::vector<ResolvedDecision> resolved = ResolveDecisions(run);
  const PairCosines decided_cosine = ScoreDecidedPairs(run, resolved);
  if (run.world.is_root()) {
    const auto write_start = Clock::now();
    DedupFile out;
    out.rule = options.rule;
    out.candidate_floor = options.candidate_floor;
    out.keep = KeepPolicyName(options.keep);
    DecidedPairs decided = ApplyDecisions(run, resolved, decided_cosine);
    out.pairs = std::move(decided.pairs);
    out.pair_decided_by = std::move(decided.decided_by);
    for (const auto& pair : out.pairs) {
      out.pair_kind.push_back(catalog.product_id(pair.a) == catalog.product_id(pair.b) ? 0 : 1);
    }
    out.candidates = std::move(run.candidates);
    out.neighbours = TakeListsForFile(run);

    // Clusters: connected components of the duplicate pairs, each with its representative.
    // Catalog order and stock from the ingest shards (their rows are the embed rows): each
    // shard read once, keeping the facts of the clustered images only.
    std::vector<std::pair<std::int64_t, std::int64_t>> duplicate_pairs;
    std::map<int, std::vector<std::int64_t>> clustered;  // shard -> its clustered images
    for (const auto& pair : out.pairs) {
      duplicate_pairs.emplace_back(pair.a, pair.b);
      for (const std::int64_t id : {pair.a, pair.b}) clustered[ShardOfImageId(id)].push_back(id);
    }
    std::unordered_map<std::int64_t, KeepFacts> keep_facts;
    for (auto& [k, ids] : clustered) {
      const CatalogShard& shard = catalog.shards[static_cast<std::size_t>(k)];
      const auto rows =
          ReadIngestRows(options.run, k, shard.images.size(), [&](std::size_t i) { return shard.key(i); });
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      // The non-white share of each clustered image's thumbnail (the original policy only).
      std::vector<std::uint8_t> thumbs;
      if (options.keep == KeepPolicy::kOriginal) {
        std::vector<std::int64_t> thumb_rows;
        for (const std::int64_t id : ids) thumb_rows.push_back(RowOfImageId(id));
        thumbs = ReadAlignThumbs(run.shard_files.at(static_cast<std::size_t>(k)), thumb_rows);
      }
      for (std::size_t i = 0; i < ids.size(); ++i) {
        const std::int64_t id = ids[i];
        const auto& row = rows[static_cast<std::size_t>(RowOfImageId(id))];
        KeepFacts facts;
        try {
          facts.catalog_row = std::stoll(row[kIngestRow]);
        } catch (const std::exception&) {
          throw InputError("ingest shard " + std::to_string(k) + ": row '" + row[kIngestRow] + "' is not a number");
        }
        facts.pixels = static_cast<std::int64_t>(catalog.row(id).width) * catalog.row(id).height;
        facts.in_stock = row[kIngestInStock] == "1";
        if (!thumbs.empty()) {
          facts.content_pixels = static_cast<std::int64_t>(
              std::llround(static_cast<double>(facts.pixels) * NonWhiteShare(thumbs.data() + i * kAlignThumbBytes)));
          try {
            facts.file_bytes = std::stoll(row[kIngestSize]);
          } catch (const std::exception&) {
            throw InputError("ingest shard " + std::to_string(k) + ": size '" + row[kIngestSize] + "' is not a number");
          }
        }
        keep_facts[id] = facts;
      }
    }
    const std::vector<ClusterMember> members =
        ClusterPairs(duplicate_pairs, options.keep, [&](std::int64_t id) { return keep_facts.at(id); });
    std::int64_t clusters = 0;
    for (const auto& member : members) {
      out.cluster_image.push_back(member.image);
      out.cluster_id.push_back(member.cluster);
      out.representative.push_back(member.representative ? 1 : 0);
      clusters = std::max(clusters, member.cluster + 1);
    }

    std::string pairs_csv = "image_a,image_b,product_a,product_b,cosine,hamming,kind,decided_by\n";
    for (std::size_t i = 0; i < out.pairs.size(); ++i) {
      const auto& pair = out.pairs[i];
      AppendCsvRow({catalog.key(pair.a), catalog.key(pair.b), catalog.product_id(pair.a), catalog.product_id(pair.b),
                    Format("%.6f", pair.cosine), std::to_string(pair.hamming),
                    out.pair_kind[i] == 0 ? "same_product" : "cross_product",
                    out.pair_decided_by[i] == static_cast<std::int8_t>(DecidedBy::kReviewer) ? "reviewer" : "rule"},
                   &pairs_csv);
    }
    std::string clusters_csv = "cluster_id,image,product_id,is_representative\n";
    for (std::size_t i = 0; i < out.cluster_image.size(); ++i) {
      const std::int64_t image = out.cluster_image[i];
      AppendCsvRow({std::to_string(out.cluster_id[i]), catalog.key(image), catalog.product_id(image),
                    out.representative[i] ? "1" : "0"},
                   &clusters_csv);
    }
    PublishFile(staging / "pairs.csv", pairs_csv);
    PublishFile(staging / "clusters.csv", clusters_csv);
    WriteDedupFile(staging / "dedup.h5", out);
    PublishFile(staging / "decisions.csv", decided.decisions_csv);

    published.pairs = static_cast<std::int64_t>(out.pairs.size());
    published.pairs_same_product = std::count(out.pair_kind.begin(), out.pair_kind.end(), 0);
    published.pairs_cross_product = std::count(out.pair_kind.begin(), out.pair_kind.end(), 1);
    published.clusters = clusters;
    published.clustered_images = static_cast<std::int64_t>(out.cluster_image.size());
    published.candidates = static_cast<std::int64_t>(out.candidates.size());
    published.pairs_verified = run.pairs_verified;
    published.pairs_reused = run.pairs_reused;
    published.lists_carried = static_cast<std::int64_t>(out.neighbours.rows()) - run.counts.queries;
    published.decisions = decided.counts;
    manifest.options = Options(options);
    manifest.options_hash = OptionsHash(manifest.options);
    manifest.options["search_identity"] = run.search_identity;
    run.stage.AddOutput("pairs.csv", published.pairs);
    run.stage.AddOutput("clusters.csv", published.clustered_images);
    run.stage.AddOutput("dedup.h5", published.pairs);
    run.stage.AddOutput("decisions.csv", run.decisions.total);
    manifest.counts["queries"] = run.counts.queries;
    CountsInto(published, &manifest.counts);
    for (const auto& [name, value] : run.verified_by) manifest.counts["verified_by_" + name] = value;
    run.report.steps.push_back(StepTiming{"clusters + publish (rank 0)", Seconds(write_start), published.pairs});
  }
  run.stage.Publish(manifest);
  return BroadcastCounts(&run.world, published);
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
        "candidates", "K", [](O& o) -> int& { return o.candidates; }, 6, 1, 1024, OptionEffect::kOutput,
        "neighbours asked of the index per image (besides itself): they bound its candidates, and so "
        "the verification cost, of an image however dense the catalog");
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
    t.Add(
        OptionSpec{"verify-gates", "on|off", "on", false, false, "on | off",
                   "verification: reject pairs whose colour or coarse correlation rules out a copy before aligning "
                   "them (on), or align every candidate (off: measuring the gates, "
                   "docs/performance.md#verification-cascade)",
                   OptionEffect::kOutput},
        [](const std::vector<std::string>& values, O* out) {
          if (values.back() != "on" && values.back() != "off") throw UsageError("--verify-gates must be on or off");
          out->verify_gates = values.back() == "on";
        },
        [](const O& o) { return std::string(o.verify_gates ? "on" : "off"); });
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
    t.Integer<int>(
        "hash-radius", "BITS", [](O& o) -> int& { return o.hash_radius; }, 4, -1, 32, OptionEffect::kOutput,
        "pairs whose perceptual hashes differ in at most this many bits are candidates too, whatever their "
        "cosine (a copy the embedding moved below the floor: a border, a rotation); -1: none");
    t.Integer<int>(
        "hash-candidates", "K", [](O& o) -> int& { return o.hash_candidates; }, 4, 1, 1024, OptionEffect::kOutput,
        "of an image's neighbours within --hash-radius, the K nearest in bits are candidates (a pair: when either "
        "image keeps the other)");
    t.Real<float>(
        "candidate-floor", "C", [](O& o) -> float& { return o.candidate_floor; }, "0.9", -1, 1, OptionEffect::kOutput,
        "candidates at or above this cosine are verified and kept in dedup.h5 for threshold sweeps");
    t.Real<float>(
        "nearest-floor", "C", [](O& o) -> float& { return o.nearest_floor; }, "0.8", 0.5, 1, OptionEffect::kOutput,
        "an image's nearest neighbour of another product is a candidate at or above this cosine even below "
        "--candidate-floor (a relisted copy whose crop or frame moved its embedding is still its original's "
        "nearest); lists reach this low, so a low floor makes incremental nights search deeper; with --verify "
        "off, not used");
    t.Add(
        OptionSpec{"keep", "POLICY", "original", false, false, "first | largest | in-stock | original",
                   "each cluster's representative: the first in catalog order, the largest (pixels), the first "
                   "in-stock one, or the unedited original (most content, then the largest file; "
                   "src/dedup/clusters.h)",
                   OptionEffect::kOutput},
        [](const std::vector<std::string>& values, O* out) {
          if (!ParseKeepPolicy(values.back(), &out->keep)) {
            throw UsageError("--keep must be first, largest, in-stock or original, not '" + values.back() + "'");
          }
        },
        [](const O& o) { return std::string(KeepPolicyName(o.keep)); });
    t.Integer<int>(
        "query-batch", "N", [](O& o) -> int& { return o.query_batch; }, 4096, 1, 1 << 20, OptionEffect::kResource,
        "queries per index search call");
    t.Integer<int>(
        "threads", "N", [](O& o) -> int& { return o.threads; }, 1, 1, 256, OptionEffect::kResource,
        "FAISS (OpenMP) threads per rank");
    t.Path(
        "previous-run", "DIR", [](O& o) -> std::filesystem::path& { return o.previous_run; }, false,
        "a finished run whose neighbour lists and verified pairs are reused for images unchanged since it: only new "
        "and changed images are searched and verified, with the same result as a full run on a Flat index "
        "(docs/operations.md#nightly-runs; lookbook run passes it under a runs root)");
    t.Path(
        "decisions", "FILE", [](O& o) -> std::filesystem::path& { return o.decisions; }, false,
        "reviewer decisions (image_a,image_b,decision,who,when) applied after the rule and before clustering "
        "(docs/outputs.md#decisionscsv; lookbook run passes the runs root's decisions.csv when it exists)");
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
  PlanSearch(run);
  FindCandidates(run);
  if (run.Stopped()) return run.report;
  FindHashCandidates(run);
  GatherCandidates(run);
  if (options.rule.verify) {
    VerifyPairs(run);
    if (run.Stopped()) return run.report;
  }
  const DedupCounts totals = SumCounts(&world, run.counts);
  run.counts.queries = totals.queries;  // the manifest counts every rank's queries
  const double peak = world.MaxAll(static_cast<double>(PeakRssBytes()));
  const PublishedCounts published = ClusterAndPublish(run);

  StageReport& report = run.report;
  ReportCounts(totals, &report);
  report.counts.erase("stopped");
  ReportCounts(published, &report);
  report.counts["peak_rss_bytes_max_rank"] = static_cast<std::int64_t>(peak);
  report.counts["index_code_bytes"] = static_cast<std::int64_t>(run.index->code_bytes());
  report.facts["ranks"] = std::to_string(world.size());
  report.facts["index_factory"] =
      run.index_manifest.options.count("index_factory") ? run.index_manifest.options.at("index_factory") : "";
  report.facts["blas_core"] = BlasCoreName();
  report.facts["verify"] = options.rule.verify ? "on" : "off";
  report.facts["night"] = run.world.is_root() ? run.incremental_note : "";
  if (options.rule.verify) {
    report.steps.insert(report.steps.begin(),
                        StepTiming{"verify: cascade + align (slowest rank)", run.verify_seconds, published.candidates});
  }
  report.steps.insert(report.steps.begin(),
                      StepTiming{"search + re-rank (slowest rank)", run.search_seconds, totals.queries});
  report.steps.insert(report.steps.begin(),
                      StepTiming{"load vectors + index (slowest rank)", run.load_seconds, totals.queries});
  report.steps.push_back(StepTiming{"stage skeleton (rank 0)", run.stage.skeleton_seconds(), 0});
  report.seconds = Seconds(run.start);
  report.throughput_items = totals.queries;
  return report;
}

}  // namespace lookbook
