#include "embed/embed_stage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <tuple>

#include "catalog/csv.h"
#include "catalog/ingest.h"
#include "catalog/sharding.h"
#include "embed/shard_key.h"
#include "image/align.h"
#include "image/preprocess.h"
#include "model/segmenter.h"
#include "stage/counts.h"
#include "stage/stage.h"
#include "util/blas.h"
#include "util/error.h"
#include "util/fault.h"
#include "util/hash.h"
#include "util/parallel.h"
#include "util/publish.h"
#include "util/run_path.h"
#include "util/stop.h"

namespace lookbook {

static_assert(AlignView::kSide == kAlignThumbSide, "embed shards store the align view's thumbnail");
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// What the decode threads hand to the inference loop: one image, preprocessed, or nothing
// when it was rejected (its row already says why).
struct Prepared {
  std::size_t index = 0;
  bool reused = false;        // copied from a previous run: nothing to infer
  std::vector<float> pixels;  // empty: rejected or reused
  // Images selected for segmentation: the segmenter's input, and the decoded pixels the
  // garment crops are cut from.
  std::vector<float> segment_pixels;
  std::shared_ptr<const RgbImage> decoded;
  int source_width = 0, source_height = 0;  // upright
};

// The segmenter side of the stage, when the run has one.
struct GarmentModel {
  ModelBundle bundle;
  Segmenter segmenter;
  SlotMap slots;
};

// One image's garments while its shard is in flight.
struct ImageGarments {
  GarmentSet set;
  std::vector<float> embeddings;  // garments x d
  // Copied from a previous run's shard instead of found again: its rows and mask as stored.
  std::vector<GarmentRow> copied_rows;
  std::vector<std::uint8_t> copied_mask;
};

// A bounded queue between the decode threads and the inference loop. Close() wakes
// everybody: on an error nobody waits forever.
class PreparedQueue {
 public:
  explicit PreparedQueue(std::size_t capacity) : capacity_(capacity) {}
  bool Push(Prepared item) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }
  std::optional<Prepared> Pop() {
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    Prepared item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Prepared> items_;
  bool closed_ = false;
};

// What embed needs of the published ingest stage.
struct IngestRun {
  int shards = 0;
  std::filesystem::path images;
  std::vector<std::int64_t> rows;  // image rows per shard, from the ingest manifest
};

IngestRun ReadIngestRun(Stage& stage) {
  const StageManifest& manifest = stage.Upstream("ingest");
  IngestRun ingest;
  try {
    ingest.shards = std::stoi(manifest.options.at("shards"));
    ingest.images = manifest.options.at("images");
  } catch (const std::exception&) {
    throw InputError((stage.run() / "ingest" / "manifest.json").string() +
                     " lacks its shards or images option: rerun lookbook ingest");
  }
  if (ingest.shards <= 0) throw InputError("the ingest stage has no shards: rerun lookbook ingest");
  ingest.rows.assign(static_cast<std::size_t>(ingest.shards), 0);
  for (const auto& output : manifest.outputs) {
    for (int k = 0; k < ingest.shards; ++k) {
      if (output.path == ShardFileName(k, ".csv")) ingest.rows[static_cast<std::size_t>(k)] = output.rows;
    }
  }
  return ingest;
}

// The ingest rows of a shard: "rows:" + xxh3 of what embed takes from them (key, reference,
// file), the input identity the embed manifest records for RUN/ingest/shard-K.csv.
std::string RowsChecksum(const std::vector<ImageRow>& rows) {
  std::vector<std::string> keys, references, files;
  for (const auto& row : rows) {
    keys.push_back(row.key);
    references.push_back(row.path);
    files.push_back(row.file);
  }
  return IngestRowsChecksum(keys, references, files);
}

// Where a shard's output for a key already is, verified: the published stage, or the work
// folder where shards wait between `embed --shard K` and the publication.
struct ShardResult {
  int shard = -1;
  std::string key;
  std::string rows_checksum;
  std::filesystem::path file;  // the verified .h5
  ManifestEntry entry;         // path "shard-K.h5", size, checksum, rows, key
  std::map<std::string, std::int64_t> counts;
  bool reused = false;
};

std::filesystem::path WorkDir(const std::filesystem::path& run) { return run / ".work" / "embed"; }

std::optional<ShardResult> FindResult(const std::filesystem::path& run, const std::filesystem::path& previous,
                                      int shard, const std::string& key) {
  const std::string name = ShardFileName(shard, ".h5");
  auto verified = [&](const std::filesystem::path& folder, const ManifestEntry& entry) -> std::optional<ShardResult> {
    if (entry.key != key) return std::nullopt;
    std::string why;
    const auto path = VerifyEntry(folder, entry, &why);
    if (!path) return std::nullopt;
    ShardResult result;
    result.shard = shard;
    result.key = key;
    result.file = *path;
    result.entry = entry;
    result.entry.path = name;
    result.reused = true;
    return result;
  };
  std::string why;
  if (const auto record = ReadManifestFile(WorkDir(run) / ShardFileName(shard, ".json"), &why)) {
    if (record->outputs.size() == 1) {
      if (auto found = verified(WorkDir(run), record->outputs[0])) {
        found->counts = record->counts;
        return found;
      }
    }
  }
  // This run's published stage, then the previous run's (nightly reuse: a hard link, no copy).
  for (const std::filesystem::path& folder : {run, previous}) {
    if (folder.empty()) continue;
    if (const auto published = ReadManifest(folder / "embed", &why)) {
      for (const auto& entry : published->outputs) {
        if (entry.path != name) continue;
        if (auto found = verified(folder / "embed", entry)) {
          // Per-shard counts of a published shard are in its record, published beside it.
          if (const auto record = ReadManifestFile(folder / "embed" / ShardFileName(shard, ".json"), &why)) {
            found->counts = record->counts;
          }
          return found;
        }
      }
    }
  }
  return std::nullopt;
}

// A shard result as text, for the gather to rank 0.
std::string ResultToJson(const ShardResult& result) {
  nlohmann::json out{
      {"shard", result.shard},        {"key", result.key},         {"rows_checksum", result.rows_checksum},
      {"file", result.file.string()}, {"size", result.entry.size}, {"checksum", result.entry.checksum},
      {"rows", result.entry.rows},    {"counts", result.counts},   {"reused", result.reused}};
  return out.dump();
}

ShardResult ResultFromJson(const std::string& text) {
  const auto in = nlohmann::json::parse(text);
  ShardResult result;
  result.shard = in.at("shard").get<int>();
  result.key = in.at("key").get<std::string>();
  result.rows_checksum = in.at("rows_checksum").get<std::string>();
  result.file = in.at("file").get<std::string>();
  result.entry = ManifestEntry{ShardFileName(result.shard, ".h5"), in.at("size").get<std::uint64_t>(),
                               in.at("checksum").get<std::string>(), in.at("rows").get<std::int64_t>(), result.key};
  result.counts = in.at("counts").get<std::map<std::string, std::int64_t>>();
  result.reused = in.at("reused").get<bool>();
  return result;
}

// Shard K of a previous run, for nightly reuse: what its ingest saw of each image (file, size,
// modification time) and its embed shard's rows, both checked against that run's manifests.
struct PreviousShard {
  struct Seen {
    std::string file, size, mtime;
  };
  std::unordered_map<std::string, Seen> ingest;             // image key -> what ingest saw
  std::unordered_map<std::string, std::size_t> row;         // image key -> row in `embed`
  std::unordered_map<std::string, std::size_t> by_content;  // "xxh3:..." -> an ok row with it
  EmbedShard embed;
  std::string column_of(std::size_t r) const {
    const std::string& key = embed.images[r].key;
    return key.substr(key.find('/') + 1);
  }
};

// Shard `shard` of `previous` when that run's embed stage ran with this `identity` and both
// files pass their manifests' checksums; nullopt otherwise (nothing is reused from it).
std::optional<PreviousShard> ReadPreviousShard(const std::filesystem::path& previous, int shard,
                                               const std::string& identity) {
  std::string why;
  const auto embed = ReadManifest(previous / "embed", &why);
  if (!embed || embed->options_hash != identity) return std::nullopt;
  const auto ingest = ReadManifest(previous / "ingest", &why);
  if (!ingest) return std::nullopt;
  const auto h5 = VerifiedOutput(previous / "embed", *embed, ShardFileName(shard, ".h5"), &why);
  const auto csv = VerifiedOutput(previous / "ingest", *ingest, ShardFileName(shard, ".csv"), &why);
  if (!h5 || !csv) return std::nullopt;
  PreviousShard out;
  try {
    for (const auto& fields : ReadCsvFile(*csv, kIngestShardHeader)) {
      out.ingest[fields[0] + "/" + fields[1]] = PreviousShard::Seen{fields[3], fields[8], fields[9]};
    }
    out.embed = ReadEmbedShard(*h5);
  } catch (const InputError& error) {
    spdlog::warn("previous run {}: shard {} is not reused: {}", previous.string(), shard, error.what());
    return std::nullopt;
  }
  for (std::size_t r = 0; r < out.embed.images.size(); ++r) {
    const ImageRow& image = out.embed.images[r];
    out.row[image.key] = r;
    if (image.status == 0) out.by_content.emplace(FormatChecksum(image.checksum), r);
  }
  return out;
}

// Hard-links `from` as `to` (the same bytes, no copy); copies where links are refused.
void LinkOrCopy(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::error_code error;
  std::filesystem::create_hard_link(from, to, error);
  if (!error) return;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, error);
  if (error) throw InputError("cannot copy " + from.string() + " to " + to.string() + ": " + error.message());
}

