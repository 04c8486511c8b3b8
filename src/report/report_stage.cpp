#include "report/report_stage.h"

#include <spdlog/spdlog.h>

#include <kainjow/mustache.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>

#include "catalog/csv.h"
#include "catalog/ingest.h"
#include "dedup/decisions.h"
#include "image/decode.h"
#include "report/selection.h"
#include "report/templates.h"
#include "stage/run_status.h"
#include "stage/stage.h"
#include "store/dedup_file.h"
#include "store/embed_run.h"
#include "store/recs_file.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/parallel.h"
#include "util/publish.h"
#include "util/run_path.h"

namespace lookbook {
namespace {

namespace mu = kainjow::mustache;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

std::string Fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, value);
  return buffer;
}

std::string SlotColour(const std::string& slot) {
  static const std::map<std::string, std::string> kColours = {
      {"top", "#d6336c"},   {"bottom", "#1c7ed6"}, {"dress", "#ae3ec9"},    {"outerwear", "#f08c00"},
      {"shoes", "#2b8a3e"}, {"bag", "#5f3dc4"},    {"accessory", "#0b7285"}};
  const auto it = kColours.find(slot);
  return it == kColours.end() ? "#495057" : it->second;
}

// An optional stage (dedup, recs) is shown only when it is valid as the skeleton judges it: its
// manifest reads, it is not older than its inputs (StaleInputs: e.g. embed was rerun
// since), and its outputs verify. Otherwise the report leaves it out and says why.
bool StageShown(Stage& stage, const std::string& name) {
  if (!stage.HasUpstream(name)) return false;
  std::string why;
  try {
    const StageManifest& manifest = stage.Upstream(name);
    const std::string stale = StaleInputs(stage.run(), name);
    why = stale.empty() ? VerifyOutputs(stage.run() / name, manifest) : "stale: " + stale;
  } catch (const InputError& error) {
    why = error.what();
  }
  if (why.empty()) return true;
  spdlog::warn("{} is not valid ({}): left out of the report; rerun lookbook {}", name, why, name);
  return false;
}

std::optional<nlohmann::json> ReadJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    spdlog::warn("{} is not JSON ({}): left out of the report", path.string(), error.what());
    return std::nullopt;
  }
}

// The run folder's own name (a night's name under a runs root): never the path above it.
std::string RunName(const std::filesystem::path& run) {
  const std::filesystem::path normal = std::filesystem::absolute(run).lexically_normal();
  const std::string name = (normal.has_filename() ? normal : normal.parent_path()).filename().string();
  return name.empty() ? "run" : name;
}

std::string ReasonName(const std::string& reason) { return reason.substr(0, reason.find(':')); }

// Everything the pages show about one image.
struct ImageInfo {
  std::string key, product_id, column, path, file, reason, title, category;
  std::int64_t catalog_row = 0;
  bool ok = false, in_stock = false, outfit_photo = false;
  int width = 0, height = 0;
  std::uint64_t checksum = 0;  // of the image file embed read
};

class ReportBuilder {
 public:
  ReportBuilder(const ReportOptions& options, Stage& stage) : options_(options), stage_(stage) {}

  StageReport Build() {
    const auto start = Clock::now();
    StageReport report;
    report.stage = "report";
    report.throughput_unit = "pages";
    report.facts["run"] = options_.run.string();
    {
      StepTimer timer(&report, "load");
      Load();
      timer.set_items(static_cast<std::int64_t>(images_.size()));
    }
    dir_ = stage_.Staging();
    std::filesystem::create_directories(dir_ / "thumbs");
    ReadPreviousThumbs();
    // Twice: first only to learn which thumbnails the pages show (made then by --threads
    // threads), then for real. What both passes read of the whole run is worked out once first.
    {
      StepTimer timer(&report, "choose what is shown");
      run_states_ = InspectRun(options_.run);  // every stage's state: a checksum of every output
      ChooseNearThreshold();
      collecting_ = true;
      WritePages();
      collecting_ = false;
    }
    {
      StepTimer timer(&report, "thumbnails");
      MakeThumbs();
      timer.set_items(static_cast<std::int64_t>(made_.size()));
    }
    {
      StepTimer timer(&report, "pages");
      WritePages();
      timer.set_items(pages_);
    }
    StageManifest manifest;
    manifest.options = Options();
    manifest.options_hash = OptionsHash(manifest.options);
    for (const auto& entry : outputs_) stage_.AddOutputEntry(entry);
    manifest.counts = {{"pages", pages_},
                       {"thumbnails", static_cast<std::int64_t>(made_.size())},
                       {"thumbnails_reused", thumbs_reused_},
                       {"clusters", clusters_},
                       {"clusters_shown", clusters_shown_},
                       {"near_threshold_shown", near_shown_},
                       {"rejects", static_cast<std::int64_t>(rejects_.size())}};
    {
      // Thumbnails and pages were written without a sync each: one for all, before publication.
      StepTimer timer(&report, "sync");
      SyncStaged(dir_);
    }
    stage_.Publish(manifest);
    report.counts = manifest.counts;
    report.facts["index"] = (stage_.dir() / "index.html").string();
    report.steps.push_back(StepTiming{"stage skeleton (rank 0)", stage_.skeleton_seconds(), 0});
    report.seconds = Seconds(start);
    report.throughput_items = pages_;
    return report;
  }

  std::map<std::string, std::string> Options() const { return ReportOptionTable().Identity(options_); }

  void WritePages() {
    WriteIndex();
    WriteClusters();
    WriteNearThreshold();
    WriteSubstitutes();
    WriteOutfits();
    WriteRejects();
    WriteDecisions();
  }

