#include "catalog/ingest.h"

#include <sys/resource.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <unordered_set>
#include <vector>

#include "catalog/csv.h"
#include "catalog/image_path.h"
#include "catalog/reject.h"
#include "catalog/sharding.h"
#include "stage/stage.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/manifest.h"
#include "util/parallel.h"
#include "util/publish.h"

namespace lookbook {
namespace {

constexpr int kMaxShards = 65536;
constexpr std::size_t kMaxProductIdBytes = 256;

struct Counts {
  std::int64_t rows_in = 0, rows_ok = 0, rows_rejected = 0;
  std::int64_t images_in = 0, images_ok = 0, images_rejected = 0;
  std::int64_t by_reason[kRejectReasonCount] = {};
};

// One image cell of a row that passed the row checks.
struct ImageTask {
  std::size_t column = 0;                    // index into CatalogColumns::images
  std::string reference;                     // as in the catalog
  std::optional<RejectReason> early_reject;  // found before touching the file system
  std::string candidate;                     // the path to check under the root
  ImagePathCheck check;
};

// A row of the current chunk; its image cells are tasks [first_task, first_task + tasks).
struct PendingRow {
  std::int64_t row = 0;
  std::optional<RejectReason> reject;  // rejected before the image checks
  std::string product_id;
  std::string category;
  std::string title;
  bool in_stock = true;
  std::size_t first_task = 0;
  std::size_t tasks = 0;
  std::string detail;  // of the reject
};

// A record that a broken quote ran over several lines: which lines of the file it took, and the
// product ids at the start of the lines it swallowed (catalog rows lost into it), as far as they
// can be seen. Empty for a record on one line.
std::string SwallowedLines(const CsvRecord& record, int id_column) {
  std::string text;
  for (std::size_t i = 0; i < record.fields.size(); ++i) text += (i ? "," : "") + record.fields[i];
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t at = text.find('\n'); at != std::string::npos; at = text.find('\n', start)) {
    lines.push_back(text.substr(start, at - start));
    start = at + 1;
  }
  if (lines.empty()) return {};
  lines.push_back(text.substr(start));
  while (lines.size() > 1 && (lines.back().empty() || lines.back() == "\r")) lines.pop_back();  // the end
  if (lines.size() == 1) return {};
  std::vector<std::string> ids;
  for (std::size_t l = 1; l < lines.size() && ids.size() < 10; ++l) {
    std::string line = lines[l];
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::size_t begin = 0;
    for (int c = 0; c < std::max(0, id_column) && begin != std::string::npos; ++c) {
      begin = line.find(',', begin);
      if (begin != std::string::npos) ++begin;
    }
    if (begin == std::string::npos) continue;
    const std::string id = line.substr(begin, line.find(',', begin) - begin);
    if (!id.empty() && IsValidUtf8(id)) ids.push_back(id);
  }
  const std::int64_t first = record.first_line + 1;
  const std::int64_t last = record.first_line + static_cast<std::int64_t>(lines.size()) - 1;
  std::string out = first == last
                        ? "swallowed line " + std::to_string(first) + " of the file"
                        : "swallowed lines " + std::to_string(first) + "-" + std::to_string(last) + " of the file";
  if (!ids.empty()) {
    out += "; ids seen there: ";
    for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + ids[i];
  }
  return out;
}

// Rows and tasks are reused from chunk to chunk (their strings keep their capacity): a
// million-row catalog otherwise spends a third of its time in malloc and free.
template <typename T>
class Pool {
 public:
  T& Next() {
    if (used_ == items_.size()) items_.emplace_back();
    return items_[used_++];
  }
  void Clear() { used_ = 0; }
  void Truncate(std::size_t size) { used_ = size; }
  std::size_t size() const { return used_; }
  T& operator[](std::size_t i) { return items_[i]; }

