// lookbook query --run RUN --image PHOTO [--image PHOTO ...] [--text TEXT ...] [--top K] [--format json|csv]
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "catalog/csv.h"
#include "index/vector_index.h"
#include "jobs/command.h"
#include "jobs/device_options.h"
#include "jobs/options.h"
#include "recs/query.h"
#include "util/error.h"

namespace lookbook {

namespace {

struct QueryCommandOptions {
  QueryOptions query;
  std::vector<std::string> images, texts;
  std::string format = "json";
  int threads = 1;
};

const OptionTable<QueryCommandOptions>& QueryOptionTable() {
  static const OptionTable<QueryCommandOptions> table = [] {
    using O = QueryCommandOptions;
    OptionTable<O> t;
    t.Path(
        "run", "DIR", [](O& o) -> std::filesystem::path& { return o.query.run; }, true,
        "a run with its embed, index and recs stages");
    t.Add(
        OptionSpec{"image", "PHOTO", "", false, true, "", "a photo to segment and match (repeatable)",
                   OptionEffect::kControl},
        [](const std::vector<std::string>& values, O* out) { out->images = values; },
        [](const O&) { return std::string(); });
    t.Add(
        OptionSpec{"text", "TEXT", "", false, true, "", "a text to match against every product (repeatable)",
                   OptionEffect::kControl},
        [](const std::vector<std::string>& values, O* out) { out->texts = values; },
        [](const O&) { return std::string(); });
    t.Integer<int>(
        "top", "K", [](O& o) -> int& { return o.query.top_k; }, 5, 1, 1000, OptionEffect::kOutput,
        "matches per garment or text");
    t.Text("format", "F", [](O& o) -> std::string& { return o.format; }, "json", OptionEffect::kOutput,
           "json: one object per line (a garment: image, slot, box, confidence, matches; a text: text, matches; a "
           "photo that could not be read: image, error) | csv: one row per match",
           {"json", "csv"});
    t.Flag(
        "include-out-of-stock", [](O& o) -> bool& { return o.query.include_out_of_stock; }, OptionEffect::kOutput,
        "match out-of-stock products too");
    t.Path(
        "model", "BUNDLE", [](O& o) -> std::filesystem::path& { return o.query.model; }, false,
        "CLIP bundle; it must be the one the embed stage ran (sha256)");
    t.Path(
        "models-root", "DIR", [](O& o) -> std::filesystem::path& { return o.query.models_root; }, false,
        "a folder of trusted bundles: those whose sha256 the embed stage ran are loaded when --model or "
        "--segmenter is not given");
    t.Path(
        "segmenter", "BUNDLE", [](O& o) -> std::filesystem::path& { return o.query.segmenter; }, false,
        "segmenter bundle; it must be the one the embed stage ran (sha256)");
    t.Integer<int>(
        "nprobe", "N", [](O& o) -> int& { return o.query.nprobe; }, 16, 1, 65536, OptionEffect::kOutput,
        "inverted lists searched first");
    t.Integer<int>(
        "threads", "N", [](O& o) -> int& { return o.threads; }, 1, 1, 256, OptionEffect::kResource,
        "FAISS (OpenMP) threads");
    AddDeviceOptions(&t, [](O& o) -> InferenceOptions& { return o.query.inference; });
    return t;
  }();
  return table;
}

}  // namespace

std::vector<OptionSpec> QuerySpecs() { return QueryOptionTable().specs(); }

int RunQueryCommand(const po::variables_map& vm, const CommandContext& context) {
  QueryCommandOptions parsed;
  QueryOptionTable().Parse(GivenValues(vm, QueryOptionTable().specs()), &parsed);
  const QueryOptions& options = parsed.query;
  const std::vector<std::string>& images = parsed.images;
  const std::vector<std::string>& texts = parsed.texts;
  if (images.empty() && texts.empty()) throw UsageError("give --image or --text");
  const std::string& format = parsed.format;
  SetIndexThreads(parsed.threads);

  using Clock = std::chrono::steady_clock;
  const auto load_start = Clock::now();
  const QueryEngine engine = QueryEngine::Load(options);
  const double load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();

  std::string csv;
  if (format == "csv") {
    csv = "query,slot,box_x,box_y,box_w,box_h,rank,product_id,score,note\n";
  }
  auto matches_json = [](const std::vector<QueryMatch>& matches) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& match : matches) out.push_back({{"product_id", match.product_id}, {"score", match.score}});
    return out;
  };
  // One row per match; a query with no match (no garment, a text that could not be read) still
  // gets one row, with the reason in `note`.
  auto add_csv = [&](const std::string& query, const std::string& slot, const std::array<int, 4>* box,
                     const std::vector<QueryMatch>& matches, const std::string& note) {
    const std::string x = box ? std::to_string((*box)[0]) : "", y = box ? std::to_string((*box)[1]) : "",
                      w = box ? std::to_string((*box)[2]) : "", h = box ? std::to_string((*box)[3]) : "";
    if (matches.empty()) AppendCsvRow({query, slot, x, y, w, h, "", "", "", note}, &csv);
    for (std::size_t r = 0; r < matches.size(); ++r) {
      AppendCsvRow({query, slot, x, y, w, h, std::to_string(r + 1), matches[r].product_id,
                    std::to_string(matches[r].score), note},
                   &csv);
    }
  };

  std::int64_t rejected = 0, garments = 0, no_garment = 0;
  const auto query_start = Clock::now();
  for (const auto& image : images) {
    const PhotoResult result = engine.QueryPhoto(image);
    if (!result.error.empty()) {
      ++rejected;
      spdlog::warn("{}: rejected: {}", image, result.error);
      if (format == "json")
        std::cout << nlohmann::json{{"image", image}, {"error", result.error}}.dump() << "\n";
      else
        add_csv(image, "", nullptr, {}, "rejected: " + result.error);
      continue;
    }
    if (result.garments.empty()) {  // answered, not silent: one record that says so
      ++no_garment;
      spdlog::warn("{}: no garment found", image);
      if (format == "json")
        std::cout << nlohmann::json{{"image", image}, {"garments", 0}, {"warning", "no garment found"}}.dump() << "\n";
      else
        add_csv(image, "", nullptr, {}, "no garment found");
    }
    for (const auto& garment : result.garments) {
      ++garments;
      if (format == "json") {
        std::cout << nlohmann::json{{"image", image},
                                    {"slot", garment.slot},
                                    {"box", garment.box},
                                    {"confidence", garment.confidence},
                                    {"matches", matches_json(garment.matches)}}
                         .dump()
                  << "\n";
      } else {
        add_csv(image, garment.slot, &garment.box, garment.matches, "");
      }
    }
  }
  for (const auto& text : texts) {
    // Every text gets an answer: an empty one, or one whose every word the text tower does not
    // know (it would embed as an empty text and match whatever that matches), is rejected with
    // why; a text cut to the context length, or with some unknown words, is matched with a
    // warning and says so.
    const TextTokens tokens = engine.CountText(text);
    std::string error, warning;
    if (tokens.tokens == 0) {
      error = "empty text: no word to match";
    } else if (tokens.unknown == tokens.tokens) {
      error = "no word of this text is known to the text model (" + std::to_string(tokens.unknown) + " unknown)";
    } else {
      if (tokens.kept < tokens.tokens) {
        warning = "cut to the model's context: " + std::to_string(tokens.kept) + " of " +
                  std::to_string(tokens.tokens) + " tokens read";
      }
      if (tokens.unknown > 0) {
        warning += std::string(warning.empty() ? "" : "; ") + std::to_string(tokens.unknown) + " of " +
                   std::to_string(tokens.tokens) + " words unknown to the text model";
      }
    }
    const std::string shown = text.size() > 60 ? text.substr(0, 60) + "..." : text;
    if (!error.empty()) {
      ++rejected;
      spdlog::warn("text '{}': rejected: {}", shown, error);
      if (format == "json")
        std::cout << nlohmann::json{{"text", text}, {"error", error}}.dump() << "\n";
      else
        add_csv(text, "", nullptr, {}, "rejected: " + error);
      continue;
    }
    if (!warning.empty()) spdlog::warn("text '{}': {}", shown, warning);
    const auto matches = engine.QueryText(text);
    if (format == "json") {
      nlohmann::json record{{"text", text},
                            {"matches", matches_json(matches)},
                            {"tokens", tokens.tokens},
                            {"truncated", tokens.kept < tokens.tokens},
                            {"unknown_words", tokens.unknown}};
      if (!warning.empty()) record["warning"] = warning;
      std::cout << record.dump() << "\n";
    } else {
      add_csv(text, "", nullptr, matches, warning);
    }
  }
  std::cout << csv << std::flush;
  const double query_seconds = std::chrono::duration<double>(Clock::now() - query_start).count();
  const auto queries = static_cast<double>(images.size() + texts.size());
  spdlog::info(
      "{} photos and texts ({} rejected), {} garments, {} photo(s) without a garment, {} texts, in {:.3f} s ({:.3f} s "
      "per query) after {:.2f} s loading",
      images.size(), rejected, garments, no_garment, texts.size(), query_seconds, query_seconds / queries,
      load_seconds);
  (void)context;
  return rejected > 0 ? kExitInputError : kExitOk;
}

}  // namespace lookbook