  // JPEG bytes of image `info` shrunk to `side` (empty when it cannot be decoded). Thread-safe.
  std::string RenderThumb(const ImageInfo& info, int side) const {
    DecodeLimits limits;
    limits.min_side = side;
    const DecodeResult decoded = DecodeImageFile(std::filesystem::path(image_root_) / info.file, limits);
    if (decoded.status != ImageStatus::kOk) return {};
    cv::Mat rgb(decoded.image.height, decoded.image.width, CV_8UC3,
                const_cast<std::uint8_t*>(decoded.image.rgb.data()));
    cv::Mat bgr, small;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    const double scale = std::min(1.0, static_cast<double>(side) / std::max(bgr.cols, bgr.rows));
    cv::resize(bgr, small,
               {std::max(1, static_cast<int>(std::lround(bgr.cols * scale))),
                std::max(1, static_cast<int>(std::lround(bgr.rows * scale)))},
               0, 0, cv::INTER_AREA);
    std::vector<std::uint8_t> jpeg;
    cv::imencode(".jpg", small, jpeg, {cv::IMWRITE_JPEG_QUALITY, 85});
    return std::string(jpeg.begin(), jpeg.end());
  }

  // Every thumbnail the pages asked for in the collecting pass: the previous run's where it has
  // the same picture, else decoded and shrunk, --threads at a time.
  void MakeThumbs() {
    std::vector<std::pair<std::int64_t, int>> todo;
    std::set<std::string> names;
    for (const auto& [id, side] : wanted_) {
      const ImageInfo& info = images_.at(id);
      if (!info.ok || image_root_.empty()) continue;
      const std::string name = ThumbName(info.checksum, side);
      if (made_.count(name) || !names.insert(name).second) continue;
      if (auto previous = PreviousThumb(name)) {
        ReuseOutput(*previous);
        made_.insert(name);
        ++thumbs_reused_;
        continue;
      }
      todo.emplace_back(id, side);
    }
    std::vector<std::string> jpegs(todo.size());
    ParallelFor(todo.size(), std::max(1, options_.threads),
                [&](std::size_t i) { jpegs[i] = RenderThumb(images_.at(todo[i].first), todo[i].second); });
    for (std::size_t i = 0; i < todo.size(); ++i) {
      if (jpegs[i].empty()) continue;
      const std::string name = ThumbName(images_.at(todo[i].first).checksum, todo[i].second);
      WriteOutput(name, jpegs[i]);
      made_.insert(name);
    }
    wanted_.clear();
  }

  // At most --max-shown of `items` (report/selection.h ShownSample).
  template <typename T, typename Name>
  std::vector<T> Shown(const std::vector<T>& items, std::size_t head, Name name) const {
    std::vector<T> out;
    for (const std::size_t i : ShownSample(items.size(), head, static_cast<std::size_t>(options_.max_shown),
                                           options_.sample_seed, [&](std::size_t k) { return name(items[k]); })) {
      out.push_back(items[i]);
    }
    return out;
  }

  // "N" or "N shown of M (...)": what a section's header says.
  std::string ShownOf(std::size_t shown, std::size_t total, const std::string& how) const {
    if (shown == total) return std::to_string(total);
    return std::to_string(shown) + " shown of " + std::to_string(total) + " (" + how + "; --max-shown " +
           std::to_string(options_.max_shown) + ")";
  }

  // The files the report reads besides the stages' outputs, recorded as its inputs: a change
  // to any of them means the report is redone. The manifests stand for their stages.
  static void AddInputs(Stage& stage) {
    const std::filesystem::path& run = stage.run();
    for (const auto& name : {"ingest/manifest.json", "embed/manifest.json", "dedup/manifest.json", "recs/manifest.json",
                             "eval/dedup.json", "eval/recs.json", "summaries/ingest.json", "summaries/embed.json",
                             "summaries/index.json", "summaries/dedup.json", "summaries/recs.json"}) {
      std::string outside;
      const auto path = InsideRun(run, name, &outside);
      if (path && std::filesystem::is_regular_file(*path)) stage.AddInput(DescribeFile(*path, name, -1));
    }
  }

 private:
  void Load() {
    const std::filesystem::path& run = options_.run;
    const StageManifest& ingest = stage_.Upstream("ingest");
    image_root_ = ingest.options.count("images") ? ingest.options.at("images") : "";
    embed_ = ReadEmbedRun(run);
    for (int k = 0; k < embed_.shard_count; ++k) {
      const EmbedShard shard = ReadVerifiedShard(embed_, k, ShardParts::kRowsWithNames);
      const auto rows = ReadIngestRows(run, k, shard.images);
      std::map<std::int64_t, std::set<std::string>> slots;
      for (const auto& g : shard.garments) slots[g.image_index].insert(g.slot);
      for (std::size_t r = 0; r < shard.images.size(); ++r) {
        const ImageRow& image = shard.images[r];
        ImageInfo info;
        info.key = image.key;
        info.product_id = image.product_id;
        info.column = rows[r][kIngestColumn];
        info.path = image.path;
        info.file = image.file;
        info.reason = image.reason;
        info.title = rows[r][kIngestTitle];
        info.category = rows[r][kIngestCategory];
        info.in_stock = rows[r][kIngestInStock] == "1";
        info.catalog_row = std::stoll(rows[r][kIngestRow]);
        info.ok = image.status == 0;
        info.width = image.width;
        info.height = image.height;
        info.checksum = image.checksum;
        info.outfit_photo = slots[static_cast<std::int64_t>(r)].size() >= 2;
        const std::int64_t id = ImageId(k, static_cast<std::int64_t>(r));
        images_[id] = info;
        if (info.ok && !info.outfit_photo && !product_shot_.count(info.product_id)) product_shot_[info.product_id] = id;
        if (!image_of_product_.count(info.product_id)) image_of_product_[info.product_id] = id;
      }
      for (std::size_t g = 0; g < shard.garments.size(); ++g) {
        garments_[ImageId(k, shard.garments[g].image_index)].push_back(shard.garments[g]);
      }
    }
    if (StageShown(stage_, "dedup")) {
      dedup_ = ReadDedupFile(run / "dedup" / "dedup.h5");
      decisions_ =
          ParseCsvText((run / "dedup" / "decisions.csv").string(), stage_.ReadVerified("dedup", "decisions.csv", false),
                       "image_a,image_b,decision,who,when,status,note");
      for (auto& row : decisions_) {
        for (auto& cell : row) cell = FromPeopleCell(cell);
      }
    }
    if (StageShown(stage_, "recs")) recs_ = ReadRecsFile(run / "recs" / "recs.h5");
    // Rejects: the catalog rows and images ingest refused, then the images embed could not read.
    const auto reject_rows =
        ParseCsvText((run / "ingest" / "rejects.csv").string(), stage_.ReadVerified("ingest", "rejects.csv", false),
                     "row,product_id,column,path,reason,detail");
    for (const auto& row : reject_rows) {
      rejects_.push_back({"ingest", row[0], FromPeopleCell(row[1]), FromPeopleCell(row[2]), FromPeopleCell(row[3]),
                          row[4] + (row[5].empty() ? "" : ": " + FromPeopleCell(row[5]))});
    }
    std::vector<std::int64_t> not_ok;  // in image id order
    for (const auto& [id, info] : images_) {
      if (!info.ok) not_ok.push_back(id);
    }
    std::sort(not_ok.begin(), not_ok.end());
    for (const std::int64_t id : not_ok) {
      const ImageInfo& info = images_.at(id);
      rejects_.push_back(
          {"embed", std::to_string(info.catalog_row), info.product_id, info.column, info.path, info.reason});
    }
  }