 private:
  std::vector<T> items_;
  std::size_t used_ = 0;
};

std::optional<RejectReason> CsvReject(CsvError error) {
  switch (error) {
    case CsvError::kNone: return std::nullopt;
    case CsvError::kInvalidUtf8: return RejectReason::kInvalidUtf8;
    case CsvError::kMalformedQuote: return RejectReason::kMalformedQuote;
    case CsvError::kUnterminatedQuote: return RejectReason::kUnterminatedQuote;
    case CsvError::kRecordTooLong: return RejectReason::kRecordTooLong;
  }
  return RejectReason::kInvalidUtf8;
}

std::optional<RejectReason> ProductIdReject(const std::string& id) {
  if (id.find_first_not_of(' ') == std::string::npos) return RejectReason::kMissingProductId;
  if (id.size() > kMaxProductIdBytes || id.front() == ' ' || id.back() == ' ' || id.find('/') != std::string::npos) {
    return RejectReason::kInvalidProductId;
  }
  for (const char ch : id) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F) return RejectReason::kInvalidProductId;
  }
  return std::nullopt;
}

// Each open shard file holds a descriptor: make sure the process may open that many.
void EnsureFileDescriptors(int needed) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t want = static_cast<rlim_t>(needed) + 64;
  if (limit.rlim_cur >= want) return;
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < want) {
    throw InputError("--shards " + std::to_string(needed) + " needs " + std::to_string(want) +
                     " open files, the hard limit is " + std::to_string(limit.rlim_max));
  }
  limit.rlim_cur = want;
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) items.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return items;
}

std::string JoinList(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

// A column-mapping option: applied over the layout's mapping (so it comes after --layout in the
// table); the key sees the mapping in effect.
void Column(OptionTable<IngestOptions>& table, const std::string& name, const std::string& help,
            std::function<std::string&(ColumnMapping&)> field) {
  table.Add(
      OptionSpec{name, "NAME", "", false, false, "", help + " (overrides the layout)", OptionEffect::kOutput},
      [=](const std::vector<std::string>& values, IngestOptions* out) {
        if (values.back().empty()) throw UsageError("--" + name + " must not be empty");
        field(out->columns) = values.back();
      },
      [=](const IngestOptions& options) { return field(const_cast<ColumnMapping&>(options.columns)); });
}

std::map<std::string, std::string> ManifestOptions(const IngestOptions& options, const ImageRoot& root) {
  std::map<std::string, std::string> out = IngestOptionTable().Identity(options);
  out["images"] = root.canonical().string();  // what later stages read images from
  return out;
}

}  // namespace

std::string IngestRowsChecksum(const std::vector<std::string>& keys, const std::vector<std::string>& references,
                               const std::vector<std::string>& files) {
  StageKey key;
  for (std::size_t i = 0; i < keys.size(); ++i) key.Add("row", keys[i] + "\t" + references[i] + "\t" + files[i]);
  return "rows:" + key.Hash();
}

std::string IngestRowsChecksum(const std::string& shard_bytes) {
  const auto rows = ParseCsvText("ingest shard", shard_bytes, kIngestShardHeader);
  std::vector<std::string> keys, references, files;
  for (const auto& row : rows) {
    keys.push_back(row[0] + "/" + row[1]);
    references.push_back(row[2]);
    files.push_back(row[3]);
  }
  return IngestRowsChecksum(keys, references, files);
}