// Thrown by ShardEmbedder::Embed when a stop signal arrives mid-shard: nothing is written.
struct ShardAbandoned {};

struct ShardCounts {
  bool reused = false;  // an output for the shard's key already existed
  std::int64_t images = 0;
  std::int64_t images_read = 0;     // files read to find their content (checksum)
  std::int64_t images_trusted = 0;  // content trusted from the previous run (same file, size, date)
  std::int64_t images_decoded = 0;  // decoded and embedded
  std::int64_t images_copied = 0;   // embedding copied from the previous run (same content)
  std::int64_t by_status[kImageStatusCount] = {};
  double decode_seconds = 0;  // summed over decode threads
  double inference_seconds = 0;
  std::int64_t images_segmented = 0;
  std::int64_t images_with_garments = 0;
  std::int64_t garments = 0;
  double segment_seconds = 0;  // segmenter, post-processing and garment crops' encoding
};

class ShardEmbedder {
 public:
  const DecodeBudget& decode_budget() const { return decode_budget_; }
  ShardEmbedder(const EmbedOptions& options, const ModelBundle& bundle, const ImageEncoder& encoder,
                const GarmentModel* garments, const IngestRun& ingest, const std::string& identity)
      : options_(options),
        bundle_(bundle),
        encoder_(encoder),
        garments_(garments),
        ingest_(ingest),
        identity_(identity) {}

  // Shard `shard` from its verified ingest rows: reused when an output for its key is already
  // published or waiting in the work folder, else embedded into the work folder.
  ShardResult Run(int shard, const std::string& ingest_bytes, ShardCounts* counts) {
    FaultPoint("embed.shard_start");
    const auto start = Clock::now();
    EmbedShard out;
    ParseRows(shard, ingest_bytes, &out.images);
    const std::size_t n = out.images.size();
    const std::string rows_checksum = RowsChecksum(out.images);
    counts->images = static_cast<std::int64_t>(n);
    // A previous run (nightly): what it saw and computed of this shard's images.
    std::optional<PreviousShard> previous;
    if (!options_.previous_run.empty()) previous = ReadPreviousShard(options_.previous_run, shard, identity_);
    std::vector<std::string> contents = ReadContents(out.images, previous ? &*previous : nullptr, counts);
    if (options_.rerun == RerunPolicy::kReuseValid) {
      const std::string key = EmbedShardKey(identity_, out.images, contents);
      if (auto found = FindResult(options_.run, options_.previous_run, shard, key)) {
        found->rows_checksum = rows_checksum;
        counts->reused = true;
        return *found;
      }
    }
    // Images whose content the previous run already embedded are copied, not decoded again.
    std::vector<std::int64_t> reuse(n, -1);
    if (previous && options_.rerun == RerunPolicy::kReuseValid) {
      for (std::size_t i = 0; i < n; ++i) {
        const auto it = previous->by_content.find(contents[i]);
        if (it == previous->by_content.end()) continue;
        if (Selected(i) != SelectedColumn(previous->column_of(it->second))) continue;  // garments differ
        reuse[i] = static_cast<std::int64_t>(it->second);
      }
    }
    out.meta = EmbedShardMeta{shard,
                              ingest_.shards,
                              encoder_.dim(),
                              bundle_.name,
                              bundle_.sha256,
                              identity_,
                              options_.code_version,
                              garments_ ? garments_->bundle.name : "",
                              garments_ ? garments_->bundle.sha256 : ""};
    out.embeddings.assign(n * static_cast<std::size_t>(encoder_.dim()), 0.0f);
    out.align_thumbs.assign(n * kAlignThumbBytes, 0);
    Embed(shard, &out, counts, reuse, previous ? &*previous : nullptr);
    contents.clear();
    for (const auto& row : out.images) {
      ++counts->by_status[row.status];
      // What was decoded decides the key: an image that changed since it was first read is keyed
      // by the bytes actually embedded.
      contents.push_back(row.checksum != 0 || row.status == 0 ? FormatChecksum(row.checksum)
                                                              : ImageContent(static_cast<ImageStatus>(row.status), 0));
    }
    std::int64_t accounted = 0;
    for (const auto count : counts->by_status) accounted += count;
    LB_CHECK(accounted == counts->images, "every image of a shard has a status");

    ShardResult result;
    result.shard = shard;
    result.key = EmbedShardKey(identity_, out.images, contents);
    result.rows_checksum = rows_checksum;
    const std::filesystem::path work = WorkDir(options_.run);
    result.file = work / ShardFileName(shard, ".h5");
    WriteEmbedShard(result.file, out, options_.storage);
    result.entry = DescribeFile(result.file, ShardFileName(shard, ".h5"), counts->images);
    result.entry.key = result.key;
    StageManifest record;
    record.stage = "embed-shard";
    record.code_version = options_.code_version;
    record.key = result.key;
    record.outputs.push_back(result.entry);
    record.counts["images"] = counts->images;
    for (int s = 0; s < kImageStatusCount; ++s) {
      if (counts->by_status[s] > 0) record.counts[ImageStatusName(static_cast<ImageStatus>(s))] = counts->by_status[s];
    }
    if (garments_ != nullptr) {
      record.counts["images_segmented"] = counts->images_segmented;
      record.counts["images_with_garments"] = counts->images_with_garments;
      record.counts["garments"] = counts->garments;
    }
    result.counts = record.counts;
    WriteManifestFile(work / ShardFileName(shard, ".json"), record);
    FaultPoint("embed.shard_published");
    spdlog::info("shard {}: {} images ({} ok, {} garments) in {:.1f} s", shard, n, counts->by_status[0],
                 counts->garments, Seconds(start));
    return result;
  }