  // The previous run's thumbnails (nightly: --previous-run), as its report manifest lists them.
  void ReadPreviousThumbs() {
    if (options_.previous_run.empty()) return;
    std::string why;
    const auto manifest = ReadManifest(options_.previous_run / "report", &why);
    if (!manifest) return;
    for (const auto& entry : manifest->outputs) {
      if (entry.path.rfind("thumbs/", 0) == 0) previous_thumbs_.emplace(entry.path, entry);
    }
  }

  // The previous run's thumbnail `name` (its file, bytes and manifest entry), when it has one
  // that still matches that entry.
  struct Previous {
    std::filesystem::path path;
    std::string bytes;
    ManifestEntry entry;
  };
  std::optional<Previous> PreviousThumb(const std::string& name) {
    const auto found = previous_thumbs_.find(name);
    if (found == previous_thumbs_.end()) return std::nullopt;
    std::string why;
    const auto path = InsideRun(options_.previous_run / "report", name, &why);
    if (!path) return std::nullopt;
    try {
      std::string bytes = ReadFileBytes(*path);
      if (!MatchesEntry(bytes, found->second)) {
        return std::nullopt;
      }
      return Previous{*path, std::move(bytes), found->second};
    } catch (const InputError&) {
      return std::nullopt;
    }
  }

  // A thumbnail for image `id` (empty when it cannot be made), under thumbs/, named by the image's
  // content: the same picture has the same thumbnail file in every run, so a nightly report takes
  // the previous night's instead of decoding the image again.
  std::string Thumb(std::int64_t id, int side) {
    const auto key = std::make_pair(id, side);
    if (collecting_) {
      wanted_.insert(key);
      return {};
    }
    // The pages are the same in both passes, so MakeThumbs made (or failed to make) every
    // thumbnail asked for here: one that is not there could not be made.
    const ImageInfo& info = images_.at(id);
    if (!info.ok) return {};
    std::string name = ThumbName(info.checksum, side);
    return made_.count(name) ? name : std::string();
  }

  std::string ProductThumb(const std::string& product) {
    auto it = product_shot_.find(product);
    if (it == product_shot_.end()) it = image_of_product_.find(product);
    return it == product_shot_.end() || it == image_of_product_.end() ? "" : Thumb(it->second, options_.thumb_side);
  }

  std::string Title(const std::string& product) {
    const auto it = image_of_product_.find(product);
    return it == image_of_product_.end() ? "" : images_.at(it->second).title;
  }

  mu::data Common(const std::string& title) const {
    mu::data data;
    data.set("title", title);
    // The run's name, not the path it was given: a page may be shared outside the cluster.
    data.set("run", RunName(options_.run));
    data.set("code_version", options_.code_version);
    data.set("header", mu::partial([] { return std::string(report_templates::kHeader); }));
    data.set("footer", mu::partial([] { return std::string(report_templates::kFooter); }));
    data.set("pager", mu::partial([] { return std::string(report_templates::kPager); }));
    return data;
  }

  static void SetPager(mu::data* data, const std::string& stem, int page, int count) {
    mu::data pages{mu::data::type::list};
    for (int p = 1; p <= count; ++p) {
      mu::data item;
      item.set("number", std::to_string(p));
      item.set("href", stem + "-" + std::to_string(p) + ".html");
      item.set("current", p == page);
      pages.push_back(item);
    }
    data->set("pages", pages);
    data->set("page", std::to_string(page));
    data->set("page_count", std::to_string(count));
    if (page > 1) data->set("prev", stem + "-" + std::to_string(page - 1) + ".html");
    if (page < count) data->set("next", stem + "-" + std::to_string(page + 1) + ".html");
  }

  void Publish(const std::string& name, const char* page, const mu::data& data) {
    if (collecting_) return;
    mu::mustache renderer{std::string(page)};
    LB_CHECK(renderer.is_valid(), "report template: " + renderer.error_message());
    const std::string html = renderer.render(data);
    LB_CHECK(renderer.error_message().empty(), "report template: " + renderer.error_message());
    WriteOutput(name, html);
    ++pages_;
  }

  // Writes one output into the staging folder and describes it from the bytes in hand (the
  // skeleton would read each file back to checksum it).
  void WriteOutput(const std::string& name, std::string_view bytes) {
    WriteStagedFile(dir_ / name, bytes);
    outputs_.push_back(ManifestEntry{name, bytes.size(), FormatChecksum(Xxh3(bytes)), -1, ""});
  }

  // A previous run's output whose bytes were just checked against its manifest entry (which it
  // keeps: same name, size and checksum): a hard link to its file where the file system allows
  // one, else a copy. A night after old runs were deleted,
  // ext4 spent ~0.6 ms on each new file it created (looking through the recently deleted inodes)
  // and a link needs no inode: 3.4 s -> 0.4 s for the 5,000 thumbnails a 10,000-item night
  // reuses (docs/performance.md#nightly-runs). Publication replaces files, never rewrites one in
  // place, so the two runs never see each other's changes.
  void ReuseOutput(const Previous& previous) {
    std::error_code error;
    std::filesystem::create_hard_link(previous.path, dir_ / previous.entry.path, error);
    if (error) return WriteOutput(previous.entry.path, previous.bytes);  // another file system, or no links
    outputs_.push_back(previous.entry);
  }

