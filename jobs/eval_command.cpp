// lookbook eval model --model BUNDLE [--items N] [--out metrics.json]
// lookbook eval garments --run RUN --truth DEMO/truth [--out metrics.json]
// lookbook eval dedup --run RUN --truth PAIRS.csv [--negatives PAIRS.csv] [--out metrics.json]
// lookbook eval recs --run RUN --truth OUTFITS.csv [--products PRODUCTS.csv] [--k K] [--out metrics.json]
#include <spdlog/spdlog.h>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "eval/dedup_eval.h"
#include "eval/garment_eval.h"
#include "eval/model_eval.h"
#include "eval/recs_eval.h"
#include "jobs/command.h"
#include "util/error.h"
#include "util/publish.h"

namespace lookbook {

void DescribeEval(po::options_description* options) {
  options->add_options()("what", po::value<std::string>()->required()->value_name("WHAT"),
                         "what to evaluate: model | garments | dedup | recs")(
      "model", po::value<std::string>()->value_name("BUNDLE"), "eval model: the bundle to evaluate")(
      "items", po::value<int>()->default_value(400)->value_name("N"),
      "eval model: products in the evaluation catalog (test split)")(
      "seed", po::value<std::uint64_t>()->default_value(7)->value_name("S"),
      "eval model: the evaluation catalog's seed")("run", po::value<std::string>()->value_name("DIR"),
                                                   "eval garments: the run folder (reads DIR/embed)")(
      "truth", po::value<std::string>()->value_name("PATH"),
      "eval garments: the demo catalog's truth folder; eval dedup: known duplicate pairs (CSV image_a,image_b,...); "
      "eval recs: known outfits (CSV outfit,product_ids)")(
      "negatives", po::value<std::string>()->value_name("CSV"),
      "eval dedup: pairs that must not be flagged (image_a,image_b)")(
      "products", po::value<std::string>()->value_name("CSV"),
      "eval recs: true categories (CSV with product_id and class columns)")(
      "k", po::value<int>()->default_value(5)->value_name("K"), "eval recs: outfit recall at this rank")(
      "out", po::value<std::string>()->value_name("FILE"), "also write the metrics to FILE (JSON)");
}

namespace {

void PrintMetrics(const po::variables_map& vm, const nlohmann::ordered_json& out) {
  if (vm.count("out")) PublishFile(vm["out"].as<std::string>(), out.dump(2) + "\n");
  std::cout << out.dump() << std::endl;
}

int EvalGarments(const po::variables_map& vm) {
  if (!vm.count("run") || !vm.count("truth")) throw UsageError("eval garments needs --run and --truth");
  GarmentEvalOptions options;
  options.run = vm["run"].as<std::string>();
  options.truth = vm["truth"].as<std::string>();
  nlohmann::ordered_json out;
  out["run"] = options.run.string();
  out["truth"] = options.truth.string();
  for (const auto& [name, value] : EvaluateGarments(options)) out[name] = value;
  PrintMetrics(vm, out);
  return kExitOk;
}

int EvalDedup(const po::variables_map& vm, const CommandContext& context) {
  if (!vm.count("run") || !vm.count("truth")) throw UsageError("eval dedup needs --run and --truth");
  DedupEvalOptions options;
  options.run = vm["run"].as<std::string>();
  options.truth = vm["truth"].as<std::string>();
  if (vm.count("negatives")) options.negatives = vm["negatives"].as<std::string>();
  const DedupEvaluation evaluation = EvaluateDedup(options);
  nlohmann::ordered_json out;
  out["run"] = options.run.string();
  out["truth"] = options.truth.string();
  for (const auto& [name, value] : evaluation.metrics) out[name] = value;
  out["sweep_signal"] = evaluation.sweep_signal;
  out["sweep"] = nlohmann::json::array();
  spdlog::info("threshold sweep ({}; the perceptual-hash clause as run):", evaluation.sweep_signal);
  spdlog::info("  threshold  precision  recall  f1");
  for (const auto& point : evaluation.sweep) {
    out["sweep"].push_back(
        {{"threshold", point.threshold}, {"precision", point.precision}, {"recall", point.recall}, {"f1", point.f1}});
    spdlog::info("  {:.4f}     {:.4f}     {:.4f}  {:.4f}", point.threshold, point.precision, point.recall, point.f1);
  }
  // Where the report looks for it.
  std::filesystem::create_directories(options.run / "eval");
  PublishFile(options.run / "eval" / "dedup.json", out.dump(2) + "\n");
  (void)context;
  PrintMetrics(vm, out);
  return kExitOk;
}

int EvalRecs(const po::variables_map& vm) {
  if (!vm.count("run") || !vm.count("truth")) throw UsageError("eval recs needs --run and --truth");
  RecsEvalOptions options;
  options.run = vm["run"].as<std::string>();
  options.truth = vm["truth"].as<std::string>();
  if (vm.count("products")) options.products = vm["products"].as<std::string>();
  options.k = vm["k"].as<int>();
  if (options.k < 1) throw UsageError("--k must be at least 1");
  nlohmann::ordered_json out;
  out["run"] = options.run.string();
  out["truth"] = options.truth.string();
  for (const auto& [name, value] : EvaluateRecs(options)) out[name] = value;
  std::filesystem::create_directories(options.run / "eval");
  PublishFile(options.run / "eval" / "recs.json", out.dump(2) + "\n");
  PrintMetrics(vm, out);
  return kExitOk;
}

}  // namespace

int RunEvalCommand(const po::variables_map& vm, const CommandContext& context) {
  const std::string what = vm["what"].as<std::string>();
  if (what == "garments") return EvalGarments(vm);
  if (what == "dedup") return EvalDedup(vm, context);
  if (what == "recs") return EvalRecs(vm);
  if (what != "model") throw UsageError("eval: WHAT must be model, garments, dedup or recs");
  if (!vm.count("model")) throw UsageError("eval model needs --model");
  ModelEvalOptions options;
  options.model = vm["model"].as<std::string>();
  options.items = vm["items"].as<int>();
  if (options.items < 50 || options.items > 10000) throw UsageError("--items must be in 50..10000");
  options.seed = vm["seed"].as<std::uint64_t>();
  const auto metrics = EvaluateModel(options);
  nlohmann::ordered_json out;
  out["model"] = options.model.string();
  out["split"] = "test";
  out["items"] = options.items;
  out["seed"] = options.seed;
  for (const auto& [name, value] : metrics) out[name] = value;
  PrintMetrics(vm, out);
  (void)context;
  return kExitOk;
}

}  // namespace lookbook