 private:
  void ParseRows(int shard, const std::string& bytes, std::vector<ImageRow>* rows) {
    columns_.clear();
    sizes_.clear();
    mtimes_.clear();
    const std::string name = "ingest/" + ShardFileName(shard, ".csv");
    CsvReader reader = CsvReader::FromString(bytes);
    CsvRecord record;
    if (!reader.Next(&record) || record.fields.size() != kIngestShardColumns) {
      throw InputError(name + " is not an ingest shard (" + kIngestShardHeader + "): rerun lookbook ingest");
    }
    while (reader.Next(&record)) {
      if (record.error != CsvError::kNone || record.fields.size() != kIngestShardColumns) {
        throw InputError(name + ": record " + std::to_string(record.index) + " is damaged; rerun lookbook ingest");
      }
      ImageRow row;
      columns_.push_back(record.fields[1]);
      sizes_.push_back(record.fields[8]);
      mtimes_.push_back(record.fields[9]);
      row.product_id = record.fields[0];
      row.key = record.fields[0] + "/" + record.fields[1];
      row.path = record.fields[2];
      row.file = record.fields[3];
      rows->push_back(std::move(row));
    }
  }

  // The content part of every image's key, read with the decode threads (no decoding). An image
  // whose file, size and modification time are what the previous run's ingest saw is trusted to
  // hold the content that run's embed recorded, without reading it (--rehash reads every one).
  std::vector<std::string> ReadContents(const std::vector<ImageRow>& rows, const PreviousShard* previous,
                                        ShardCounts* counts) const {
    std::vector<std::string> contents(rows.size());
    std::vector<char> trusted(rows.size(), 0);
    if (previous != nullptr && !options_.rehash) {
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto seen = previous->ingest.find(rows[i].key);
        const auto row = previous->row.find(rows[i].key);
        if (seen == previous->ingest.end() || row == previous->row.end()) continue;
        if (seen->second.file != rows[i].file || seen->second.size != sizes_[i] || seen->second.mtime != mtimes_[i]) {
          continue;
        }
        const ImageRow& before = previous->embed.images[row->second];
        if (before.file != rows[i].file) continue;
        contents[i] = before.status == 0 ? FormatChecksum(before.checksum)
                                         : ImageContent(static_cast<ImageStatus>(before.status), 0);
        trusted[i] = 1;
      }
    }
    ParallelFor(rows.size(), std::max(1, options_.decode_threads), [&](std::size_t i) {
      if (trusted[i]) return;
      std::string bytes;
      const ImageStatus status = ReadImageFile(ingest_.images / rows[i].file, options_.limits.max_file_bytes, &bytes);
      contents[i] = ImageContent(status, status == ImageStatus::kOk ? Xxh3(bytes) : 0);
    });
    for (const char t : trusted) counts->images_trusted += t;
    counts->images_read += static_cast<std::int64_t>(rows.size()) - std::count(trusted.begin(), trusted.end(), 1);
    return contents;
  }

  // Whether row i goes through the segmenter (auto: every image, kept only with >= 2 slots).
  bool Selected(std::size_t i) const { return SelectedColumn(columns_[i]); }
  bool SelectedColumn(const std::string& column) const {
    if (garments_ == nullptr) return false;
    if (options_.segment_images == "all" || options_.segment_images == "auto") return true;
    return column == options_.segment_images;
  }

  void Embed(int shard, EmbedShard* out, ShardCounts* counts, const std::vector<std::int64_t>& reuse,
             const PreviousShard* previous) {
    const std::size_t n = out->images.size();
    const PreprocessSpec& spec = encoder_.preprocess();
    const std::size_t image_floats = static_cast<std::size_t>(3) * spec.size * spec.size;
    const PreprocessSpec* segment_spec = garments_ ? &garments_->segmenter.preprocess() : nullptr;
    const std::size_t segment_floats =
        segment_spec ? static_cast<std::size_t>(3) * segment_spec->size * segment_spec->size : 0;
    // The decoder may shrink JPEGs in the DCT, never below what the models read (CLIP's input,
    // and for the images the segmenter reads, its input too) nor what the hash needs.
    DecodeLimits limits = options_.limits;
    limits.budget = &decode_budget_;
    limits.min_side = std::max(spec.size, kPerceptualHashMinSide);
    DecodeLimits segment_limits = limits;
    segment_limits.min_side = std::max(spec.size, segment_spec ? segment_spec->size : 0);

    PreparedQueue queue(static_cast<std::size_t>(options_.batch_size) * 2);
    std::atomic<std::size_t> next{0};
    std::mutex error_mutex;
    std::exception_ptr worker_error;
    std::atomic<std::int64_t> decode_nanos{0};
    auto decode = [&] {
      try {
        std::string bytes;
        for (;;) {
          const std::size_t i = next.fetch_add(1);
          if (i >= n) return;
          if (StopRequested()) {  // the shard is abandoned: Embed throws ShardAbandoned
            queue.Close();
            return;
          }
          const auto begin = Clock::now();
          ImageRow& row = out->images[i];
          Prepared prepared;
          prepared.index = i;
          if (reuse[i] >= 0) {  // the previous run embedded these very bytes: copy what it computed
            const ImageRow& before = previous->embed.images[static_cast<std::size_t>(reuse[i])];
            row.status = before.status;
            row.reason = before.reason;
            row.phash = before.phash;
            row.checksum = before.checksum;
            row.width = before.width;
            row.height = before.height;
            row.content_box = before.content_box;
            row.colour = before.colour;
            std::copy_n(previous->embed.align_thumbs.begin() + static_cast<long>(reuse[i] * kAlignThumbBytes),
                        kAlignThumbBytes, out->align_thumbs.begin() + static_cast<long>(i * kAlignThumbBytes));
            prepared.reused = true;
            if (!queue.Push(std::move(prepared))) return;
            continue;
          }
          ImageStatus status = ReadImageFile(ingest_.images / row.file, limits.max_file_bytes, &bytes);
          std::string detail;
          if (status == ImageStatus::kOk) {
            row.checksum = Xxh3(bytes);
            DecodeResult decoded = DecodeImage(bytes, Selected(i) ? segment_limits : limits);
            status = decoded.status;
            detail = std::move(decoded.detail);
            row.width = decoded.source_width;
            row.height = decoded.source_height;
            if (status == ImageStatus::kOk) {
              row.phash = ComputePerceptualHash(decoded.image);
              // What dedup verifies with, from the bytes embed read, never the file again. A JPEG
              // is decoded a second time in the DCT at 1/8 to 1/2 scale (a fraction of the first
              // decode's cost): the alignment's thresholds were chosen on views from such a
              // decode, and a view shrunk from the model's larger decode scores some copies lower
              // (two 15% borders of the demo: 0.971 against 0.975; docs/decisions.md).
              std::vector<std::uint8_t> thumb;
              if (SniffFormat(bytes) == ImageFormat::kJpeg) {
                DecodeLimits small = limits;
                small.min_side = kAlignMinSide;
                const DecodeResult view = DecodeImage(bytes, small);
                if (view.status == ImageStatus::kOk) thumb = MakeAlignThumb(view.image);
              }
              if (thumb.empty()) thumb = MakeAlignThumb(decoded.image);
              const ThumbStats stats = DescribeThumb(thumb.data());
              row.content_box = stats.box;
              row.colour = stats.colour;
              std::copy(thumb.begin(), thumb.end(),
                        out->align_thumbs.begin() + static_cast<long>(i * kAlignThumbBytes));
              prepared.pixels.resize(image_floats);
              Preprocess(decoded.image, spec, prepared.pixels.data());
              if (Selected(i)) {
                prepared.segment_pixels.resize(segment_floats);
                Preprocess(decoded.image, *segment_spec, prepared.segment_pixels.data());
                std::tie(prepared.source_width, prepared.source_height) = UprightSourceSize(decoded);
                prepared.decoded = std::make_shared<const RgbImage>(std::move(decoded.image));
              }
            }
          }
          row.status = static_cast<std::int8_t>(status);
          if (status != ImageStatus::kOk)
            row.reason = std::string(ImageStatusName(status)) + (detail.empty() ? "" : ": " + detail);
          decode_nanos += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - begin).count();
          if (!queue.Push(std::move(prepared))) return;
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!worker_error) worker_error = std::current_exception();
        queue.Close();
      }
    };
    std::vector<std::thread> workers;
    for (int t = 0; t < std::max(1, options_.decode_threads); ++t) workers.emplace_back(decode);
    struct Joiner {
      PreparedQueue& queue;
      std::vector<std::thread>& workers;
      ~Joiner() {
        queue.Close();
        for (auto& worker : workers) worker.join();
      }
    } joiner{queue, workers};

    // Inference on this thread, one fixed-size batch at a time, while the workers decode.
    const auto start = Clock::now();
    auto last_progress = start;
    const auto d = static_cast<std::size_t>(encoder_.dim());
    std::vector<float> batch;
    std::vector<std::size_t> batch_rows;
    batch.reserve(image_floats * static_cast<std::size_t>(options_.batch_size));
    std::size_t received = 0;
    double inference_seconds = 0;
    auto run_batch = [&] {
      if (batch_rows.empty()) return;
      FaultPoint("embed.batch");
      const auto begin = Clock::now();
      // Always a full batch (zeros after the last image): LibTorch picks its kernels by batch
      // size, so a partial batch gives embeddings that differ in the last bits (measured: 8e-8),
      // and an image's embedding must not depend on how many images came with it (a nightly run
      // that embeds 3 new images gives the bytes a full run gives). Costs at most one batch per
      // shard.
      batch.resize(image_floats * static_cast<std::size_t>(options_.batch_size), 0.0f);
      const std::vector<float> rows = encoder_.Encode(batch.data(), options_.batch_size);
      inference_seconds += Seconds(begin);
      for (std::size_t k = 0; k < batch_rows.size(); ++k) {
        std::copy(rows.begin() + static_cast<long>(k * d), rows.begin() + static_cast<long>((k + 1) * d),
                  out->embeddings.begin() + static_cast<long>(batch_rows[k] * d));
      }
      batch.clear();
      batch_rows.clear();
    };

    // Garments: segmenter batches; each kept garment's crop joins a CLIP batch of crops.
    std::map<std::size_t, ImageGarments> found;  // by image row: deterministic output order
    std::vector<Prepared> segment_batch;
    std::vector<float> segment_input, crop_batch;
    std::vector<std::pair<std::size_t, std::size_t>> crop_rows;  // (image row, garment)
    double segment_seconds = 0;
    auto run_crops = [&] {
      if (crop_rows.empty()) return;
      const auto begin = Clock::now();
      crop_batch.resize(image_floats * static_cast<std::size_t>(options_.batch_size), 0.0f);  // a full batch
      const std::vector<float> rows = encoder_.Encode(crop_batch.data(), options_.batch_size);
      for (std::size_t k = 0; k < crop_rows.size(); ++k) {
        auto& target = found.at(crop_rows[k].first).embeddings;
        std::copy(rows.begin() + static_cast<long>(k * d), rows.begin() + static_cast<long>((k + 1) * d),
                  target.begin() + static_cast<long>(crop_rows[k].second * d));
      }
      crop_batch.clear();
      crop_rows.clear();
      segment_seconds += Seconds(begin);
    };
    auto run_segments = [&] {
      if (segment_batch.empty()) return;
      auto begin = Clock::now();
      segment_input.clear();
      for (const auto& item : segment_batch)
        segment_input.insert(segment_input.end(), item.segment_pixels.begin(), item.segment_pixels.end());
      // Always a full batch, like the CLIP batches above.
      segment_input.resize(
          segment_input.size() / segment_batch.size() * static_cast<std::size_t>(options_.segment_batch_size), 0.0f);
      std::vector<float> confidence;
      const std::vector<std::uint8_t> classes =
          garments_->segmenter.Segment(segment_input.data(), options_.segment_batch_size, &confidence);
      const std::size_t plane =
          static_cast<std::size_t>(segment_spec->size) * static_cast<std::size_t>(segment_spec->size);
      for (std::size_t b = 0; b < segment_batch.size(); ++b) {
        const Prepared& item = segment_batch[b];
        ++counts->images_segmented;
        GarmentSet set = ExtractGarments(classes.data() + b * plane, confidence.data() + b * plane, *segment_spec,
                                         item.decoded->width, item.decoded->height, item.source_width,
                                         item.source_height, garments_->slots, options_.garments);
        const std::int64_t image_pixels =
            static_cast<std::int64_t>(item.source_width) * static_cast<std::int64_t>(item.source_height);
        if (set.garments.empty() ||
            (options_.segment_images == "auto" && !IsOutfitPhoto(set, image_pixels, options_.garments)))
          continue;
        ImageGarments& image = found[item.index];
        image.embeddings.assign(set.garments.size() * d, 0.0f);
        image.set = std::move(set);
        // Crops join fixed-size CLIP batches, like the images.
        for (std::size_t k = 0; k < image.set.garments.size(); ++k) {
          const RgbImage crop = MakeGarmentCrop(*item.decoded, image.set, k, options_.garments);
          crop_batch.resize(crop_batch.size() + image_floats);
          Preprocess(crop, spec, crop_batch.data() + crop_batch.size() - image_floats);
          crop_rows.emplace_back(item.index, k);
          if (static_cast<int>(crop_rows.size()) == options_.batch_size) {
            segment_seconds += Seconds(begin);
            run_crops();
            begin = Clock::now();
          }
        }
      }
      segment_batch.clear();
      segment_seconds += Seconds(begin);
    };

    while (received < n) {
      std::optional<Prepared> item = queue.Pop();
      if (!item) break;  // a worker failed
      ++received;
      if (item->reused) continue;
      ++counts->images_decoded;
      if (!item->pixels.empty()) {
        batch.insert(batch.end(), item->pixels.begin(), item->pixels.end());
        batch_rows.push_back(item->index);
        if (static_cast<int>(batch_rows.size()) == options_.batch_size) run_batch();
      }
      if (item->decoded) {
        item->pixels.clear();
        item->pixels.shrink_to_fit();
        segment_batch.push_back(std::move(*item));
        if (static_cast<int>(segment_batch.size()) == options_.segment_batch_size) run_segments();
      }
      if (Seconds(last_progress) >= options_.progress_seconds) {
        last_progress = Clock::now();
        const double rate = static_cast<double>(received) / std::max(Seconds(start), 1e-9);
        spdlog::info("shard {}: {}/{} images, {:.1f} images/s, ETA {:.0f} s", shard, received, n, rate,
                     static_cast<double>(n - received) / std::max(rate, 1e-9));
      }
    }
    run_batch();
    if (garments_ != nullptr) {
      run_segments();
      run_crops();
    }
    {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (worker_error) std::rethrow_exception(worker_error);
    }
    if (received < n && StopRequested()) throw ShardAbandoned();
    LB_CHECK(received == n, "the decode pipeline lost images");

    // Rows copied from the previous run: their embedding, and their garments and mask (the
    // reuse list only pairs rows the segmenter selects the same way then and now).
    for (std::size_t i = 0; i < n; ++i) {
      if (reuse[i] < 0) continue;
      const auto from = static_cast<std::size_t>(reuse[i]);
      ++counts->images_copied;
      std::copy(previous->embed.embeddings.begin() + static_cast<long>(from * d),
                previous->embed.embeddings.begin() + static_cast<long>((from + 1) * d),
                out->embeddings.begin() + static_cast<long>(i * d));
      if (!Selected(i)) continue;
      ++counts->images_segmented;
      ImageGarments copied;
      for (std::size_t g = 0; g < previous->embed.garments.size(); ++g) {
        if (previous->embed.garments[g].image_index != static_cast<std::int64_t>(from)) continue;
        GarmentRow garment = previous->embed.garments[g];
        garment.image_index = static_cast<std::int64_t>(i);
        copied.copied_rows.push_back(garment);
        copied.embeddings.insert(copied.embeddings.end(),
                                 previous->embed.garment_embeddings.begin() + static_cast<long>(g * d),
                                 previous->embed.garment_embeddings.begin() + static_cast<long>((g + 1) * d));
      }
      const auto side = static_cast<std::size_t>(previous->embed.mask_side);
      for (std::size_t m = 0; m < previous->embed.mask_image_index.size(); ++m) {
        if (previous->embed.mask_image_index[m] != static_cast<std::int64_t>(from)) continue;
        copied.copied_mask.assign(previous->embed.masks.begin() + static_cast<long>(m * side * side),
                                  previous->embed.masks.begin() + static_cast<long>((m + 1) * side * side));
      }
      if (!copied.copied_rows.empty()) found[i] = std::move(copied);
    }

    // Garments and masks in image order.
    if (garments_ != nullptr) out->mask_side = options_.garments.mask_side;
    for (auto& [row, image] : found) {
      if (!image.copied_rows.empty()) {
        out->garments.insert(out->garments.end(), image.copied_rows.begin(), image.copied_rows.end());
        out->garment_embeddings.insert(out->garment_embeddings.end(), image.embeddings.begin(), image.embeddings.end());
        out->mask_image_index.push_back(static_cast<std::int64_t>(row));
        out->masks.insert(out->masks.end(), image.copied_mask.begin(), image.copied_mask.end());
        continue;
      }
      for (std::size_t k = 0; k < image.set.garments.size(); ++k) {
        const Garment& g = image.set.garments[k];
        out->garments.push_back(GarmentRow{static_cast<std::int64_t>(row), SlotName(g.slot), g.box, g.area, g.score});
      }
      out->garment_embeddings.insert(out->garment_embeddings.end(), image.embeddings.begin(), image.embeddings.end());
      out->mask_image_index.push_back(static_cast<std::int64_t>(row));
      out->masks.insert(out->masks.end(), image.set.mask.begin(), image.set.mask.end());
    }
    if (garments_ != nullptr && options_.segment_images != "all" && options_.segment_images != "auto" &&
        counts->images_segmented == 0) {
      spdlog::warn("shard {}: no ok image in column '{}' to segment", shard, options_.segment_images);
    }
    counts->images_with_garments = static_cast<std::int64_t>(found.size());
    counts->garments = static_cast<std::int64_t>(out->garments.size());
    counts->decode_seconds = static_cast<double>(decode_nanos.load()) * 1e-9;
    counts->inference_seconds = inference_seconds;
    counts->segment_seconds = segment_seconds;
  }

  const EmbedOptions& options_;
  const ModelBundle& bundle_;
  const ImageEncoder& encoder_;
  const GarmentModel* garments_;
  const IngestRun& ingest_;
  std::string identity_;
  DecodeBudget decode_budget_{options_.decode_memory};  // shared by this rank's decode threads
  std::vector<std::string> columns_;                    // the catalog column of each row of the current shard
  std::vector<std::string> sizes_, mtimes_;             // what ingest saw of each row's file
};

}  // namespace

