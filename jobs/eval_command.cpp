// lookbook eval model --model BUNDLE [--items N] [--out metrics.json]
// lookbook eval garments --run RUN --truth DEMO/truth [--out metrics.json]
// lookbook eval dedup --run RUN --truth PAIRS.csv [--negatives PAIRS.csv] [--out metrics.json]
// lookbook eval recs --run RUN --truth OUTFITS.csv [--products PRODUCTS.csv] [--k K] [--out metrics.json]
#include <spdlog/spdlog.h>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include <limits>
#include "eval/dedup_eval.h"
#include "eval/garment_eval.h"
#include "eval/model_eval.h"
#include "eval/recs_eval.h"
#include "jobs/command.h"
#include "jobs/device_options.h"
#include "jobs/options.h"
#include "util/error.h"
#include "util/publish.h"

namespace lookbook {

namespace {

struct EvalArgs {
  InferenceOptions inference;  // eval model
  std::string what;
  std::filesystem::path model, run, truth, negatives, products, out;
  int items = 400;
  std::uint64_t seed = 7;
  int k = 5;
};

const OptionTable<EvalArgs>& EvalOptionTable() {
  static const OptionTable<EvalArgs> table = [] {
    using O = EvalArgs;
    OptionTable<O> t;
    t.Text(
        "what", "WHAT", [](O& o) -> std::string& { return o.what; }, "", OptionEffect::kControl,
        "what to evaluate, the first word after eval", {"model", "garments", "dedup", "recs"}, true);
    t.Path(
        "model", "BUNDLE", [](O& o) -> std::filesystem::path& { return o.model; }, false,
        "eval model: the bundle to evaluate on the demo catalog's test split");
    t.Integer<int>(
        "items", "N", [](O& o) -> int& { return o.items; }, 400, 50, 10000, OptionEffect::kOutput,
        "eval model: products in the evaluation catalog (test split)");
    t.Integer<std::uint64_t>(
        "seed", "S", [](O& o) -> std::uint64_t& { return o.seed; }, 7, 0, std::numeric_limits<std::uint64_t>::max(),
        OptionEffect::kOutput, "eval model: the evaluation catalog's seed");
    t.Path(
        "run", "DIR", [](O& o) -> std::filesystem::path& { return o.run; }, false,
        "eval garments, dedup, recs: the run folder (eval dedup and recs write DIR/eval/<what>.json)");
    t.Path(
        "truth", "PATH", [](O& o) -> std::filesystem::path& { return o.truth; }, false,
        "eval garments: the demo catalog's truth folder; eval dedup: known duplicate pairs (CSV "
        "image_a,image_b,...); eval recs: known outfits (CSV outfit,product_ids)");
    t.Path(
        "negatives", "CSV", [](O& o) -> std::filesystem::path& { return o.negatives; }, false,
        "eval dedup: pairs that must not be flagged (image_a,image_b)");
    t.Path(
        "products", "CSV", [](O& o) -> std::filesystem::path& { return o.products; }, false,
        "eval recs: true categories (CSV with product_id and class columns)");
    t.Integer<int>(
        "k", "K", [](O& o) -> int& { return o.k; }, 5, 1, 1000, OptionEffect::kOutput,
        "eval recs: outfit recall at this rank");
    t.Path(
        "out", "FILE", [](O& o) -> std::filesystem::path& { return o.out; }, false,
        "also write the metrics to FILE (JSON)");
    AddDeviceOptions(&t, [](O& o) -> InferenceOptions& { return o.inference; });
    return t;
  }();
  return table;
}

}  // namespace

std::vector<OptionSpec> EvalSpecs() { return EvalOptionTable().specs(); }

namespace {

void PrintMetrics(const EvalArgs& vm, const nlohmann::ordered_json& out) {
  if (!vm.out.empty()) PublishFile(vm.out, out.dump(2) + "\n");
  std::cout << out.dump() << std::endl;
}

int EvalGarments(const EvalArgs& vm) {
  if (vm.run.empty() || vm.truth.empty()) throw UsageError("eval garments needs --run and --truth");
  GarmentEvalOptions options;
  options.run = vm.run;
  options.truth = vm.truth;
  nlohmann::ordered_json out;
  out["run"] = options.run.string();
  out["truth"] = options.truth.string();
  for (const auto& [name, value] : EvaluateGarments(options)) out[name] = value;
  PrintMetrics(vm, out);
  return kExitOk;
}

int EvalDedup(const EvalArgs& vm, const CommandContext& context) {
  if (vm.run.empty() || vm.truth.empty()) throw UsageError("eval dedup needs --run and --truth");
  DedupEvalOptions options;
  options.run = vm.run;
  options.truth = vm.truth;
  if (!vm.negatives.empty()) options.negatives = vm.negatives;
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

int EvalRecs(const EvalArgs& vm) {
  if (vm.run.empty() || vm.truth.empty()) throw UsageError("eval recs needs --run and --truth");
  RecsEvalOptions options;
  options.run = vm.run;
  options.truth = vm.truth;
  if (!vm.products.empty()) options.products = vm.products;
  options.k = vm.k;
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

int RunEvalCommand(const po::variables_map& given, const CommandContext& context) {
  EvalArgs vm;
  EvalOptionTable().Parse(GivenValues(given, EvalOptionTable().specs()), &vm);
  const std::string what = vm.what;
  if (what == "garments") return EvalGarments(vm);
  if (what == "dedup") return EvalDedup(vm, context);
  if (what == "recs") return EvalRecs(vm);
  if (what != "model") throw UsageError("eval: WHAT must be model, garments, dedup or recs");
  if (vm.model.empty()) throw UsageError("eval model needs --model");
  ModelEvalOptions options;
  options.model = vm.model;
  options.items = vm.items;
  options.seed = vm.seed;
  options.inference = vm.inference;
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