  static std::string RenderSvg(const char* page, const mu::data& data) {
    mu::mustache renderer{std::string(page)};
    LB_CHECK(renderer.is_valid(), "report template: " + renderer.error_message());
    return renderer.render(data);
  }

  std::string Histogram() {
    below_floor_ = rejected_early_ = 0;
    if (!dedup_ || dedup_->candidates.empty()) return {};
    const int bins = 40, width = 640, height = 220, left = 40, right = 620, top = 20, bottom = 190;
    // The rule's deciding signal (the aligned correlation when verified, else the cosine);
    // values below the plot's floor count in its first bin, unreadable pairs (NaN) nowhere.
    const DedupRule& rule = dedup_->rule;
    const double low = std::floor(dedup_->signal_floor() * 100) / 100, high = 1.0;
    std::vector<int> counts(bins, 0);
    for (const auto& pair : dedup_->candidates) {
      const float signal = rule.signal(pair);
      if (std::isnan(signal)) continue;
      if (rule.verify && signal <= -1.0f) {  // decided before the alignment scored it: own count
        ++rejected_early_;
        continue;
      }
      if (signal < low) {
        ++below_floor_;
        continue;
      }
      const int b = std::clamp(static_cast<int>((signal - low) / (high - low) * bins), 0, bins - 1);
      ++counts[static_cast<std::size_t>(b)];
    }
    const int most = std::max(1, *std::max_element(counts.begin(), counts.end()));
    const double bar = static_cast<double>(right - left) / bins;
    auto x_of = [&](double value) { return left + (value - low) / (high - low) * (right - left); };
    mu::data data;
    for (const auto& [key, value] : std::map<std::string, int>{
             {"width", width}, {"height", height}, {"left", left}, {"right", right}, {"bottom", bottom}}) {
      data.set(key, std::to_string(value));
    }
    data.set("y_label", "pairs (most in one bin: " + std::to_string(most) + ")");
    mu::data bars{mu::data::type::list};
    for (int b = 0; b < bins; ++b) {
      const double h = (bottom - top) * static_cast<double>(counts[static_cast<std::size_t>(b)]) / most;
      mu::data item;
      item.set("x", Fixed(left + b * bar + 1, 1));
      item.set("y", Fixed(bottom - h, 1));
      item.set("w", Fixed(bar - 2, 1));
      item.set("h", Fixed(h, 1));
      item.set("label", Fixed(low + (high - low) * b / bins, 3) + "..");
      item.set("count", std::to_string(counts[static_cast<std::size_t>(b)]));
      bars.push_back(item);
    }
    data.set("bars", bars);
    mu::data marks{mu::data::type::list};
    for (const auto& [value, label] :
         {std::pair<double, std::string>{rule.threshold(), "rule"}, {rule.phash_threshold(), "with pHash"}}) {
      mu::data item;
      item.set("x", Fixed(x_of(value), 1));
      item.set("top", std::to_string(top));
      item.set("bottom", std::to_string(bottom));
      item.set("label_y", std::to_string(label == "rule" ? top - 6 : top + 8));  // the two may be close
      item.set("label", label + " " + Fixed(value, 3));
      marks.push_back(item);
    }
    data.set("marks", marks);
    mu::data ticks{mu::data::type::list};
    for (int t = 0; t <= 4; ++t) {
      const double value = low + (high - low) * t / 4;
      mu::data item;
      item.set("x", Fixed(x_of(value), 1));
      item.set("y", std::to_string(bottom + 16));
      item.set("label", Fixed(value, 3));
      ticks.push_back(item);
    }
    data.set("ticks", ticks);
    return RenderSvg(report_templates::kHistogram, data);
  }

  std::string Sweep(const nlohmann::json& eval) const {
    if (!eval.contains("sweep") || eval["sweep"].empty()) return {};
    const int width = 640, height = 240, left = 50, right = 560, top = 15, bottom = 205;
    const auto& sweep = eval["sweep"];
    const double low = sweep.front()["threshold"].get<double>(), high = sweep.back()["threshold"].get<double>();
    auto x_of = [&](double c) { return left + (high > low ? (c - low) / (high - low) : 0.0) * (right - left); };
    auto y_of = [&](double v) { return bottom - v * (bottom - top); };
    mu::data data;
    for (const auto& [key, value] : std::map<std::string, int>{{"width", width},
                                                               {"height", height},
                                                               {"left", left},
                                                               {"right", right},
                                                               {"top", top},
                                                               {"bottom", bottom}}) {
      data.set(key, std::to_string(value));
    }
    mu::data series{mu::data::type::list};
    int n = 0;
    for (const auto& [name, colour] : std::vector<std::pair<std::string, std::string>>{
             {"precision", "#1c7ed6"}, {"recall", "#f08c00"}, {"f1", "#2b8a3e"}}) {
      std::string points;
      for (const auto& point : sweep) {
        points +=
            Fixed(x_of(point["threshold"].get<double>()), 1) + "," + Fixed(y_of(point[name].get<double>()), 1) + " ";
      }
      mu::data item;
      item.set("points", points);
      item.set("colour", colour);
      item.set("name", name);
      item.set("legend_x", std::to_string(right + 10));
      item.set("legend_y", std::to_string(top + 15 + 16 * n++));
      series.push_back(item);
    }
    data.set("series", series);
    mu::data ticks{mu::data::type::list}, y_ticks{mu::data::type::list};
    for (int t = 0; t <= 4; ++t) {
      const double c = low + (high - low) * t / 4;
      mu::data x;
      x.set("x", Fixed(x_of(c), 1));
      x.set("y", std::to_string(bottom + 16));
      x.set("label", Fixed(c, 3));
      ticks.push_back(x);
      mu::data y;
      y.set("x", std::to_string(left - 6));
      y.set("y", Fixed(y_of(t / 4.0) + 4, 1));
      y.set("label", Fixed(t / 4.0, 2));
      y_ticks.push_back(y);
    }
    data.set("ticks", ticks);
    data.set("y_ticks", y_ticks);
    return RenderSvg(report_templates::kLines, data);
  }