std::string CanonicalShardOrder(const std::string& bytes) {
  const auto rows = ParseCsvText("ingest shard", bytes, kIngestShardHeader);
  std::vector<std::size_t> order(rows.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Stable: a product's images are contiguous (one catalog row) and stay in column order.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return rows[a][0] < rows[b][0]; });
  std::string out = std::string(kIngestShardHeader) + "\n";
  out.reserve(bytes.size() + 1);
  for (const std::size_t i : order) {
    const auto& row = rows[i];
    AppendCsvRow(std::vector<std::string_view>(row.begin(), row.end()), &out);
  }
  return out;
}

const OptionTable<IngestOptions>& IngestOptionTable() {
  static const OptionTable<IngestOptions> table = [] {
    OptionTable<IngestOptions> t;
    t.Path(
        "run", "DIR", [](IngestOptions& o) -> std::filesystem::path& { return o.run; }, true,
        "the run folder (outputs go to DIR/ingest)");
    t.Path(
        "catalog", "CSV", [](IngestOptions& o) -> std::filesystem::path& { return o.catalog; }, true,
        "the catalog CSV (RFC 4180: quoted fields, CRLF or LF, optional UTF-8 BOM); its checksum is in the key");
    t.Add(
        OptionSpec{"images", "DIR", "", true, false, "", "the image root: every image reference must resolve inside it",
                   OptionEffect::kOutput},
        [](const std::vector<std::string>& values, IngestOptions* out) {
          if (values.back().empty()) throw UsageError("--images must not be empty");
          out->images = values.back();
        },
        [](const IngestOptions& options) {
          std::error_code error;
          const auto canonical = std::filesystem::weakly_canonical(options.images, error);
          return (error ? options.images : canonical).string();
        });
    t.Integer<int>(
        "shards", "N", [](IngestOptions& o) -> int& { return o.shards; }, 16, 1, kMaxShards, OptionEffect::kOutput,
        "number of shards; a product's shard is xxh64(product_id) mod N");
    t.Add(
        OptionSpec{"layout", "NAME", "default", false, false, "default | inditex",
                   "default: product_id,image_1..image_N,category,in_stock,title; inditex: IMAGE_VERSION_1..3 image "
                   "URLs, the product id from the image file name (src/catalog/columns.h)",
                   OptionEffect::kOutput},
        [](const std::vector<std::string>& values, IngestOptions* out) {
          CatalogLayout layout;
          if (!ParseCatalogLayout(values.back(), &layout)) {
            throw UsageError("--layout must be default or inditex, not '" + values.back() + "'");
          }
          out->layout = values.back();
          out->columns = LayoutMapping(layout);
        },
        [](const IngestOptions& options) { return options.layout; });
    t.Add(
        OptionSpec{"id-column", "NAME", "", false, false, "", "column holding the product id (overrides the layout)",
                   OptionEffect::kOutput},
        [](const std::vector<std::string>& values, IngestOptions* out) {
          if (values.back().empty()) throw UsageError("--id-column must not be empty");
          out->columns.id_source = ProductIdSource::kColumn;
          out->columns.product_id = values.back();
        },
        [](const IngestOptions& options) {
          return options.columns.id_source == ProductIdSource::kColumn ? options.columns.product_id
                                                                       : std::string("<image file name>");
        });
    t.Add(
        OptionSpec{"image-columns", "A,B,...", "", false, false, "",
                   "columns holding image references, in order (overrides the layout: default image_1..image_N)",
                   OptionEffect::kOutput},
        [](const std::vector<std::string>& values, IngestOptions* out) {
          out->columns.image_columns = SplitList(values.back());
          if (out->columns.image_columns.empty()) throw UsageError("--image-columns names no column");
        },
        [](const IngestOptions& options) {
          return options.columns.image_columns.empty() ? std::string("image_<n>")
                                                       : JoinList(options.columns.image_columns);
        });
    Column(t, "category-column", "column holding the category (optional in the catalog; absent: empty)",
           [](ColumnMapping& m) -> std::string& { return m.category; });
    Column(t, "stock-column",
           "column holding the stock flag: 1/0, true/false, yes/no, y/n or a stock count (optional in the catalog; "
           "absent: in stock)",
           [](ColumnMapping& m) -> std::string& { return m.in_stock; });
    Column(t, "title-column", "column holding the title (optional in the catalog)",
           [](ColumnMapping& m) -> std::string& { return m.title; });
    t.Add(
        OptionSpec{"image-refs", "path|url", "", false, false, "path | url",
                   "how image cells are written: a path under the image root, or a URL whose path is (overrides "
                   "the layout)",
                   OptionEffect::kOutput},
        [](const std::vector<std::string>& values, IngestOptions* out) {
          if (!ParseImageReferenceStyle(values.back(), &out->columns.image_references)) {
            throw UsageError("--image-refs must be path or url, not '" + values.back() + "'");
          }
        },
        [](const IngestOptions& options) {
          return std::string(options.columns.image_references == ImageReferenceStyle::kUrl ? "url" : "path");
        });
    t.Integer<std::uint64_t>(
        "max-image-bytes", "BYTES", [](IngestOptions& o) -> std::uint64_t& { return o.max_image_bytes; }, 64ull << 20,
        1, 1ull << 40, OptionEffect::kOutput, "larger image files are rejected (too_large)");
    t.Integer<int>(
        "io-threads", "N", [](IngestOptions& o) -> int& { return o.io_threads; }, 16, 1, 1024, OptionEffect::kResource,
        "parallel file checks (stat calls)");
    t.Add(
        OptionSpec{"force", "", "", false, false, "", "publish the stage even when its outputs are unchanged",
                   OptionEffect::kControl},
        [](const std::vector<std::string>& values, IngestOptions* out) {
          out->rerun = values.back() == "1" ? RerunPolicy::kForce : RerunPolicy::kReuseValid;
        },
        [](const IngestOptions&) { return std::string(); });
    return t;
  }();
  return table;
}

namespace {

// The ingest stage's passes over the catalog, a chunk of --chunk-rows rows at a time: read and
// check the rows (ReadChunk), check their images against the file system in parallel
// (CheckImages), and write the chunk's rejects and shard lines in catalog order (WriteChunk);
// then the shards in their canonical order, rejects.csv and the manifest (Publish).
class IngestPasses {
 public:
  IngestPasses(const IngestOptions& options, const CatalogColumns& columns, const ImageRoot& root,
               const std::filesystem::path& stage_dir)
      : options_(options),
        columns_(columns),
        root_(root),
        stage_dir_(stage_dir),
        shard_buffers_(static_cast<std::size_t>(options.shards)),
        shard_rows_(static_cast<std::size_t>(options.shards), 0),
        rejects_file_(AtomicFile::Create(stage_dir / "rejects.csv")) {
    shard_files_.reserve(static_cast<std::size_t>(options.shards));
    for (int shard = 0; shard < options.shards; ++shard) {
      // Rows go out in catalog order to a spill file; the shard is written from it in its
      // canonical order at the end (CanonicalShardOrder), one shard in memory at a time.
      shard_files_.push_back(AtomicFile::Create(stage_dir / ("catalog-order-" + ShardFileName(shard, ".csv"))));
      shard_files_.back().Write(std::string(kIngestShardHeader) + "\n");
    }
    rejects_ = std::string(kRejectsHeader) + "\n";
    seen_ids_.reserve(1 << 16);
  }

  // Pass 1 (sequential): up to --chunk-rows records: structure, id, stock; the image cells
  // collected as tasks. Returns false when the catalog has no more records.
  bool ReadChunk(CsvReader* reader) {
    rows_.Clear();
    tasks_.Clear();
    CsvRecord& record = record_;
    bool more = true;
    while (rows_.size() < options_.chunk_rows && (more = reader->Next(&record))) {
      ++counts_.rows_in;
      PendingRow& pending = NextRow(record.index);
      if (auto reason = CsvReject(record.error)) {
        // Name the product when its id field itself is readable.
        if (record.error == CsvError::kInvalidUtf8 && columns_.product_id >= 0 &&
            record.fields.size() == columns_.field_count) {
          const std::string& id = record.fields[static_cast<std::size_t>(columns_.product_id)];
          if (IsValidUtf8(id) && !ProductIdReject(id)) pending.product_id = id;
        }
        RejectPending(pending, *reason);
        pending.detail = SwallowedLines(record, columns_.product_id);
        continue;
      }
      if (record.fields.size() != columns_.field_count) {
        RejectPending(pending, RejectReason::kFieldCount);
        continue;
      }
      for (std::size_t i = 0; i < columns_.images.size(); ++i) {
        const std::string& cell = record.fields[static_cast<std::size_t>(columns_.images[i])];
        if (cell.empty()) continue;
        ImageTask& task = tasks_.Next();
        ++pending.tasks;
        task.column = i;
        task.reference = cell;
        task.early_reject.reset();
        task.check.reject.reset();
        if (options_.columns.image_references == ImageReferenceStyle::kUrl) {
          if (auto path = UrlPath(cell))
            task.candidate = *path;
          else
            task.early_reject = RejectReason::kBadUrl;
        } else {
          task.candidate = cell;
        }
      }
      if (options_.columns.id_source == ProductIdSource::kColumn) {
        pending.product_id = record.fields[static_cast<std::size_t>(columns_.product_id)];
      } else {
        for (std::size_t t = pending.first_task; t < pending.first_task + pending.tasks; ++t) {
          if (auto reference = InditexProductReference(tasks_[t].reference)) {
            pending.product_id = *reference;
            break;
          }
        }
      }
      if (auto reason = ProductIdReject(pending.product_id)) {
        RejectPending(pending, *reason);
        continue;
      }
      if (columns_.in_stock >= 0) {
        const auto in_stock = ParseInStock(record.fields[static_cast<std::size_t>(columns_.in_stock)]);
        if (!in_stock) {
          RejectPending(pending, RejectReason::kBadInStock);
          continue;
        }
        pending.in_stock = *in_stock;
      }
      if (pending.tasks == 0) {
        RejectPending(pending, RejectReason::kNoImages);
        continue;
      }
      if (columns_.category >= 0) {
        pending.category = record.fields[static_cast<std::size_t>(columns_.category)];
      }
      if (columns_.title >= 0) pending.title = record.fields[static_cast<std::size_t>(columns_.title)];
    }
    return more;
  }

  // Pass 2 (parallel): every image reference of the chunk against the file system.
  void CheckImages() {
    const auto check_start = std::chrono::steady_clock::now();
    ParallelFor(tasks_.size(), options_.io_threads, [&](std::size_t i) {
      ImageTask& task = tasks_[i];
      if (task.early_reject) {
        task.check.reject = task.early_reject;
      } else {
        task.check = root_.Check(task.candidate, options_.max_image_bytes);
      }
    });
    check_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - check_start).count();
  }

  // Pass 3 (sequential, catalog order): the chunk's rejects and shard lines.
  void WriteChunk() {
    for (std::size_t r = 0; r < rows_.size(); ++r) {
      const PendingRow& row = rows_[r];
      if (row.reject) {
        RejectRow(row.row, row.product_id, *row.reject, row.detail);
        continue;
      }
      // The first accepted row keeps its id: a row rejected for its stock, its images or
      // anything else does not claim it, so a valid row after it is not a duplicate.
      bool any_image_ok = false;
      for (std::size_t t = row.first_task; t < row.first_task + row.tasks; ++t) any_image_ok |= !tasks_[t].check.reject;
      if (any_image_ok && !seen_ids_.insert(row.product_id).second) {
        RejectRow(row.row, row.product_id, RejectReason::kDuplicateProductId);
        continue;
      }
      const std::string row_text = std::to_string(row.row);
      std::int64_t accepted = 0;
      for (std::size_t t = row.first_task; t < row.first_task + row.tasks; ++t) {
        const ImageTask& task = tasks_[t];
        ++counts_.images_in;
        if (task.check.reject) {
          ++counts_.images_rejected;
          ++counts_.by_reason[static_cast<int>(*task.check.reject)];
          AppendReject(Reject{row.row, row.product_id, columns_.image_names[task.column], task.reference,
                              *task.check.reject, ""},
                       &rejects_);
          ++reject_lines_;
        } else {
          ++counts_.images_ok;
          ++accepted;
        }
      }
      if (accepted == 0) {
        RejectRow(row.row, row.product_id, RejectReason::kAllImagesRejected);
        continue;
      }
      ++counts_.rows_ok;
      const auto shard = static_cast<std::size_t>(ShardOf(row.product_id, options_.shards));
      std::string& out = shard_buffers_[shard];
      for (std::size_t t = row.first_task; t < row.first_task + row.tasks; ++t) {
        const ImageTask& task = tasks_[t];
        if (task.check.reject) continue;
        AppendCsvRow({row.product_id, columns_.image_names[task.column], task.reference, task.check.relative,
                      row.category, row.in_stock ? "1" : "0", row.title, row_text, std::to_string(task.check.size),
                      std::to_string(task.check.mtime_ns)},
                     &out);
        ++shard_rows_[shard];
      }
      if (out.size() > (64u << 10)) {
        shard_files_[shard].Write(out);
        out.clear();
      }
    }
    if (rejects_.size() > (1u << 20)) {
      rejects_file_.Write(rejects_);
      rejects_.clear();
    }
  }

  // The shards (each from its spill, in canonical order), rejects.csv, their entries in the
  // stage, and the counts. Nothing vanishes: every row and image is ok or rejected.
  void Finish(Stage* stage, std::int64_t blank_lines, StageReport* report) {
    LB_CHECK(counts_.rows_in == counts_.rows_ok + counts_.rows_rejected, "row counts do not add up");
    LB_CHECK(counts_.images_in == counts_.images_ok + counts_.images_rejected, "image counts do not add up");
    for (std::size_t shard = 0; shard < shard_files_.size(); ++shard) {
      shard_files_[shard].Write(shard_buffers_[shard]);
      shard_files_[shard].Commit();
      const std::filesystem::path spill = shard_files_[shard].final_path();
      AtomicFile canonical = AtomicFile::Create(stage_dir_ / ShardFileName(static_cast<ShardId>(shard), ".csv"));
      canonical.Write(CanonicalShardOrder(ReadFileBytes(spill)));
      canonical.Commit();
      std::filesystem::remove(spill);
      stage->AddOutput(ShardFileName(static_cast<ShardId>(shard), ".csv"), shard_rows_[shard]);
    }
    rejects_file_.Write(rejects_);
    rejects_file_.Commit();
    stage->AddOutput("rejects.csv", reject_lines_);

    report->counts["rows_in"] = counts_.rows_in;
    report->counts["rows_ok"] = counts_.rows_ok;
    report->counts["rows_rejected"] = counts_.rows_rejected;
    report->counts["images_in"] = counts_.images_in;
    report->counts["images_ok"] = counts_.images_ok;
    report->counts["images_rejected"] = counts_.images_rejected;
    report->counts["blank_lines"] = blank_lines;
    report->counts["shards"] = options_.shards;
    for (int reason = 0; reason < kRejectReasonCount; ++reason) {
      if (counts_.by_reason[reason] > 0) {
        report->counts[std::string("rejected_") + RejectReasonName(static_cast<RejectReason>(reason))] =
            counts_.by_reason[reason];
      }
    }
  }

  const Counts& counts() const { return counts_; }
  double check_seconds() const { return check_seconds_; }

 private:
  PendingRow& NextRow(std::int64_t row) {
    PendingRow& pending = rows_.Next();
    pending.row = row;
    pending.reject.reset();
    pending.product_id.clear();
    pending.category.clear();
    pending.title.clear();
    pending.in_stock = true;
    pending.first_task = tasks_.size();
    pending.tasks = 0;
    pending.detail.clear();
    return pending;
  }
  void RejectPending(PendingRow& pending, RejectReason reason) {
    pending.reject = reason;
    tasks_.Truncate(pending.first_task);
    pending.tasks = 0;
  }
  void RejectRow(std::int64_t row, const std::string& id, RejectReason reason, const std::string& detail = "") {
    AppendReject(Reject{row, id, "", "", reason, detail}, &rejects_);
    ++reject_lines_;
    ++counts_.rows_rejected;
    ++counts_.by_reason[static_cast<int>(reason)];
  }

  const IngestOptions& options_;
  const CatalogColumns& columns_;
  const ImageRoot& root_;
  std::filesystem::path stage_dir_;
  std::vector<AtomicFile> shard_files_;
  std::vector<std::string> shard_buffers_;
  std::vector<std::int64_t> shard_rows_;
  AtomicFile rejects_file_;
  std::string rejects_;
  std::int64_t reject_lines_ = 0;
  Counts counts_;
  std::unordered_set<std::string> seen_ids_;
  // Rows are rejected in catalog order: a chunk's rejects are written after its image checks.
  Pool<PendingRow> rows_;
  Pool<ImageTask> tasks_;
  CsvRecord record_;
  double check_seconds_ = 0;
};

}  // namespace