namespace {

// The stage's counts, summed over ranks (stage/counts.h).
struct EmbedTotals {
  std::int64_t shards_embedded = 0, shards_reused = 0, images = 0;
  std::int64_t by_status[kImageStatusCount] = {};
  std::int64_t images_segmented = 0, images_with_garments = 0, garments = 0;
  std::int64_t images_read = 0, images_trusted = 0, images_decoded = 0, images_copied = 0;
  std::int64_t decode_ns = 0, inference_ns = 0, segment_ns = 0, stopped = 0;
  template <typename F>
  void ForEach(F&& f) {
    f("shards_embedded", shards_embedded);
    f("shards_reused", shards_reused);
    f("images", images);
    for (int s = 0; s < kImageStatusCount; ++s) f(ImageStatusName(static_cast<ImageStatus>(s)), by_status[s]);
    f("images_segmented", images_segmented);
    f("images_with_garments", images_with_garments);
    f("garments", garments);
    f("images_read", images_read);
    f("images_trusted", images_trusted);
    f("images_decoded", images_decoded);
    f("images_copied", images_copied);
    f("decode_ns", decode_ns);
    f("inference_ns", inference_ns);
    f("segment_ns", segment_ns);
    f("stopped", stopped);
  }
  void Add(const ShardCounts& counts, const ShardResult& result) {
    images_read += counts.images_read;
    images_trusted += counts.images_trusted;
    images_decoded += counts.images_decoded;
    images_copied += counts.images_copied;
    if (counts.reused) {
      ++shards_reused;
      // A reused shard's image counts are in its record.
      const auto count = [&](const char* name) {
        const auto it = result.counts.find(name);
        return it == result.counts.end() ? std::int64_t{0} : it->second;
      };
      images += count("images");
      for (int s = 0; s < kImageStatusCount; ++s) by_status[s] += count(ImageStatusName(static_cast<ImageStatus>(s)));
      images_segmented += count("images_segmented");
      images_with_garments += count("images_with_garments");
      garments += count("garments");
      return;
    }
    ++shards_embedded;
    images += counts.images;
    for (int s = 0; s < kImageStatusCount; ++s) by_status[s] += counts.by_status[s];
    images_segmented += counts.images_segmented;
    images_with_garments += counts.images_with_garments;
    garments += counts.garments;
    decode_ns += static_cast<std::int64_t>(counts.decode_seconds * 1e9);
    inference_ns += static_cast<std::int64_t>(counts.inference_seconds * 1e9);
    segment_ns += static_cast<std::int64_t>(counts.segment_seconds * 1e9);
  }
};

// Pass 1 (every rank): shards handed out dynamically, largest first; each is reused or embedded.
std::vector<ShardResult> RunShards(const EmbedOptions& options, const IngestRun& ingest, ShardEmbedder& embedder,
                                   Stage& stage, const MpiWorld& world, EmbedTotals* totals) {
  std::vector<std::int64_t> todo;
  if (world.is_root()) {
    if (options.only_shard) {
      todo.push_back(*options.only_shard);
    } else {
      for (int k = 0; k < ingest.shards; ++k) todo.push_back(k);
    }
    std::stable_sort(todo.begin(), todo.end(), [&](std::int64_t a, std::int64_t b) {
      return ingest.rows[static_cast<std::size_t>(a)] > ingest.rows[static_cast<std::size_t>(b)];
    });
  }
  todo = world.BroadcastFromRoot(todo);
  std::vector<ShardResult> mine;
  WorkCounter counter = WorkCounter::Create(world);
  for (;;) {
    if (StopRequested()) break;
    const std::int64_t next = counter.Next();
    if (next >= static_cast<std::int64_t>(todo.size())) break;
    const int shard = static_cast<int>(todo[static_cast<std::size_t>(next)]);
    // The ingest shard is checked against the ingest manifest before a byte of it is parsed.
    const std::string rows = stage.ReadVerified("ingest", ShardFileName(shard, ".csv"), /*record_input=*/false);
    ShardCounts counts;
    try {
      mine.push_back(embedder.Run(shard, rows, &counts));
    } catch (const ShardAbandoned&) {
      spdlog::warn("stop requested (signal {}): shard {} abandoned, nothing of it kept", StopSignal(), shard);
      break;
    }
    totals->Add(counts, mine.back());
  }
  totals->stopped = StopRequested() ? 1 : 0;
  return mine;
}

// Pass 2: every rank's results on rank 0, in shard order.
std::vector<ShardResult> GatherResults(const std::vector<ShardResult>& mine, const MpiWorld& world) {
  std::string text;
  for (const auto& result : mine) text += ResultToJson(result) + "\n";
  const std::vector<std::uint8_t> all = world.GatherBytesToRoot(std::vector<std::uint8_t>(text.begin(), text.end()));
  std::vector<ShardResult> results;
  std::string line;
  for (const std::uint8_t byte : all) {
    if (byte != '\n') {
      line += static_cast<char>(byte);
      continue;
    }
    results.push_back(ResultFromJson(line));
    line.clear();
  }
  std::sort(results.begin(), results.end(),
            [](const ShardResult& a, const ShardResult& b) { return a.shard < b.shard; });
  return results;
}

// Pass 3 (collective): the whole stage, from every shard's output, published in one rename:
// shard files hard-linked into the staging folder, their records, catalog.h5, the manifest.
// Returns false when the published stage already is exactly this.
bool PublishStage(const EmbedOptions& options, const IngestRun& ingest, const std::vector<ShardResult>& results,
                  int dim, const std::map<std::string, std::string>& identity_options, const std::string& identity,
                  const ModelBundle& bundle, const GarmentModel* garments, const EmbedTotals& totals, Stage& stage) {
  if (stage.is_root()) {
    LB_CHECK(static_cast<int>(results.size()) == ingest.shards, "every shard has an output before publication");
    stage.Key().Add("identity", identity);
    for (const auto& result : results) {
      stage.Key().Add("shard " + std::to_string(result.shard), result.key);
      stage.AddInput(ManifestEntry{"ingest/" + ShardFileName(result.shard, ".csv"), 0, result.rows_checksum,
                                   result.entry.rows, ""});
    }
  }
  std::string why;
  if (options.rerun == RerunPolicy::kReuseValid && stage.Fresh(&why)) return false;
  const std::filesystem::path& staging = stage.Staging();
  StageManifest manifest;
  if (stage.is_root()) {
    std::vector<std::filesystem::path> files;
    for (const auto& result : results) {
      const std::filesystem::path target = staging / ShardFileName(result.shard, ".h5");
      LinkOrCopy(result.file, target);
      stage.AddOutputEntry(result.entry);
      StageManifest record;
      record.stage = "embed-shard";
      record.code_version = options.code_version;
      record.key = result.key;
      record.outputs.push_back(result.entry);
      record.counts = result.counts;
      WriteManifestFile(staging / ShardFileName(result.shard, ".json"), record);
      stage.AddOutput(ShardFileName(result.shard, ".json"), -1);
      files.push_back(target);
    }
    WriteCatalogView(staging / "catalog.h5", files);
    stage.AddOutput("catalog.h5", totals.images);
    manifest.options = identity_options;
    manifest.options_hash = identity;
    stage.AddSource(ManifestEntry{std::filesystem::absolute(options.model).lexically_normal().string(), 0,
                                  "sha256:" + bundle.sha256, -1, ""});
    if (garments != nullptr) {
      stage.AddSource(ManifestEntry{std::filesystem::absolute(options.segmenter).lexically_normal().string(), 0,
                                    "sha256:" + garments->bundle.sha256, -1, ""});
    }
    for (const auto& result : results) {
      for (const auto& [name, value] : result.counts) manifest.counts[name] += value;
    }
    manifest.counts["shards"] = ingest.shards;
    manifest.counts["embedding_dim"] = dim;
  }
  stage.Publish(manifest);
  if (stage.is_root()) {
    std::error_code error;
    for (const auto& result : results) {
      std::filesystem::remove(WorkDir(options.run) / ShardFileName(result.shard, ".h5"), error);
      std::filesystem::remove(WorkDir(options.run) / ShardFileName(result.shard, ".json"), error);
    }
  }
  return true;
}

}  // namespace