  void WriteIndex() {
    mu::data data = Common("Overview");
    mu::data stages{mu::data::type::list};
    for (const auto& stage : run_states_) {
      if (stage.stage == "report") continue;
      mu::data item;
      item.set("name", stage.stage);
      item.set("state", stage.state);
      item.set("counts", stage.detail);
      stages.push_back(item);
    }
    data.set("stages", stages);
    std::map<std::pair<std::string, std::string>, int> reasons;
    for (const auto& reject : rejects_) ++reasons[{reject[0], ReasonName(reject[5])}];
    mu::data reason_list{mu::data::type::list};
    for (const auto& [key, count] : reasons) {
      mu::data item;
      item.set("where", key.first);
      item.set("reason", key.second);
      item.set("count", std::to_string(count));
      reason_list.push_back(item);
    }
    data.set("reasons", reason_list);
    data.set("has_rejects", !rejects_.empty());
    mu::data throughput{mu::data::type::list};
    for (const auto& stage : {"ingest", "embed", "index", "dedup", "recs"}) {
      const auto summary = ReadJson(options_.run / "summaries" / (std::string(stage) + ".json"));
      if (!summary) continue;
      mu::data item;
      const std::string unit = [&] {
        for (const auto& [key, value] : summary->items()) {
          if (key.size() > 6 && key.substr(key.size() - 6) == "_per_s") return key.substr(0, key.size() - 6);
        }
        return std::string("items");
      }();
      const double rate = summary->value(unit + "_per_s", 0.0);
      const int ranks = std::max(1, std::stoi(summary->value("ranks", std::string("1"))));
      item.set("stage", stage);
      item.set("status", summary->value("status", std::string("?")));
      item.set("ranks", std::to_string(ranks));
      item.set("seconds", Fixed(summary->value("seconds", 0.0), 2));
      item.set("rate", Fixed(rate, 1));
      item.set("unit", unit);
      item.set("rate_per_rank", Fixed(rate / ranks, 1));
      item.set("blas", summary->value("blas_core", std::string("")));
      throughput.push_back(item);
    }
    data.set("has_throughput", !throughput.is_empty_list());
    data.set("throughput", throughput);
    const std::string histogram = Histogram();
    if (!histogram.empty()) {
      data.set("histogram", histogram);
      data.set("histogram_signal", dedup_->rule.verify ? "Aligned correlation" : "Cosine");
      data.set("below_floor", std::to_string(below_floor_));
      data.set("rejected_early", std::to_string(rejected_early_));
    }
    if (const auto eval = ReadJson(options_.run / "eval" / "dedup.json")) {
      const std::string sweep = Sweep(*eval);
      if (!sweep.empty()) {
        data.set("sweep", sweep);
        data.set("f1", Fixed(eval->value("f1", 0.0), 3));
        data.set("truth", std::filesystem::path(eval->value("truth", std::string("?"))).filename().string());
        data.set("sweep_signal",
                 eval->value("sweep_signal", std::string("cosine")) == "aligned" ? "aligned correlation" : "cosine");
      }
    }
    if (const auto eval = ReadJson(options_.run / "eval" / "recs.json")) {
      mu::data metrics{mu::data::type::list};
      for (const auto& [key, value] : eval->items()) {
        if (!value.is_number()) continue;
        mu::data item;
        item.set("name", key);
        item.set("value", Fixed(value.get<double>(), 3));
        metrics.push_back(item);
      }
      mu::data block;
      block.set("metrics", metrics);
      data.set("recs_eval", block);
    }
    std::set<std::int64_t> cluster_ids;
    if (dedup_) cluster_ids.insert(dedup_->cluster_id.begin(), dedup_->cluster_id.end());
    data.set("clusters", std::to_string(cluster_ids.size()));
    data.set("pairs", std::to_string(dedup_ ? dedup_->pairs.size() : 0));
    data.set("candidates", std::to_string(dedup_ ? dedup_->candidates.size() : 0));
    data.set("decisions", std::to_string(decisions_.size()));
    data.set("decisions_overriding",
             std::to_string(std::count_if(decisions_.begin(), decisions_.end(), [](const auto& d) {
               return d[5] == DecisionStatusName(DecisionStatus::kOverridesRule);
             })));
    data.set("decisions_unmatched",
             std::to_string(std::count_if(decisions_.begin(), decisions_.end(), [](const auto& d) {
               return d[5] == DecisionStatusName(DecisionStatus::kUnmatched);
             })));
    std::int64_t out_of_stock = 0;
    if (recs_)
      for (const auto& p : recs_->products) out_of_stock += p.in_stock ? 0 : 1;
    data.set("out_of_stock", std::to_string(out_of_stock));
    std::set<std::int64_t> photos;
    if (recs_)
      for (const auto& row : recs_->outfits) photos.insert(row.source_image);
    data.set("outfit_photos", std::to_string(photos.size()));
    data.set("rejects", std::to_string(rejects_.size()));
    Publish("index.html", report_templates::kIndex, data);
  }

  template <typename Fill>
  void Paginate(const std::string& stem, const std::string& title, const char* page, std::size_t total, int page_size,
                Fill fill) {
    const int count = std::max(
        1, static_cast<int>((total + static_cast<std::size_t>(page_size) - 1) / static_cast<std::size_t>(page_size)));
    for (int p = 1; p <= count; ++p) {
      mu::data data = Common(title + (count > 1 ? " " + std::to_string(p) : ""));
      SetPager(&data, stem, p, count);
      data.set("total", std::to_string(total));
      const std::size_t begin = static_cast<std::size_t>(p - 1) * static_cast<std::size_t>(page_size);
      fill(begin, std::min(total, begin + static_cast<std::size_t>(page_size)), &data);
      Publish(stem + "-" + std::to_string(p) + ".html", page, data);
    }
  }