StageReport RunIngest(const IngestOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  LB_CHECK(options.shards > 0, "shard count must be positive");
  if (options.shards > kMaxShards) {
    throw InputError("--shards " + std::to_string(options.shards) + " is above the maximum " +
                     std::to_string(kMaxShards));
  }
  StageReport report;
  report.stage = "ingest";
  report.throughput_unit = "rows";
  report.facts["run"] = options.run.string();

  // The stage runs its checks every time: its outputs depend on the image files (which exist,
  // their sizes and dates), which no key can know without looking. It publishes only when the
  // outputs differ from the published ones (stage/stage.h SameAsPublished).
  Stage stage(nullptr, options.run, "ingest", options.code_version);
  const ImageRoot root = ImageRoot::Open(options.images);
  StageManifest manifest;
  manifest.options = ManifestOptions(options, root);
  manifest.options_hash = OptionsHash(manifest.options);
  {
    StepTimer timer(&report, "checksum_catalog");
    if (!std::filesystem::is_regular_file(options.catalog)) {
      throw InputError("catalog " + options.catalog.string() + " is not a readable file");
    }
    const ManifestEntry catalog = DescribeFile(options.catalog, manifest.options["catalog"], -1);
    stage.AddSource(catalog);
    stage.Key().Add("options", manifest.options_hash);
    stage.Key().Add("catalog", catalog.checksum);
  }
  const std::filesystem::path stage_dir = stage.Staging();

  CsvReader reader = CsvReader::Open(options.catalog);
  CsvRecord header;
  if (!reader.Next(&header)) throw InputError("catalog " + options.catalog.string() + " is empty");
  if (header.error != CsvError::kNone) {
    throw InputError("catalog header is not valid CSV: " + std::string(CsvErrorName(header.error)));
  }
  const CatalogColumns columns = ResolveColumns(header.fields, options.columns);
  if (columns.category < 0 || columns.in_stock < 0 || columns.title < 0) {
    spdlog::warn(
        "catalog lacks optional column(s){}{}{}: every product gets the default "
        "(empty category, in stock, empty title)",
        columns.category < 0 ? " '" + options.columns.category + "'" : "",
        columns.in_stock < 0 ? " '" + options.columns.in_stock + "'" : "",
        columns.title < 0 ? " '" + options.columns.title + "'" : "");
  }

  EnsureFileDescriptors(options.shards + 2);  // the spills, rejects.csv and one canonical shard
  IngestPasses passes(options, columns, root, stage_dir);
  for (bool more = true; more;) {
    more = passes.ReadChunk(&reader);
    passes.CheckImages();
    passes.WriteChunk();
    if (more) {
      const Counts& counts = passes.counts();
      spdlog::info("{} rows read, {} accepted, {} rejected", counts.rows_in, counts.rows_ok, counts.rows_rejected);
    }
  }
  report.steps.push_back(StepTiming{"check_images", passes.check_seconds(), passes.counts().images_in});
  {
    StepTimer timer(&report, "publish");
    passes.Finish(&stage, reader.blank_lines(), &report);
    manifest.counts = report.counts;
    if (options.rerun == RerunPolicy::kReuseValid && stage.SameAsPublished()) {
      report.status = "skipped";  // the same rows and rejects as published: nothing changed
    } else {
      stage.Publish(manifest);
    }
  }
  report.steps.push_back(StepTiming{"stage skeleton (rank 0)", stage.skeleton_seconds(), 0});
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.throughput_items = passes.counts().rows_in;
  return report;
}

}  // namespace lookbook