const OptionTable<EmbedOptions>& EmbedOptionTable() {
  static const OptionTable<EmbedOptions> table = [] {
    using O = EmbedOptions;
    OptionTable<O> t;
    t.Path(
        "run", "DIR", [](O& o) -> std::filesystem::path& { return o.run; }, true,
        "the run folder (reads DIR/ingest, writes DIR/embed)");
    t.Path(
        "model", "BUNDLE", [](O& o) -> std::filesystem::path& { return o.model; }, true,
        "CLIP model bundle folder (bundle.json; models/README.md); its sha256 is in the key");
    t.Add(
        OptionSpec{"shard", "K", "", false, false, "0..shards-1",
                   "this embed shard only (no MPI launcher needed); "
                   "kept in RUN/.work/embed for the next plain embed to publish",
                   OptionEffect::kControl},
        [](const std::vector<std::string>& values, O* out) {
          out->only_shard = static_cast<int>(ParseIntegerOption("shard", values.back(), 0, 65535));
        },
        [](const O& o) { return o.only_shard ? std::to_string(*o.only_shard) : std::string(); });
    t.Add(
        OptionSpec{"device", "DEV", "cpu", false, false, "cpu | cuda | cuda:N",
                   "where the models run (cuda under MPI: local rank mod GPUs per node)", OptionEffect::kOutput},
        [](const std::vector<std::string>& values, O* out) {
          if (!ParseDevice(values.back(), &out->inference.device)) {
            throw UsageError("--device must be cpu, cuda or cuda:N, not '" + values.back() + "'");
          }
          out->device = values.back();
        },
        // The kind of device changes floats; which GPU of a node does not.
        [](const O& o) { return std::string(o.inference.device.kind == DeviceKind::kCpu ? "cpu" : "cuda"); });
    t.Integer<int>(
        "threads", "N", [](O& o) -> int& { return o.threads; }, 1, 1, 256, OptionEffect::kResource,
        "LibTorch intra-op threads per rank (OpenBLAS gets as many)");
    t.Integer<int>(
        "decode-threads", "N", [](O& o) -> int& { return o.decode_threads; }, 2, 1, 256, OptionEffect::kResource,
        "image decode threads per rank");
    t.Integer<int>(
        "batch-size", "N", [](O& o) -> int& { return o.batch_size; }, 32, 1, 4096, OptionEffect::kResource,
        "images per inference batch");
    t.Add(
        OptionSpec{"precision", "P", "fp32", false, false, "fp32 | bf16 | fp16",
                   "fp32; bf16 (CPU with oneDNN, CUDA); fp16 (CUDA)", OptionEffect::kOutput},
        [](const std::vector<std::string>& values, O* out) {
          if (!ParsePrecision(values.back(), &out->inference.precision)) {
            throw UsageError("--precision must be fp32, bf16 or fp16, not '" + values.back() + "'");
          }
        },
        [](const O& o) { return std::string(PrecisionName(o.inference.precision)); });
    t.Integer<std::uint64_t>(
        "decode-memory", "BYTES", [](O& o) -> std::uint64_t& { return o.decode_memory; }, 1ull << 30, 1ull << 24,
        1ull << 44, OptionEffect::kResource,
        "memory the decode threads of a rank may hold at once: a large image waits for others to finish (one "
        "larger than this decodes alone)");
    t.Real<double>(
        "max-reject-rate", "R", [](O& o) -> double& { return o.max_reject_rate; }, "0.5", 0, 1, OptionEffect::kControl,
        "fail the stage, publishing nothing, when more than this share of the images is rejected (a wrong image "
        "root, a broken mount)");
    t.Add(
         OptionSpec{"segmenter-precision", "P", "fp32", false, false, "fp32 | bf16 | fp16",
                    "the segmenter's precision on --device (fp16: CUDA only)", OptionEffect::kOutput},
         [](const std::vector<std::string>& values, O* out) {
           if (!ParsePrecision(values.back(), &out->segmenter_precision)) {
             throw UsageError("--segmenter-precision must be fp32, bf16 or fp16, not '" + values.back() + "'");
           }
         },
         [](const O& o) { return std::string(PrecisionName(o.segmenter_precision)); })
        .OnlyWith("segmenter");
    t.Add(
        OptionSpec{"embedding-dtype", "T", "float32", false, false, "float32 | float16", "embeddings on disk",
                   OptionEffect::kOutput},
        [](const std::vector<std::string>& values, O* out) {
          if (values.back() == "float16")
            out->storage = EmbeddingStorage::kFloat16;
          else if (values.back() == "float32")
            out->storage = EmbeddingStorage::kFloat32;
          else
            throw UsageError("--embedding-dtype must be float32 or float16, not '" + values.back() + "'");
        },
        [](const O& o) { return std::string(o.storage == EmbeddingStorage::kFloat16 ? "float16" : "float32"); });
    t.Integer<std::uint64_t>(
        "max-image-bytes", "BYTES", [](O& o) -> std::uint64_t& { return o.limits.max_file_bytes; }, 64ull << 20, 1,
        1ull << 40, OptionEffect::kOutput, "larger files are rejected (file_too_large)");
    t.Integer<std::uint64_t>(
        "max-pixels", "N", [](O& o) -> std::uint64_t& { return o.limits.max_pixels; }, 100'000'000, 1, 1ull << 36,
        OptionEffect::kOutput, "images with more pixels (read from the header) are rejected (too_many_pixels)");
    t.Real<double>(
        "progress-seconds", "S", [](O& o) -> double& { return o.progress_seconds; }, "10", 0.1, 86400,
        OptionEffect::kResource, "seconds between progress lines");
    t.Path(
        "segmenter", "BUNDLE", [](O& o) -> std::filesystem::path& { return o.segmenter; }, false,
        "segmenter bundle: find, store and embed garments (its sha256 is in the key); without it no image is "
        "segmented");
    t.Text(
         "segment-images", "WHICH", [](O& o) -> std::string& { return o.segment_images; }, "auto",
         OptionEffect::kOutput,
         "which images the segmenter reads: all; auto (every image, kept where it is an outfit photo: two garment "
         "slots, see --outfit-min-area); or a catalog image column (image_3, IMAGE_VERSION_2)")
        .OnlyWith("segmenter");
    t.Text(
         "garment-slots", "MAP", [](O& o) -> std::string& { return o.slot_map; }, "", OptionEffect::kOutput,
         "class=slot,... overrides of the bundle's class-to-slot map (slot none drops a class)")
        .OnlyWith("segmenter");
    t.Real<double>(
         "garment-min-area", "F", [](O& o) -> double& { return o.garments.min_area; }, "0.005", 0, 0.999999,
         OptionEffect::kOutput, "smallest garment, as a fraction of the image")
        .OnlyWith("segmenter");
    t.Real<double>(
         "garment-min-score", "P", [](O& o) -> double& { return o.garments.min_score; }, "0.7", 0, 1,
         OptionEffect::kOutput, "smallest mean segmenter confidence over a garment's mask")
        .OnlyWith("segmenter");
    t.Integer<int>(
         "garment-cleanup", "R", [](O& o) -> int& { return o.garments.cleanup_radius; }, 1, 0, 16,
         OptionEffect::kOutput,
         "radius (segmenter pixels) of the opening per slot that removes specks and slivers (0: off)")
        .OnlyWith("segmenter");
    t.Integer<int>(
         "mask-side", "M", [](O& o) -> int& { return o.garments.mask_side; }, 128, 8, 1024, OptionEffect::kOutput,
         "stored label maps are M x M per image")
        .OnlyWith("segmenter");
    t.Real<double>(
         "crop-margin", "F", [](O& o) -> double& { return o.garments.crop_margin; }, "0.08", 0, 1,
         OptionEffect::kOutput, "garment crops grow by this fraction of their long side")
        .OnlyWith("segmenter");
    t.Real<double>(
         "outfit-min-area", "F", [](O& o) -> double& { return o.garments.outfit_min_area; }, "0.03", 0, 1,
         OptionEffect::kOutput,
         "--segment-images auto: an outfit photo has garments of at least this fraction of the image in two slots")
        .OnlyWith("segmenter");
    t.Real<double>(
         "outfit-min-score", "P", [](O& o) -> double& { return o.garments.outfit_min_score; }, "0.9", 0, 1,
         OptionEffect::kOutput, "--segment-images auto: and of at least this mean confidence")
        .OnlyWith("segmenter");
    t.Add(
         OptionSpec{"crop-fill", "G", "245", false, false, "0..255", "grey level outside a garment's mask in its crop",
                    OptionEffect::kOutput},
         [](const std::vector<std::string>& values, O* out) {
           out->garments.crop_fill = static_cast<std::uint8_t>(ParseIntegerOption("crop-fill", values.back(), 0, 255));
         },
         [](const O& o) { return std::to_string(o.garments.crop_fill); })
        .OnlyWith("segmenter");
    t.Integer<int>(
         "segment-batch-size", "N", [](O& o) -> int& { return o.segment_batch_size; }, 1, 1, 1024,
         OptionEffect::kResource,
         "images per segmenter batch, padded to full size (1 on a CPU, where a batch gains nothing and an "
         "incremental night's few photos a shard would pad a larger one; 8-32 on a GPU)")
        .OnlyWith("segmenter");
    t.Add(
        OptionSpec{"force", "", "", false, false, "", "redo every shard even when an output for its key exists",
                   OptionEffect::kControl},
        [](const std::vector<std::string>& values, O* out) {
          out->rerun = values.back() == "1" ? RerunPolicy::kForce : RerunPolicy::kReuseValid;
        },
        [](const O&) { return std::string(); });
    t.Path(
        "previous-run", "DIR", [](O& o) -> std::filesystem::path& { return o.previous_run; }, false,
        "a finished run to reuse from: a shard whose key matches is linked, an image whose content it embedded "
        "is copied, not decoded (lookbook run passes the newest finished run under a runs root)");
    t.Flag(
        "rehash", [](O& o) -> bool& { return o.rehash; }, OptionEffect::kControl,
        "read every image's bytes for its checksum, instead of trusting a file whose path, size and "
        "modification time match the previous run's");
    return t;
  }();
  return table;
}