  void WriteClusters() {
    std::map<std::int64_t, std::vector<std::pair<std::int64_t, bool>>> members;  // cluster -> (image, representative)
    std::map<std::int64_t, std::int64_t> cluster_of;
    if (dedup_) {
      for (std::size_t i = 0; i < dedup_->cluster_image.size(); ++i) {
        members[dedup_->cluster_id[i]].emplace_back(dedup_->cluster_image[i], dedup_->representative[i] != 0);
        cluster_of[dedup_->cluster_image[i]] = dedup_->cluster_id[i];
      }
    }
    clusters_ = static_cast<std::int64_t>(members.size());
    // The largest first (then by id); a seeded sample of the rest fills --max-shown.
    std::vector<std::int64_t> ids_by_id;
    std::vector<std::size_t> sizes;
    for (const auto& [id, images] : members) {
      ids_by_id.push_back(id);
      sizes.push_back(images.size());
    }
    std::vector<std::int64_t> all;
    for (const std::size_t i : LargestFirst(sizes)) all.push_back(ids_by_id[i]);
    const std::vector<std::int64_t> ids =
        Shown(all, static_cast<std::size_t>(options_.max_shown) / 2,
              [&](std::int64_t id) { return images_.at(members[id].front().first).key; });
    clusters_shown_ = static_cast<std::int64_t>(ids.size());
    std::map<std::int64_t, std::vector<std::size_t>> pairs_of;  // cluster -> its pairs
    if (dedup_) {
      for (std::size_t i = 0; i < dedup_->pairs.size(); ++i) pairs_of[cluster_of[dedup_->pairs[i].a]].push_back(i);
    }
    Paginate("clusters", "Duplicates", report_templates::kClusters, ids.size(), options_.page_size,
             [&](std::size_t begin, std::size_t end, mu::data* data) {
               data->set("total", ShownOf(ids.size(), all.size(), "the largest half, then a seeded sample"));
               data->set("keep", dedup_ ? dedup_->keep : "");
               mu::data clusters{mu::data::type::list};
               for (std::size_t c = begin; c < end; ++c) {
                 const std::int64_t id = ids[c];
                 mu::data card;
                 card.set("id", std::to_string(id));
                 card.set("size", std::to_string(members[id].size()));
                 mu::data images{mu::data::type::list};
                 for (const auto& [image, keep] : members[id]) {
                   const ImageInfo& info = images_.at(image);
                   mu::data item;
                   item.set("thumb", Thumb(image, options_.thumb_side));
                   item.set("key", info.key);
                   item.set("title", info.title);
                   item.set("keep", keep);
                   images.push_back(item);
                 }
                 card.set("images", images);
                 mu::data pairs{mu::data::type::list};
                 for (const std::size_t i : pairs_of[id]) {
                   const auto& pair = dedup_->pairs[i];
                   mu::data item;
                   item.set("a", images_.at(pair.a).key);
                   item.set("b", images_.at(pair.b).key);
                   item.set("cosine", Fixed(pair.cosine, 4));
                   item.set("hamming", std::to_string(pair.hamming));
                   item.set("aligned", std::isnan(pair.aligned) ? std::string("-") : Fixed(pair.aligned, 4));
                   item.set("kind", dedup_->pair_kind[i] == 0 ? "same_product" : "cross_product");
                   item.set("reviewer", dedup_->pair_decided_by[i] == static_cast<std::int8_t>(DecidedBy::kReviewer));
                   pairs.push_back(item);
                 }
                 card.set("pairs", pairs);
                 clusters.push_back(card);
               }
               data->set("clusters", clusters);
             });
  }

  // The cross-product candidates nearest the rule's deciding threshold, on either side: where
  // the rule is least sure, and a reviewer's decision (decisions.csv) matters most. The
  // --max-shown nearest, and how many were scored.
  void ChooseNearThreshold() {
    if (!dedup_) return;
    std::vector<std::size_t> cross;  // cross-product candidates, by index
    std::vector<float> signals;
    for (std::size_t i = 0; i < dedup_->candidates.size(); ++i) {
      const ScoredPair& pair = dedup_->candidates[i];
      if (images_.at(pair.a).product_id == images_.at(pair.b).product_id) continue;
      cross.push_back(i);
      signals.push_back(dedup_->rule.signal(pair));
    }
    near_total_ = static_cast<std::size_t>(
        std::count_if(signals.begin(), signals.end(), [](float signal) { return !std::isnan(signal); }));
    for (const std::size_t k :
         NearestFirst(signals, dedup_->rule.threshold(), static_cast<std::size_t>(options_.max_shown)))
      near_.push_back(cross[k]);
  }

  void WriteNearThreshold() {
    const std::vector<std::size_t>& near = near_;
    const std::size_t total = near_total_;
    near_shown_ = static_cast<std::int64_t>(near.size());
    Paginate("near", "Near the rule", report_templates::kNear, near.size(), options_.page_size,
             [&](std::size_t begin, std::size_t end, mu::data* data) {
               data->set("total", ShownOf(near.size(), total, "the nearest to the threshold"));
               data->set("signal", dedup_ ? dedup_->rule.signal_name() : "");
               data->set("threshold", dedup_ ? Fixed(dedup_->rule.threshold(), 3) : "");
               mu::data rows{mu::data::type::list};
               for (std::size_t k = begin; k < end; ++k) {
                 const ScoredPair& pair = dedup_->candidates[near[k]];
                 mu::data item;
                 item.set("a", images_.at(pair.a).key);
                 item.set("b", images_.at(pair.b).key);
                 item.set("thumb_a", Thumb(pair.a, options_.thumb_side));
                 item.set("thumb_b", Thumb(pair.b, options_.thumb_side));
                 item.set("cosine", Fixed(pair.cosine, 4));
                 item.set("hamming", std::to_string(pair.hamming));
                 item.set("aligned", std::isnan(pair.aligned) ? std::string("-") : Fixed(pair.aligned, 4));
                 item.set("verified_by", VerifiedByName(static_cast<VerifiedBy>(pair.verified_by)));
                 item.set("duplicate", IsDuplicate(dedup_->rule, pair));
                 rows.push_back(item);
               }
               data->set("pairs", rows);
             });
  }

