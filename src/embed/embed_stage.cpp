#include "embed/embed_stage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <spdlog/spdlog.h>
#include <thread>

#include "catalog/csv.h"
#include "catalog/ingest.h"
#include "catalog/sharding.h"
#include "image/preprocess.h"
#include "util/blas.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/parallel.h"
#include "util/publish.h"

namespace lookbook {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// What the decode threads hand to the inference loop: one image, preprocessed, or nothing
// when it was rejected (its row already says why).
struct Prepared {
  std::size_t index = 0;
  std::vector<float> pixels;  // empty: rejected
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
  if (!manifest) throw InputError("run " + run.string() + " has no ingest stage (" + why_not + "): run lookbook ingest first");
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

// Reads one image file: the bytes, or why not.
ImageStatus ReadImageFile(const std::filesystem::path& path, std::uint64_t max_bytes, std::string* bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? ImageStatus::kMissing : ImageStatus::kUnreadable;
  struct stat info {};
  ImageStatus status = ImageStatus::kOk;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    status = ImageStatus::kUnreadable;
  } else if (static_cast<std::uint64_t>(info.st_size) > max_bytes) {
    status = ImageStatus::kFileTooLarge;
  } else {
    bytes->resize(static_cast<std::size_t>(info.st_size));
    std::size_t done = 0;
    while (done < bytes->size()) {
      const ssize_t n = ::read(fd, bytes->data() + done, bytes->size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    if (done != bytes->size()) status = ImageStatus::kUnreadable;  // shrank or failed while reading
  }
  ::close(fd);
  return status;
}

std::map<std::string, std::string> ShardOptions(const EmbedOptions& options, const ModelBundle& bundle) {
  return {
      {"model_sha256", bundle.sha256},
      {"precision", PrecisionName(options.inference.precision)},
      {"device_kind", options.inference.device.kind == DeviceKind::kCpu ? "cpu" : "cuda"},
      {"embedding_dtype", options.storage == EmbeddingStorage::kFloat16 ? "float16" : "float32"},
      {"max_image_bytes", std::to_string(options.limits.max_file_bytes)},
      {"max_pixels", std::to_string(options.limits.max_pixels)},
      {"schema_version", std::to_string(kEmbedSchemaVersion)},
  };
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

struct ShardCounts {
  std::int64_t images = 0;
  std::int64_t by_status[kImageStatusCount] = {};
  double decode_seconds = 0;    // summed over decode threads
  double inference_seconds = 0;
};

class ShardEmbedder {
 public:
  ShardEmbedder(const EmbedOptions& options, const ModelBundle& bundle, const ImageEncoder& encoder,
                const IngestRun& ingest, const MpiWorld& world)
      : options_(options), bundle_(bundle), encoder_(encoder), ingest_(ingest), world_(world) {}

  ShardCounts Run(int shard, const std::string& options_hash) {
    const auto start = Clock::now();
    const std::filesystem::path stage_dir = options_.run / "embed";
    const std::filesystem::path input = options_.run / "ingest" / ShardFileName(shard, ".csv");
    EmbedShard out;
    out.meta = EmbedShardMeta{shard, ingest_.shards, encoder_.dim(), bundle_.name, bundle_.sha256, options_hash,
                              options_.code_version};
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
    record.options = ShardOptions(options_, bundle_);
    record.options_hash = options_hash;
    record.inputs.push_back(DescribeFile(input, "ingest/" + ShardFileName(shard, ".csv"), counts.images));
    record.outputs.push_back(DescribeFile(output, ShardFileName(shard, ".h5"), counts.images));
    record.counts["images"] = counts.images;
    for (int s = 0; s < kImageStatusCount; ++s) {
      if (counts.by_status[s] > 0) record.counts[ImageStatusName(static_cast<ImageStatus>(s))] = counts.by_status[s];
    }
    WriteManifestFile(RecordPath(stage_dir, shard), record);
    spdlog::info("shard {}: {} images ({} ok) in {:.1f} s", shard, n, counts.by_status[0], Seconds(start));
    return counts;
  }

 private:
  void ReadRows(const std::filesystem::path& input, std::vector<ImageRow>* rows) {
    CsvReader reader = CsvReader::Open(input);
    CsvRecord record;
    if (!reader.Next(&record) || record.fields.size() != 8) {
      throw InputError(input.string() + " is not an ingest shard (" + kIngestShardHeader + ")");
    }
    while (reader.Next(&record)) {
      if (record.error != CsvError::kNone || record.fields.size() != 8) {
        throw InputError(input.string() + ": record " + std::to_string(record.index) + " is damaged; rerun lookbook ingest");
      }
      ImageRow row;
      row.product_id = record.fields[0];
      row.key = record.fields[0] + "/" + record.fields[1];
      row.path = record.fields[2];
      row.file = record.fields[3];
      rows->push_back(std::move(row));
    }
  }

  void Embed(int shard, EmbedShard* out, ShardCounts* counts) {
    const std::size_t n = out->images.size();
    const PreprocessSpec& spec = encoder_.preprocess();
    const std::size_t image_floats = static_cast<std::size_t>(3) * spec.size * spec.size;
    DecodeLimits limits = options_.limits;
    limits.min_side = spec.size;

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
          const auto begin = Clock::now();
          ImageRow& row = out->images[i];
          Prepared prepared;
          prepared.index = i;
          ImageStatus status = ReadImageFile(ingest_.images / row.file, limits.max_file_bytes, &bytes);
          std::string detail;
          if (status == ImageStatus::kOk) {
            row.checksum = Xxh3(bytes);
            DecodeResult decoded = DecodeImage(bytes, limits);
            status = decoded.status;
            detail = std::move(decoded.detail);
            row.width = decoded.source_width;
            row.height = decoded.source_height;
            if (status == ImageStatus::kOk) {
              row.phash = ComputePerceptualHash(decoded.image);
              prepared.pixels.resize(image_floats);
              Preprocess(decoded.image, spec, prepared.pixels.data());
            }
          }
          row.status = static_cast<std::int8_t>(status);
          if (status != ImageStatus::kOk) row.reason = std::string(ImageStatusName(status)) + (detail.empty() ? "" : ": " + detail);
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
    std::vector<float> batch;
    std::vector<std::size_t> batch_rows;
    batch.reserve(image_floats * static_cast<std::size_t>(options_.batch_size));
    std::size_t received = 0;
    double inference_seconds = 0;
    auto run_batch = [&] {
      if (batch_rows.empty()) return;
      const auto begin = Clock::now();
      const std::vector<float> rows = encoder_.Encode(batch.data(), static_cast<int>(batch_rows.size()));
      inference_seconds += Seconds(begin);
      const auto d = static_cast<std::size_t>(encoder_.dim());
      for (std::size_t k = 0; k < batch_rows.size(); ++k) {
        std::copy(rows.begin() + static_cast<long>(k * d), rows.begin() + static_cast<long>((k + 1) * d),
                  out->embeddings.begin() + static_cast<long>(batch_rows[k] * d));
      }
      batch.clear();
      batch_rows.clear();
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
      if (Seconds(last_progress) >= options_.progress_seconds) {
        last_progress = Clock::now();
        const double rate = static_cast<double>(received) / std::max(Seconds(start), 1e-9);
        spdlog::info("shard {}: {}/{} images, {:.1f} images/s, ETA {:.0f} s", shard, received, n, rate,
                     static_cast<double>(n - received) / std::max(rate, 1e-9));
      }
    }
    run_batch();
    {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (worker_error) std::rethrow_exception(worker_error);
    }
    LB_CHECK(received == n, "the decode pipeline lost images");
    counts->decode_seconds = static_cast<double>(decode_nanos.load()) * 1e-9;
    counts->inference_seconds = inference_seconds;
  }

  const EmbedOptions& options_;
  const ModelBundle& bundle_;
  const ImageEncoder& encoder_;
  const IngestRun& ingest_;
  const MpiWorld& world_;
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
  const std::string options_hash = OptionsHash(ShardOptions(options, bundle));
  const std::filesystem::path stage_dir = options.run / "embed";
  std::filesystem::create_directories(stage_dir);

  // Rank 0 decides which shards need work; every rank gets the same list.
  std::vector<std::int64_t> todo;
  std::int64_t skipped = 0;
  if (world.is_root()) {
    RemoveStaleTemporaries(stage_dir);
    std::vector<int> candidates;
    if (options.only_shard) candidates.push_back(*options.only_shard);
    else for (int k = 0; k < ingest.shards; ++k) candidates.push_back(k);
    std::vector<std::string> why(candidates.size());
    if (options.rerun == RerunPolicy::kReuseValid) {
      ParallelFor(candidates.size(), 4, [&](std::size_t i) {
        why[i] = WhyRedo(options.run, stage_dir, candidates[i], options_hash, options.code_version);
      });
    } else {
      std::fill(why.begin(), why.end(), "--force");
    }
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (why[i].empty()) ++skipped;
      else todo.push_back(candidates[i]);
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
  ShardEmbedder embedder(options, bundle, encoder, ingest, world);
  WorkCounter counter = WorkCounter::Create(world);
  const auto shards_start = Clock::now();
  std::vector<std::int64_t> totals(3 + kImageStatusCount, 0);  // shards, decode ns, inference ns, statuses
  for (;;) {
    const std::int64_t next = counter.Next();
    if (next >= static_cast<std::int64_t>(todo.size())) break;
    const ShardCounts counts = embedder.Run(static_cast<int>(todo[static_cast<std::size_t>(next)]), options_hash);
    totals[0] += 1;
    totals[1] += static_cast<std::int64_t>(counts.decode_seconds * 1e9);
    totals[2] += static_cast<std::int64_t>(counts.inference_seconds * 1e9);
    for (int s = 0; s < kImageStatusCount; ++s) totals[static_cast<std::size_t>(3 + s)] += counts.by_status[s];
  }
  // The pipeline's wall time without start-up (model load): the slowest rank's shard loop.
  const double shards_seconds = world.MaxAll(Seconds(shards_start));
  const std::vector<std::int64_t> sums = world.SumAll(totals);

  // Rank 0 publishes the stage manifest and the catalog view over every valid shard.
  if (world.is_root()) {
    StageManifest manifest;
    manifest.stage = "embed";
    manifest.code_version = options.code_version;
    manifest.options = ShardOptions(options, bundle);
    manifest.options_hash = options_hash;
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
      report.counts[std::string("rejected_") + ImageStatusName(static_cast<ImageStatus>(s))] = sums[static_cast<std::size_t>(3 + s)];
    }
  }
  report.steps.push_back(StepTiming{"shards (wall)", shards_seconds, images});
  report.steps.push_back(StepTiming{"decode (thread-seconds)", static_cast<double>(sums[1]) * 1e-9, images});
  report.steps.push_back(StepTiming{"inference (rank-seconds)", static_cast<double>(sums[2]) * 1e-9, sums[3]});
  report.facts["ranks"] = std::to_string(world.size());
  report.facts["device"] = DeviceName(options.inference.device);
  report.facts["precision"] = PrecisionName(options.inference.precision);
  report.facts["decode_threads"] = std::to_string(options.decode_threads);
  report.facts["batch_size"] = std::to_string(options.batch_size);
  report.facts["blas_core"] = BlasCoreName();
  report.facts["model"] = bundle.name;
  if (skipped > 0 && sums[0] == 0) report.status = "skipped";
  report.seconds = Seconds(start);
  report.throughput_items = images;
  return report;
}

}  // namespace lookbook
