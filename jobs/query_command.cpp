// lookbook query --run RUN --image PHOTO [--image PHOTO ...] [--text TEXT ...] [--top K] [--format json|csv]
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "catalog/csv.h"
#include "index/vector_index.h"
#include "jobs/command.h"
#include "recs/query.h"
#include "util/error.h"

namespace lookbook {

void DescribeQuery(po::options_description* options) {
  options->add_options()("run", po::value<std::string>()->required()->value_name("DIR"),
                         "a run with its embed, index and recs stages")(
      "image", po::value<std::vector<std::string>>()->value_name("PHOTO"), "a photo to segment and match (repeatable)")(
      "text", po::value<std::vector<std::string>>()->value_name("TEXT"),
      "a text to match against every product (repeatable)")("top", po::value<int>()->default_value(5)->value_name("K"),
                                                            "matches per garment or text, 1..1000")(
      "format", po::value<std::string>()->default_value("json")->value_name("F"),
      "json: one object per line (a garment: image, slot, box, confidence, matches; a text: text, matches; "
      "a photo that could not be read: image, error) | csv: one row per match")(
      "include-out-of-stock", po::bool_switch(), "match out-of-stock products too")(
      "model", po::value<std::string>()->value_name("BUNDLE"), "CLIP bundle (default: the one the embed stage ran)")(
      "segmenter", po::value<std::string>()->value_name("BUNDLE"),
      "segmenter bundle (default: the one the embed stage ran)")(
      "nprobe", po::value<int>()->default_value(16)->value_name("N"), "inverted lists searched first")(
      "threads", po::value<int>()->default_value(1)->value_name("N"), "FAISS (OpenMP) threads");
}

int RunQueryCommand(const po::variables_map& vm, const CommandContext& context) {
  QueryOptions options;
  options.run = vm["run"].as<std::string>();
  options.top_k = vm["top"].as<int>();
  if (options.top_k < 1 || options.top_k > 1000) throw UsageError("--top must be in 1..1000");
  options.nprobe = vm["nprobe"].as<int>();
  if (options.nprobe < 1) throw UsageError("--nprobe must be at least 1");
  options.include_out_of_stock = vm["include-out-of-stock"].as<bool>();
  if (vm.count("model")) options.model = vm["model"].as<std::string>();
  if (vm.count("segmenter")) options.segmenter = vm["segmenter"].as<std::string>();
  const std::vector<std::string> images =
      vm.count("image") ? vm["image"].as<std::vector<std::string>>() : std::vector<std::string>{};
  const std::vector<std::string> texts =
      vm.count("text") ? vm["text"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (images.empty() && texts.empty()) throw UsageError("give --image or --text");
  const std::string format = vm["format"].as<std::string>();
  if (format != "json" && format != "csv") throw UsageError("--format must be json or csv");
  const int threads = vm["threads"].as<int>();
  if (threads < 1 || threads > 256) throw UsageError("--threads must be in 1..256");
  SetIndexThreads(threads);

  using Clock = std::chrono::steady_clock;
  const auto load_start = Clock::now();
  const QueryEngine engine = QueryEngine::Load(options);
  const double load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();

  std::string csv;
  if (format == "csv") {
    csv = "query,slot,box_x,box_y,box_w,box_h,rank,product_id,score\n";
  }
  auto matches_json = [](const std::vector<QueryMatch>& matches) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& match : matches) out.push_back({{"product_id", match.product_id}, {"score", match.score}});
    return out;
  };
  auto add_csv = [&](const std::string& query, const std::string& slot, const std::array<int, 4>* box,
                     const std::vector<QueryMatch>& matches) {
    for (std::size_t r = 0; r < matches.size(); ++r) {
      const std::string x = box ? std::to_string((*box)[0]) : "", y = box ? std::to_string((*box)[1]) : "",
                        w = box ? std::to_string((*box)[2]) : "", h = box ? std::to_string((*box)[3]) : "";
      AppendCsvRow(
          {query, slot, x, y, w, h, std::to_string(r + 1), matches[r].product_id, std::to_string(matches[r].score)},
          &csv);
    }
  };

  std::int64_t rejected = 0, garments = 0;
  const auto query_start = Clock::now();
  for (const auto& image : images) {
    const PhotoResult result = engine.QueryPhoto(image);
    if (!result.error.empty()) {
      ++rejected;
      spdlog::warn("{}: rejected: {}", image, result.error);
      if (format == "json") std::cout << nlohmann::json{{"image", image}, {"error", result.error}}.dump() << "\n";
      continue;
    }
    if (result.garments.empty()) spdlog::warn("{}: no garment found", image);
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
        add_csv(image, garment.slot, &garment.box, garment.matches);
      }
    }
  }
  for (const auto& text : texts) {
    const auto matches = engine.QueryText(text);
    if (format == "json")
      std::cout << nlohmann::json{{"text", text}, {"matches", matches_json(matches)}}.dump() << "\n";
    else
      add_csv(text, "", nullptr, matches);
  }
  std::cout << csv << std::flush;
  const double query_seconds = std::chrono::duration<double>(Clock::now() - query_start).count();
  const auto queries = static_cast<double>(images.size() + texts.size());
  spdlog::info(
      "{} photos ({} rejected, {} garments) and {} texts in {:.3f} s ({:.3f} s per query) after {:.2f} s loading",
      images.size(), rejected, garments, texts.size(), query_seconds, query_seconds / queries, load_seconds);
  (void)context;
  return rejected > 0 ? kExitInputError : kExitOk;
}

}  // namespace lookbook
