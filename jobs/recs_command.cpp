// lookbook recs --run RUN   (every rank; mpirun for more)
#include <spdlog/spdlog.h>

#include <sstream>

#include "index/vector_index.h"
#include "jobs/command.h"
#include "recs/recs_stage.h"
#include "util/error.h"
#include "util/stop.h"

namespace lookbook {

void DescribeRecs(po::options_description* options) {
  options->add_options()("run", po::value<std::string>()->required()->value_name("DIR"),
                         "the run folder (reads DIR/embed, DIR/index, DIR/dedup; writes DIR/recs)")(
      "top-k", po::value<int>()->default_value(10)->value_name("K"), "substitutes per product, 1..1000")(
      "outfit-top-k", po::value<int>()->default_value(10)->value_name("K"),
      "items per slot of an outfit photo, 1..1000")("substitutes-for",
                                                    po::value<std::string>()->default_value("all")->value_name("WHICH"),
                                                    "all | out-of-stock: the products that get substitutes")(
      "category-slots", po::value<std::string>()->default_value("")->value_name("MAP"),
      "Category=slot,... : the garment slot of each catalog category (top, bottom, dress, outerwear, shoes, bag, "
      "accessory or none); a category named like a slot maps to it")(
      "categories", po::value<std::string>()->default_value("")->value_name("LIST"),
      "comma-separated categories for products the catalog gives none (zero-shot); empty: the catalog's categories")(
      "category-prompt", po::value<std::string>()->default_value("a photo of a {}")->value_name("TEXT"),
      "zero-shot prompt; {} is the category in lower case")(
      "model", po::value<std::string>()->value_name("BUNDLE"),
      "CLIP bundle for zero-shot categories (default: the one the embed stage ran)")(
      "nprobe", po::value<int>()->default_value(16)->value_name("N"),
      "inverted lists searched first (more when a filter leaves too few)")(
      "batch", po::value<int>()->default_value(1024)->value_name("N"), "products per index search call")(
      "threads", po::value<int>()->default_value(1)->value_name("N"), "FAISS (OpenMP) threads per rank")(
      "force", po::bool_switch(), "redo the stage even when its outputs are valid");
}

int RunRecsCommand(const po::variables_map& vm, const CommandContext& context) {
  RecsOptions options;
  options.run = vm["run"].as<std::string>();
  options.top_k = vm["top-k"].as<int>();
  options.outfit_top_k = vm["outfit-top-k"].as<int>();
  if (options.top_k < 1 || options.top_k > 1000) throw UsageError("--top-k must be in 1..1000");
  if (options.outfit_top_k < 1 || options.outfit_top_k > 1000) throw UsageError("--outfit-top-k must be in 1..1000");
  const std::string which = vm["substitutes-for"].as<std::string>();
  if (which != "all" && which != "out-of-stock") throw UsageError("--substitutes-for must be all or out-of-stock");
  options.only_out_of_stock = which == "out-of-stock";
  options.category_slots = vm["category-slots"].as<std::string>();
  std::istringstream categories(vm["categories"].as<std::string>());
  for (std::string category; std::getline(categories, category, ',');) {
    const auto begin = category.find_first_not_of(' ');
    if (begin != std::string::npos)
      options.categories.push_back(category.substr(begin, category.find_last_not_of(' ') - begin + 1));
  }
  options.category_prompt = vm["category-prompt"].as<std::string>();
  if (vm.count("model")) options.model = vm["model"].as<std::string>();
  options.nprobe = vm["nprobe"].as<int>();
  if (options.nprobe < 1) throw UsageError("--nprobe must be at least 1");
  options.batch = vm["batch"].as<int>();
  if (options.batch < 1 || options.batch > 1 << 20) throw UsageError("--batch must be in 1..1048576");
  const int threads = vm["threads"].as<int>();
  if (threads < 1 || threads > 256) throw UsageError("--threads must be in 1..256");
  SetIndexThreads(threads);
  options.rerun = vm["force"].as<bool>() ? RerunPolicy::kForce : RerunPolicy::kReuseValid;
  options.code_version = context.code_version;
  const StageReport report = RunRecs(options, context.world);
  if (context.world.is_root()) {
    if (report.status == "ok") {
      spdlog::info("{} substitute rows for {} products, {} outfit rows from {} outfit photos; see {}/recs",
                   report.counts.at("substitute_rows"), report.counts.at("products_with_substitutes"),
                   report.counts.at("outfit_rows"), report.counts.at("outfit_photos"), options.run.string());
    }
    PrintSummaryLine(SummaryJsonLine(report));
    if (report.status == "ok") KeepSummary(options.run, "recs", SummaryJsonLine(report));
  }
  return report.status == "stopped" ? kExitStopped : kExitOk;
}

}  // namespace lookbook