namespace {

// On a GPU, one full batch of each model before any shard starts: a device that lacks the
// memory for --batch-size (or --segment-batch-size) fails here, with what to change, not in the
// middle of the night.
void WarmUp(const EmbedOptions& options, const ImageEncoder& encoder, const GarmentModel* garments) {
  if (options.inference.device.kind == DeviceKind::kCpu) return;
  try {
    const int size = encoder.preprocess().size;
    encoder.Encode(std::vector<float>(static_cast<std::size_t>(options.batch_size) * 3 * size * size, 0.0f).data(),
                   options.batch_size);
    if (garments != nullptr) {
      const int side = garments->segmenter.preprocess().size;
      std::vector<float> confidence;
      garments->segmenter.Segment(
          std::vector<float>(static_cast<std::size_t>(options.segment_batch_size) * 3 * side * side, 0.0f).data(),
          options.segment_batch_size, &confidence);
    }
  } catch (const InputError& error) {
    throw InputError(
        "--device " + options.device + ": a batch of " + std::to_string(options.batch_size) +
        " images (segmenter: " + std::to_string(options.segment_batch_size) +
        ") does not run there; lower --batch-size / --segment-batch-size or use another device: " + error.what());
  }
}

// The segmenter, its bundle and slot map, when --segmenter names one.
std::optional<GarmentModel> LoadGarmentModel(const EmbedOptions& options) {
  if (options.segmenter.empty()) return std::nullopt;
  ModelBundle segmenter_bundle = LoadBundle(options.segmenter);
  Segmenter segmenter =
      Segmenter::Load(segmenter_bundle, InferenceOptions{options.inference.device, options.segmenter_precision});
  SlotMap slots = MakeSlotMap(segmenter_bundle.class_names, segmenter_bundle.class_slots, options.slot_map);
  return GarmentModel{std::move(segmenter_bundle), std::move(segmenter), std::move(slots)};
}

// A night where most images cannot be read (a wrong image root, a broken mount) is not a
// catalog's normal noise: throws InputError (nothing is published) naming the reasons that
// dominate when more than --max-reject-rate of the images were rejected.
void CheckRejectRate(const EmbedOptions& options, const EmbedTotals& totals) {
  const std::int64_t rejected_images = totals.images - totals.by_status[0];
  if (totals.images > 0 &&
      static_cast<double>(rejected_images) > options.max_reject_rate * static_cast<double>(totals.images)) {
    std::vector<std::pair<std::int64_t, std::string>> reasons;
    for (int s = 1; s < kImageStatusCount; ++s) {
      if (totals.by_status[s] > 0)
        reasons.emplace_back(totals.by_status[s], ImageStatusName(static_cast<ImageStatus>(s)));
    }
    std::sort(reasons.rbegin(), reasons.rend());
    std::string top;
    for (std::size_t i = 0; i < reasons.size() && i < 3; ++i) {
      top += (i ? ", " : "") + reasons[i].second + " " + std::to_string(reasons[i].first);
    }
    throw InputError(std::to_string(rejected_images) + " of " + std::to_string(totals.images) +
                     " images were rejected (" + top + "), more than --max-reject-rate " +
                     ExactReal(options.max_reject_rate) +
                     ": nothing is published; check the image root (lookbook ingest --images) and the rejects");
  }
}

}  // namespace

