// lookbook eval model --model BUNDLE [--items N] [--out metrics.json]
// (eval dedup and eval recs arrive with their stages)
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "eval/model_eval.h"
#include "jobs/command.h"
#include "util/error.h"
#include "util/publish.h"

namespace lookbook {

void DescribeEval(po::options_description* options) {
  options->add_options()
      ("what", po::value<std::string>()->required()->value_name("WHAT"), "what to evaluate: model")
      ("model", po::value<std::string>()->value_name("BUNDLE"), "eval model: the bundle to evaluate")
      ("items", po::value<int>()->default_value(400)->value_name("N"), "eval model: products in the evaluation catalog (test split)")
      ("seed", po::value<std::uint64_t>()->default_value(7)->value_name("S"), "eval model: the evaluation catalog's seed")
      ("out", po::value<std::string>()->value_name("FILE"), "also write the metrics to FILE (JSON)");
}

int RunEvalCommand(const po::variables_map& vm, const CommandContext& context) {
  const std::string what = vm["what"].as<std::string>();
  if (what != "model") throw UsageError("eval: WHAT must be model (dedup and recs come with their stages)");
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
  if (vm.count("out")) PublishFile(vm["out"].as<std::string>(), out.dump(2) + "\n");
  std::cout << out.dump() << std::endl;
  (void)context;
  return kExitOk;
}

}  // namespace lookbook