  void WriteSubstitutes() {
    std::map<std::int64_t, std::vector<const SubstituteRow*>> lists;
    if (recs_) {
      for (const auto& row : recs_->substitutes) {
        if (!recs_->products[static_cast<std::size_t>(row.product)].in_stock) lists[row.product].push_back(&row);
      }
    }
    std::vector<std::int64_t> all;
    for (const auto& [p, unused] : lists) all.push_back(p);
    const std::vector<std::int64_t> products =
        Shown(all, 0, [&](std::int64_t p) { return recs_->products[static_cast<std::size_t>(p)].id; });
    Paginate(
        "substitutes", "Substitutes", report_templates::kSubstitutes, products.size(), options_.page_size,
        [&](std::size_t begin, std::size_t end, mu::data* data) {
          data->set("total", ShownOf(products.size(), all.size(), "a seeded sample"));
          mu::data cards{mu::data::type::list};
          for (std::size_t i = begin; i < end; ++i) {
            const RecsProduct& product = recs_->products[static_cast<std::size_t>(products[i])];
            mu::data card;
            card.set("id", product.id);
            card.set("title", Title(product.id));
            card.set("category", product.category + (product.category_source == "zero-shot" ? " (zero-shot)" : ""));
            card.set("thumb", ProductThumb(product.id));
            mu::data items{mu::data::type::list};
            for (const SubstituteRow* row : lists[products[i]]) {
              const std::string& id = recs_->products[static_cast<std::size_t>(row->substitute)].id;
              mu::data item;
              item.set("rank", std::to_string(row->rank));
              item.set("id", id);
              item.set("title", Title(id));
              item.set("score", Fixed(row->score, 3));
              item.set("thumb", row->image >= 0 && images_.count(row->image) ? Thumb(row->image, options_.thumb_side)
                                                                             : ProductThumb(id));
              items.push_back(item);
            }
            card.set("substitutes", items);
            cards.push_back(card);
          }
          data->set("products", cards);
        });
  }

  void WriteOutfits() {
    // (product, photo) -> slot -> rows, in the table's order.
    std::map<std::pair<std::int64_t, std::int64_t>, std::map<std::string, std::vector<const OutfitRow*>>> looks;
    if (recs_)
      for (const auto& row : recs_->outfits) looks[{row.product, row.source_image}][row.slot].push_back(&row);
    std::vector<std::pair<std::int64_t, std::int64_t>> all;
    for (const auto& [key, unused] : looks) all.push_back(key);
    const auto keys = Shown(all, 0, [&](const std::pair<std::int64_t, std::int64_t>& key) {
      return images_.at(key.second).key + "/" + recs_->products[static_cast<std::size_t>(key.first)].id;
    });
    const int per_page = std::max(1, options_.page_size / 2);
    Paginate("outfits", "Outfits", report_templates::kOutfits, keys.size(), per_page,
             [&](std::size_t begin, std::size_t end, mu::data* data) {
               data->set("total", ShownOf(keys.size(), all.size(), "a seeded sample"));
               mu::data cards{mu::data::type::list};
               for (std::size_t i = begin; i < end; ++i) {
                 const auto [product, photo] = keys[i];
                 const ImageInfo& info = images_.at(photo);
                 const int source_w = std::max(1, info.width), source_h = std::max(1, info.height);
                 const double scale = static_cast<double>(options_.photo_side) / std::max(source_w, source_h);
                 mu::data card;
                 card.set("key", info.key);
                 card.set("product", recs_->products[static_cast<std::size_t>(product)].id);
                 card.set("thumb", Thumb(photo, options_.photo_side));
                 card.set("width", std::to_string(static_cast<int>(std::lround(source_w * scale))));
                 card.set("height", std::to_string(static_cast<int>(std::lround(source_h * scale))));
                 card.set("source_width", std::to_string(source_w));
                 card.set("source_height", std::to_string(source_h));
                 mu::data boxes{mu::data::type::list};
                 for (const auto& g : garments_[photo]) {
                   mu::data box;
                   box.set("x", std::to_string(g.box[0]));
                   box.set("y", std::to_string(g.box[1]));
                   box.set("w", std::to_string(g.box[2]));
                   box.set("h", std::to_string(g.box[3]));
                   box.set("label_y", std::to_string(std::max(g.box[1] - 4, 12)));
                   box.set("slot", g.slot);
                   box.set("colour", SlotColour(g.slot));
                   box.set("stroke", Fixed(std::max(2.0, source_w / 150.0), 1));
                   box.set("font", Fixed(std::max(12.0, source_w / 30.0), 1));
                   boxes.push_back(box);
                 }
                 card.set("boxes", boxes);
                 mu::data slots{mu::data::type::list};
                 for (const auto& [slot, rows] : looks[keys[i]]) {
                   mu::data entry;
                   entry.set("slot", slot);
                   entry.set("colour", SlotColour(slot));
                   mu::data items{mu::data::type::list};
                   for (const OutfitRow* row : rows) {
                     const std::string& id = recs_->products[static_cast<std::size_t>(row->item)].id;
                     mu::data item;
                     item.set("rank", std::to_string(row->rank));
                     item.set("id", id);
                     item.set("title", Title(id));
                     item.set("score", Fixed(row->score, 3));
                     item.set("thumb", ProductThumb(id));
                     items.push_back(item);
                   }
                   entry.set("items", items);
                   slots.push_back(entry);
                 }
                 card.set("slots", slots);
                 cards.push_back(card);
               }
               data->set("outfits", cards);
             });
  }