StageReport RunEmbed(const EmbedOptions& options, const MpiWorld& world) {
  const auto start = Clock::now();
  StageReport report;
  report.stage = "embed";
  report.throughput_unit = "images";
  report.facts["run"] = options.run.string();

  // Checked identically on every rank before the first collective.
  Stage stage(&world, options.run, "embed", options.code_version);
  const IngestRun ingest = ReadIngestRun(stage);
  if (options.only_shard && (*options.only_shard < 0 || *options.only_shard >= ingest.shards)) {
    throw InputError("--shard " + std::to_string(*options.only_shard) + ": the run has shards 0.." +
                     std::to_string(ingest.shards - 1));
  }
  const ModelBundle bundle = LoadBundle(options.model);
  const ImageEncoder encoder = ImageEncoder::Load(bundle, options.inference);
  const std::optional<GarmentModel> garments = LoadGarmentModel(options);
  const GarmentModel* garment_model = garments ? &*garments : nullptr;
  WarmUp(options, encoder, garment_model);
  const std::map<std::string, std::string> identity_options =
      EmbedIdentityOptions(options, bundle.sha256, garment_model != nullptr ? garment_model->bundle.sha256 : "");
  const std::string identity = OptionsHash(identity_options);
  if (world.is_root()) {
    std::error_code error;
    std::filesystem::create_directories(WorkDir(options.run), error);
    if (error) throw InputError("cannot create " + WorkDir(options.run).string() + ": " + error.message());
    spdlog::info("{} shard(s); model {} ({}), {} rank(s), BLAS core {}", options.only_shard ? 1 : ingest.shards,
                 bundle.name, bundle.sha256.substr(0, 12), world.size(), BlasCoreName());
  }
  world.Barrier();

  ShardEmbedder embedder(options, bundle, encoder, garment_model, ingest, identity);
  EmbedTotals mine;
  const auto shards_start = Clock::now();
  const std::vector<ShardResult> my_results = RunShards(options, ingest, embedder, stage, world, &mine);
  const double shards_seconds = world.MaxAll(Seconds(shards_start));  // the slowest rank's shard loop
  const EmbedTotals totals = SumCounts(&world, mine);
  const std::vector<ShardResult> results = GatherResults(my_results, world);
  const bool stopped = totals.stopped > 0;
  const double decode_peak = world.MaxAll(static_cast<double>(embedder.decode_budget().peak()));
  const std::int64_t decode_waits = world.SumAll({embedder.decode_budget().waited()})[0];

  if (!stopped && !options.only_shard) CheckRejectRate(options, totals);
  bool published = false;
  if (!stopped && !options.only_shard) {
    published = PublishStage(options, ingest, results, encoder.dim(), identity_options, identity, bundle, garment_model,
                             totals, stage);
  }
  world.Barrier();  // the stage is published before any rank goes on (index reads it)

  const std::int64_t images = totals.images;
  report.counts["shards"] = options.only_shard ? 1 : ingest.shards;
  report.counts["shards_embedded"] = totals.shards_embedded;
  report.counts["shards_skipped"] = totals.shards_reused;
  report.counts["images_in"] = images;
  report.counts["decode_memory_peak_bytes_max_rank"] = static_cast<std::int64_t>(decode_peak);
  report.counts["decode_waits"] = decode_waits;
  report.counts["images_ok"] = totals.by_status[0];
  report.counts["images_rejected"] = images - totals.by_status[0];
  // What the night cost: files read for their checksum (the rest trusted from the previous
  // run's size and date), images decoded and embedded, embeddings copied from the previous run.
  report.counts["images_read"] = totals.images_read;
  report.counts["images_trusted"] = totals.images_trusted;
  report.counts["images_decoded"] = totals.images_decoded;
  report.counts["images_copied"] = totals.images_copied;
  for (int s = 1; s < kImageStatusCount; ++s) {
    if (totals.by_status[s] > 0) {
      report.counts[std::string("rejected_") + ImageStatusName(static_cast<ImageStatus>(s))] = totals.by_status[s];
    }
  }
  report.steps.push_back(StepTiming{"shards (wall)", shards_seconds, images});
  report.steps.push_back(StepTiming{"decode (thread-seconds)", static_cast<double>(totals.decode_ns) * 1e-9, images});
  report.steps.push_back(
      StepTiming{"inference (rank-seconds)", static_cast<double>(totals.inference_ns) * 1e-9, totals.by_status[0]});
  if (garment_model != nullptr) {
    report.counts["images_segmented"] = totals.images_segmented;
    report.counts["images_with_garments"] = totals.images_with_garments;
    report.counts["garments"] = totals.garments;
    report.steps.push_back(
        StepTiming{"garments (rank-seconds)", static_cast<double>(totals.segment_ns) * 1e-9, totals.images_segmented});
    report.facts["segmenter"] = garment_model->bundle.name;
    report.facts["segment_images"] = options.segment_images;
  }
  report.facts["ranks"] = std::to_string(world.size());
  report.facts["device"] = DeviceName(options.inference.device);
  report.facts["precision"] = PrecisionName(options.inference.precision);
  report.facts["decode_threads"] = std::to_string(options.decode_threads);
  report.facts["batch_size"] = std::to_string(options.batch_size);
  report.facts["blas_core"] = BlasCoreName();
  report.facts["blas_threads"] = std::to_string(BlasThreads());
  report.facts["model"] = bundle.name;
  report.facts["published"] = published ? "yes" : (options.only_shard ? "no (--shard: kept for the next embed)" : "no");
  if (totals.shards_embedded == 0 && !published) report.status = "skipped";
  if (stopped) report.status = "stopped";
  report.steps.push_back(StepTiming{"stage skeleton (rank 0)", stage.skeleton_seconds(), 0});
  report.seconds = Seconds(start);
  report.throughput_items = images;
  return report;
}

}  // namespace lookbook
