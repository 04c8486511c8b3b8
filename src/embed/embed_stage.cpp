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
#include <thread>
#include <tuple>

#include "catalog/csv.h"
#include "catalog/ingest.h"
#include "catalog/sharding.h"
#include "image/preprocess.h"
#include "model/segmenter.h"
#include "util/blas.h"
#include "util/error.h"
#include "util/fault.h"
#include "util/hash.h"
#include "util/parallel.h"
#include "util/publish.h"
#include "util/stop.h"

namespace lookbook {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// What the decode threads hand to the inference loop: one image, preprocessed, or nothing
// when it was rejected (its row already says why).
struct Prepared {
  std::size_t index = 0;
  std::vector<float> pixels;  // empty: rejected
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

struct IngestRun {
  int shards = 0;
  std::filesystem::path images;
  std::vector<std::int64_t> rows;  // image rows per shard, from the ingest manifest
};

IngestRun ReadIngestRun(const std::filesystem::path& run) {
  std::string why_not;
  const auto manifest = ReadManifest(run / "ingest", &why_not);
  if (!manifest)
    throw InputError("run " + run.string() + " has no ingest stage (" + why_not + "): run lookbook ingest first");
  IngestRun ingest;
  try {
    ingest.shards = std::stoi(manifest->options.at("shards"));
    ingest.images = manifest->options.at("images");
  } catch (const std::exception&) {
    throw InputError((run / "ingest" / "manifest.json").string() + " lacks its shards or images option");
  }
  ingest.rows.assign(static_cast<std::size_t>(std::max(ingest.shards, 0)), 0);
  for (const auto& output : manifest->outputs) {
    for (int k = 0; k < ingest.shards; ++k) {
      if (output.path == ShardFileName(k, ".csv")) ingest.rows[static_cast<std::size_t>(k)] = output.rows;
    }
  }
  return ingest;
}

// A double as text that tells every two values apart (options hashes).
std::string ExactText(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

std::map<std::string, std::string> ShardOptions(const EmbedOptions& options, const ModelBundle& bundle,
                                                const GarmentModel* garments) {
  std::map<std::string, std::string> out = {
      {"model_sha256", bundle.sha256},
      {"precision", PrecisionName(options.inference.precision)},
      {"device_kind", options.inference.device.kind == DeviceKind::kCpu ? "cpu" : "cuda"},
      {"embedding_dtype", options.storage == EmbeddingStorage::kFloat16 ? "float16" : "float32"},
      {"max_image_bytes", std::to_string(options.limits.max_file_bytes)},
      {"max_pixels", std::to_string(options.limits.max_pixels)},
      {"schema_version", std::to_string(kEmbedSchemaVersion)},
      {"segmenter_sha256", garments != nullptr ? garments->bundle.sha256 : ""},
  };
  if (garments != nullptr) {
    const GarmentOptions& g = options.garments;
    out["segment_images"] = options.segment_images;
    out["garment_slot_map"] = options.slot_map;
    out["garment_min_area"] = ExactText(g.min_area);
    out["garment_min_score"] = ExactText(g.min_score);
    out["garment_cleanup"] = std::to_string(g.cleanup_radius);
    out["mask_side"] = std::to_string(g.mask_side);
    out["crop_margin"] = ExactText(g.crop_margin);
    out["crop_fill"] = std::to_string(g.crop_fill);
  }
  return out;
}

std::filesystem::path RecordPath(const std::filesystem::path& stage_dir, int shard) {
  return stage_dir / ShardFileName(shard, ".json");
}

// Empty when shard `shard` is published and valid for these inputs and options.
std::string WhyRedo(const std::filesystem::path& run, const std::filesystem::path& stage_dir, int shard,
                    const std::string& options_hash, const std::string& code_version) {
  std::string why;
  const auto record = ReadManifestFile(RecordPath(stage_dir, shard), &why);
  if (!record) return why;
  if (record->options_hash != options_hash) return "model or options changed";
  if (record->code_version != code_version) return "code version changed";
  const std::filesystem::path input = run / "ingest" / ShardFileName(shard, ".csv");
  if (record->inputs.size() != 1 || !std::filesystem::exists(input) ||
      ChecksumFile(input).checksum != record->inputs[0].checksum) {
    return "ingest shard changed";
  }
  return VerifyOutputs(stage_dir, *record);
}

// Thrown by ShardEmbedder::Embed when a stop signal arrives mid-shard: nothing is written.
struct ShardAbandoned {};

struct ShardCounts {
  std::int64_t images = 0;
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
  ShardEmbedder(const EmbedOptions& options, const ModelBundle& bundle, const ImageEncoder& encoder,
                const GarmentModel* garments, const IngestRun& ingest, const MpiWorld& world)
      : options_(options), bundle_(bundle), encoder_(encoder), garments_(garments), ingest_(ingest), world_(world) {}

  ShardCounts Run(int shard, const std::string& options_hash) {
    FaultPoint("embed.shard_start");
    const auto start = Clock::now();
    const std::filesystem::path stage_dir = options_.run / "embed";
    const std::filesystem::path input = options_.run / "ingest" / ShardFileName(shard, ".csv");
    EmbedShard out;
    out.meta = EmbedShardMeta{shard,
                              ingest_.shards,
                              encoder_.dim(),
                              bundle_.name,
                              bundle_.sha256,
                              options_hash,
                              options_.code_version,
                              garments_ ? garments_->bundle.name : "",
                              garments_ ? garments_->bundle.sha256 : ""};
    ReadRows(input, &out.images);
    const std::size_t n = out.images.size();
    out.embeddings.assign(n * static_cast<std::size_t>(encoder_.dim()), 0.0f);

    ShardCounts counts;
    counts.images = static_cast<std::int64_t>(n);
    Embed(shard, &out, &counts);
    for (const auto& row : out.images) ++counts.by_status[row.status];
    std::int64_t accounted = 0;
    for (const auto count : counts.by_status) accounted += count;
    LB_CHECK(accounted == counts.images, "every image of a shard has a status");

    const std::filesystem::path output = stage_dir / ShardFileName(shard, ".h5");
    WriteEmbedShard(output, out, options_.storage);
    StageManifest record;
    record.stage = "embed-shard";
    record.code_version = options_.code_version;
    record.options = ShardOptions(options_, bundle_, garments_);
    record.options_hash = options_hash;
    record.inputs.push_back(DescribeFile(input, "ingest/" + ShardFileName(shard, ".csv"), counts.images));
    record.outputs.push_back(DescribeFile(output, ShardFileName(shard, ".h5"), counts.images));
    record.counts["images"] = counts.images;
    for (int s = 0; s < kImageStatusCount; ++s) {
      if (counts.by_status[s] > 0) record.counts[ImageStatusName(static_cast<ImageStatus>(s))] = counts.by_status[s];
    }
    if (garments_ != nullptr) {
      record.counts["images_segmented"] = counts.images_segmented;
      record.counts["images_with_garments"] = counts.images_with_garments;
      record.counts["garments"] = counts.garments;
    }
    WriteManifestFile(RecordPath(stage_dir, shard), record);
    FaultPoint("embed.shard_published");
    spdlog::info("shard {}: {} images ({} ok, {} garments) in {:.1f} s", shard, n, counts.by_status[0], counts.garments,
                 Seconds(start));
    return counts;
  }

 private:
  void ReadRows(const std::filesystem::path& input, std::vector<ImageRow>* rows) {
    columns_.clear();
    CsvReader reader = CsvReader::Open(input);
    CsvRecord record;
    if (!reader.Next(&record) || record.fields.size() != 8) {
      throw InputError(input.string() + " is not an ingest shard (" + kIngestShardHeader + ")");
    }
    while (reader.Next(&record)) {
      if (record.error != CsvError::kNone || record.fields.size() != 8) {
        throw InputError(input.string() + ": record " + std::to_string(record.index) +
                         " is damaged; rerun lookbook ingest");
      }
      ImageRow row;
      columns_.push_back(record.fields[1]);
      row.product_id = record.fields[0];
      row.key = record.fields[0] + "/" + record.fields[1];
      row.path = record.fields[2];
      row.file = record.fields[3];
      rows->push_back(std::move(row));
    }
  }

  // Whether row i goes through the segmenter (auto: every image, kept only with >= 2 slots).
  bool Selected(std::size_t i) const {
    if (garments_ == nullptr) return false;
    if (options_.segment_images == "all" || options_.segment_images == "auto") return true;
    return columns_[i] == options_.segment_images;
  }

  void Embed(int shard, EmbedShard* out, ShardCounts* counts) {
    const std::size_t n = out->images.size();
    const PreprocessSpec& spec = encoder_.preprocess();
    const std::size_t image_floats = static_cast<std::size_t>(3) * spec.size * spec.size;
    const PreprocessSpec* segment_spec = garments_ ? &garments_->segmenter.preprocess() : nullptr;
    const std::size_t segment_floats =
        segment_spec ? static_cast<std::size_t>(3) * segment_spec->size * segment_spec->size : 0;
    // The decoder may shrink JPEGs in the DCT, never below what the models read (CLIP's input,
    // and for the images the segmenter reads, its input too) nor what the hash needs.
    DecodeLimits limits = options_.limits;
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
      const std::vector<float> rows = encoder_.Encode(batch.data(), static_cast<int>(batch_rows.size()));
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
      const std::vector<float> rows = encoder_.Encode(crop_batch.data(), static_cast<int>(crop_rows.size()));
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
      std::vector<float> confidence;
      const std::vector<std::uint8_t> classes =
          garments_->segmenter.Segment(segment_input.data(), static_cast<int>(segment_batch.size()), &confidence);
      const std::size_t plane =
          static_cast<std::size_t>(segment_spec->size) * static_cast<std::size_t>(segment_spec->size);
      for (std::size_t b = 0; b < segment_batch.size(); ++b) {
        const Prepared& item = segment_batch[b];
        ++counts->images_segmented;
        GarmentSet set = ExtractGarments(classes.data() + b * plane, confidence.data() + b * plane, *segment_spec,
                                         item.decoded->width, item.decoded->height, item.source_width,
                                         item.source_height, garments_->slots, options_.garments);
        if (set.garments.empty() || (options_.segment_images == "auto" && DistinctSlots(set) < 2)) continue;
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

    // Garments and masks in image order.
    if (garments_ != nullptr) out->mask_side = options_.garments.mask_side;
    for (auto& [row, image] : found) {
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
  const MpiWorld& world_;
  std::vector<std::string> columns_;  // the catalog column of each row of the current shard
};

}  // namespace

StageReport RunEmbed(const EmbedOptions& options, const MpiWorld& world) {
  const auto start = Clock::now();
  StageReport report;
  report.stage = "embed";
  report.throughput_unit = "images";
  report.facts["run"] = options.run.string();

  // Checked identically on every rank before the first collective.
  const IngestRun ingest = ReadIngestRun(options.run);
  if (options.only_shard && (*options.only_shard < 0 || *options.only_shard >= ingest.shards)) {
    throw InputError("--shard " + std::to_string(*options.only_shard) + ": the run has shards 0.." +
                     std::to_string(ingest.shards - 1));
  }
  const ModelBundle bundle = LoadBundle(options.model);
  const ImageEncoder encoder = ImageEncoder::Load(bundle, options.inference);
  std::optional<GarmentModel> garments;
  if (!options.segmenter.empty()) {
    ModelBundle segmenter_bundle = LoadBundle(options.segmenter);
    Segmenter segmenter = Segmenter::Load(segmenter_bundle, InferenceOptions{});
    SlotMap slots = MakeSlotMap(segmenter_bundle.class_names, segmenter_bundle.class_slots, options.slot_map);
    garments.emplace(GarmentModel{std::move(segmenter_bundle), std::move(segmenter), std::move(slots)});
  }
  const GarmentModel* garment_model = garments ? &*garments : nullptr;
  const std::string options_hash = OptionsHash(ShardOptions(options, bundle, garment_model));
  const std::filesystem::path stage_dir = options.run / "embed";
  std::filesystem::create_directories(stage_dir);

  // Rank 0 decides which shards need work; every rank gets the same list.
  std::vector<std::int64_t> todo;
  std::int64_t skipped = 0;
  if (world.is_root()) {
    RemoveStaleTemporaries(stage_dir);
    std::vector<int> candidates;
    if (options.only_shard)
      candidates.push_back(*options.only_shard);
    else
      for (int k = 0; k < ingest.shards; ++k) candidates.push_back(k);
    std::vector<std::string> why(candidates.size());
    if (options.rerun == RerunPolicy::kReuseValid) {
      ParallelFor(candidates.size(), 4, [&](std::size_t i) {
        why[i] = WhyRedo(options.run, stage_dir, candidates[i], options_hash, options.code_version);
      });
    } else {
      std::fill(why.begin(), why.end(), "--force");
    }
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (why[i].empty())
        ++skipped;
      else
        todo.push_back(candidates[i]);
    }
    // Largest shards first: with dynamic handout the ranks then finish close together.
    std::stable_sort(todo.begin(), todo.end(), [&](std::int64_t a, std::int64_t b) {
      return ingest.rows[static_cast<std::size_t>(a)] > ingest.rows[static_cast<std::size_t>(b)];
    });
    spdlog::info("{} shard(s) to embed, {} already valid; model {} ({}), {} rank(s), BLAS core {}", todo.size(),
                 skipped, bundle.name, bundle.sha256.substr(0, 12), world.size(), BlasCoreName());
  }
  todo = world.BroadcastFromRoot(todo);

  // Dynamic handout: each rank takes the next shard when it is free.
  ShardEmbedder embedder(options, bundle, encoder, garment_model, ingest, world);
  WorkCounter counter = WorkCounter::Create(world);
  const auto shards_start = Clock::now();
  // shards, decode ns, inference ns, statuses, then segmented, with garments, garments, garment ns
  std::vector<std::int64_t> totals(3 + kImageStatusCount + 4, 0);
  constexpr std::size_t kGarmentTotals = 3 + kImageStatusCount;
  for (;;) {
    if (StopRequested()) break;
    const std::int64_t next = counter.Next();
    if (next >= static_cast<std::int64_t>(todo.size())) break;
    ShardCounts counts;
    try {
      counts = embedder.Run(static_cast<int>(todo[static_cast<std::size_t>(next)]), options_hash);
    } catch (const ShardAbandoned&) {
      spdlog::warn("stop requested (signal {}): shard {} abandoned, nothing of it published", StopSignal(),
                   todo[static_cast<std::size_t>(next)]);
      break;
    }
    totals[0] += 1;
    totals[1] += static_cast<std::int64_t>(counts.decode_seconds * 1e9);
    totals[2] += static_cast<std::int64_t>(counts.inference_seconds * 1e9);
    totals[kGarmentTotals] += counts.images_segmented;
    totals[kGarmentTotals + 1] += counts.images_with_garments;
    totals[kGarmentTotals + 2] += counts.garments;
    totals[kGarmentTotals + 3] += static_cast<std::int64_t>(counts.segment_seconds * 1e9);
    for (int s = 0; s < kImageStatusCount; ++s) totals[static_cast<std::size_t>(3 + s)] += counts.by_status[s];
  }
  // The pipeline's wall time without start-up (model load): the slowest rank's shard loop.
  const double shards_seconds = world.MaxAll(Seconds(shards_start));
  totals.push_back(StopRequested() ? 1 : 0);
  const std::vector<std::int64_t> sums = world.SumAll(totals);
  const bool stopped = sums.back() > 0;

  // Rank 0 publishes the stage manifest and the catalog view over every valid shard.
  if (world.is_root()) {
    StageManifest manifest;
    manifest.stage = "embed";
    manifest.code_version = options.code_version;
    manifest.options = ShardOptions(options, bundle, garment_model);
    manifest.options_hash = options_hash;
    // Later stages (zero-shot categories, query) load the same bundles from here.
    manifest.locations["model"] = std::filesystem::absolute(options.model).lexically_normal().string();
    if (garment_model != nullptr)
      manifest.locations["segmenter"] = std::filesystem::absolute(options.segmenter).lexically_normal().string();
    std::vector<std::filesystem::path> valid;
    std::map<std::string, std::int64_t> counts;
    for (int k = 0; k < ingest.shards; ++k) {
      std::string why;
      const auto record = ReadManifestFile(RecordPath(stage_dir, k), &why);
      if (!record || record->options_hash != options_hash || record->outputs.size() != 1) continue;
      manifest.inputs.push_back(record->inputs[0]);
      manifest.outputs.push_back(record->outputs[0]);
      for (const auto& [key, value] : record->counts) counts[key] += value;
      valid.push_back(stage_dir / record->outputs[0].path);
    }
    if (static_cast<int>(valid.size()) == ingest.shards) {
      WriteCatalogView(stage_dir / "catalog.h5", valid);
      manifest.outputs.push_back(DescribeFile(stage_dir / "catalog.h5", "catalog.h5", counts["images"]));
    } else {
      spdlog::warn("catalog.h5 not written: {} of {} shards are valid", valid.size(), ingest.shards);
    }
    counts["shards_valid"] = static_cast<std::int64_t>(valid.size());
    counts["shards"] = ingest.shards;
    manifest.counts = counts;
    WriteManifest(stage_dir, manifest);
  }

  const std::int64_t images = [&] {
    std::int64_t total = 0;
    for (int s = 0; s < kImageStatusCount; ++s) total += sums[static_cast<std::size_t>(3 + s)];
    return total;
  }();
  report.counts["shards"] = ingest.shards;
  report.counts["shards_embedded"] = sums[0];
  report.counts["shards_skipped"] = skipped;
  report.counts["images_in"] = images;
  report.counts["images_ok"] = sums[3];
  report.counts["images_rejected"] = images - sums[3];
  for (int s = 1; s < kImageStatusCount; ++s) {
    if (sums[static_cast<std::size_t>(3 + s)] > 0) {
      report.counts[std::string("rejected_") + ImageStatusName(static_cast<ImageStatus>(s))] =
          sums[static_cast<std::size_t>(3 + s)];
    }
  }
  report.steps.push_back(StepTiming{"shards (wall)", shards_seconds, images});
  report.steps.push_back(StepTiming{"decode (thread-seconds)", static_cast<double>(sums[1]) * 1e-9, images});
  report.steps.push_back(StepTiming{"inference (rank-seconds)", static_cast<double>(sums[2]) * 1e-9, sums[3]});
  if (garment_model != nullptr) {
    report.counts["images_segmented"] = sums[kGarmentTotals];
    report.counts["images_with_garments"] = sums[kGarmentTotals + 1];
    report.counts["garments"] = sums[kGarmentTotals + 2];
    report.steps.push_back(StepTiming{"garments (rank-seconds)", static_cast<double>(sums[kGarmentTotals + 3]) * 1e-9,
                                      sums[kGarmentTotals]});
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
  if (skipped > 0 && sums[0] == 0) report.status = "skipped";
  if (stopped) report.status = "stopped";
  report.seconds = Seconds(start);
  report.throughput_items = images;
  return report;
}

}  // namespace lookbook