  // A section that is a plain table (decisions, rejects): its first --max-shown rows, the
  // columns under the template's names.
  template <typename Rows>
  void WriteTable(const std::string& stem, const std::string& title, const char* page, const Rows& rows,
                  const std::vector<const char*>& names, const char* list, const std::string& where) {
    const std::size_t shown = std::min(rows.size(), static_cast<std::size_t>(options_.max_shown));
    Paginate(stem, title, page, shown, options_.reject_page_size,
             [&](std::size_t begin, std::size_t end, mu::data* data) {
               data->set("total", ShownOf(shown, rows.size(), where));
               mu::data items{mu::data::type::list};
               for (std::size_t i = begin; i < end; ++i) {
                 mu::data item;
                 for (std::size_t k = 0; k < names.size(); ++k) item.set(names[k], rows[i][k]);
                 items.push_back(item);
               }
               data->set(list, items);
             });
  }

  void WriteDecisions() {
    WriteTable("decisions", "Decisions", report_templates::kDecisions, decisions_,
               {"a", "b", "decision", "who", "when", "status", "note"}, "decisions",
               "the first; all are in dedup/decisions.csv");
  }

  void WriteRejects() {
    WriteTable("rejects", "Rejects", report_templates::kRejects, rejects_,
               {"stage", "row", "product", "column", "path", "reason"}, "rejects",
               "the first; all are in ingest/rejects.csv and the embed shards");
  }

  const ReportOptions& options_;
  Stage& stage_;
  std::filesystem::path dir_;  // the staging folder the pages are written into
  std::string image_root_;
  EmbedRun embed_;
  std::unordered_map<std::int64_t, ImageInfo> images_;  // by image id (ImageId)
  std::vector<StageState> run_states_;                  // InspectRun, for the overview
  std::vector<std::size_t> near_;                       // ChooseNearThreshold: the candidates shown near the threshold
  std::size_t near_total_ = 0;                          // of how many scored cross-product ones
  std::map<std::string, std::int64_t> product_shot_, image_of_product_;
  std::map<std::int64_t, std::vector<GarmentRow>> garments_;
  std::optional<DedupFile> dedup_;
  std::optional<RecsFile> recs_;
  std::vector<std::array<std::string, 6>> rejects_;       // stage, row, product, column, path, reason
  std::vector<std::vector<std::string>> decisions_;       // RUN/dedup/decisions.csv rows
  std::set<std::string> made_;                            // thumbnail files written
  std::map<std::string, ManifestEntry> previous_thumbs_;  // the previous run's, by name
  std::int64_t thumbs_reused_ = 0;
  std::vector<ManifestEntry> outputs_;
  std::int64_t pages_ = 0, clusters_ = 0, clusters_shown_ = 0, near_shown_ = 0;
  std::int64_t below_floor_ = 0, rejected_early_ = 0;  // candidates the histogram's bars leave out
  bool collecting_ = false;                            // the first pass: pages are not written
  std::set<std::pair<std::int64_t, int>> wanted_;      // thumbnails the first pass asked for
};

}  // namespace

const OptionTable<ReportOptions>& ReportOptionTable() {
  static const OptionTable<ReportOptions> table = [] {
    using O = ReportOptions;
    OptionTable<O> t;
    t.Path(
        "run", "DIR", [](O& o) -> std::filesystem::path& { return o.run; }, true,
        "the run folder (reads every stage; writes DIR/report)");
    t.Integer<int>(
        "page-size", "N", [](O& o) -> int& { return o.page_size; }, 100, 1, 100000, OptionEffect::kOutput,
        "clusters, products or photos per page (outfits: half as many)");
    t.Integer<int>(
        "reject-page-size", "N", [](O& o) -> int& { return o.reject_page_size; }, 500, 1, 1000000,
        OptionEffect::kOutput, "rejected rows per page");
    t.Integer<int>(
        "thumb-side", "PX", [](O& o) -> int& { return o.thumb_side; }, 160, 16, 1024, OptionEffect::kOutput,
        "longest side of a thumbnail");
    t.Integer<int>(
        "photo-side", "PX", [](O& o) -> int& { return o.photo_side; }, 360, 64, 4096, OptionEffect::kOutput,
        "longest side of an outfit photo");
    t.Integer<int>(
        "max-shown", "N", [](O& o) -> int& { return o.max_shown; }, 300, 1, 1000000, OptionEffect::kOutput,
        "cards (rows) per section at most: the largest clusters, then a seeded sample; the candidates nearest the "
        "rule; a seeded sample of substitutes and outfits; the first rejects and decisions. Counts and plots cover "
        "everything");
    t.Integer<std::uint64_t>(
        "sample-seed", "S", [](O& o) -> std::uint64_t& { return o.sample_seed; }, 1, 0,
        std::numeric_limits<std::uint64_t>::max(), OptionEffect::kOutput, "which seeded sample a section shows");
    t.Integer<int>(
        "threads", "N", [](O& o) -> int& { return o.threads; }, 2, 1, 256, OptionEffect::kResource,
        "threads that decode and shrink thumbnails");
    t.Path(
        "previous-run", "DIR", [](O& o) -> std::filesystem::path& { return o.previous_run; }, false,
        "a finished run whose thumbnails are taken for the same pictures instead of decoding the images again "
        "(lookbook run passes it under a runs root)");
    t.Force([](O& o) -> RerunPolicy& { return o.rerun; }, "redo the report even when it is valid");
    return t;
  }();
  return table;
}

StageReport RunReport(const ReportOptions& options) {
  const auto start = Clock::now();
  const std::filesystem::path dir = options.run / "report";
  Stage stage(nullptr, options.run, "report", options.code_version);
  ReportBuilder builder(options, stage);
  ReportBuilder::AddInputs(stage);
  stage.Key().Add("options", OptionsHash(builder.Options()));
  if (options.rerun == RerunPolicy::kReuseValid) {
    std::string why;
    if (stage.Fresh(&why)) {
      StageReport report;
      report.stage = "report";
      report.status = "skipped";
      report.facts["run"] = options.run.string();
      report.facts["index"] = (dir / "index.html").string();
      report.seconds = Seconds(start);
      spdlog::info("report is valid: nothing to do");
      return report;
    }
    spdlog::info("writing the report ({})", why);
  }
  return builder.Build();
}

}  // namespace lookbook
