// lookbook demo-catalog --out DIR [--items N] [--seed S] [--split train|test]
#include <spdlog/spdlog.h>
#include <chrono>

#include "demo/demo_catalog.h"
#include "jobs/command.h"
#include "util/error.h"
#include "util/stage_report.h"

namespace lookbook {

void DescribeDemoCatalog(po::options_description* options) {
  options->add_options()("out", po::value<std::string>()->required()->value_name("DIR"),
                         "folder to write the catalog into")(
      "items", po::value<int>()->default_value(400)->value_name("N"), "number of products, 10..10000")(
      "seed", po::value<std::uint64_t>()->default_value(7)->value_name("S"), "random seed (same seed, same bytes)")(
      "split", po::value<std::string>()->default_value("test")->value_name("NAME"),
      "Fashion-MNIST split: train (model training) | test (demo, evaluation)")(
      "fashion-mnist", po::value<std::string>()->default_value(kFashionMnistDir)->value_name("DIR"),
      "folder with the Fashion-MNIST idx files");
}

int RunDemoCatalogCommand(const po::variables_map& vm, const CommandContext& context) {
  DemoCatalogOptions options;
  options.out = vm["out"].as<std::string>();
  options.items = vm["items"].as<int>();
  if (options.items < 10 || options.items > 10000) throw UsageError("--items must be in 10..10000");
  options.seed = vm["seed"].as<std::uint64_t>();
  if (!ParseFashionSplit(vm["split"].as<std::string>(), &options.split)) {
    throw UsageError("--split must be train or test");
  }
  options.fashion_mnist = vm["fashion-mnist"].as<std::string>();

  StageReport report;
  report.stage = "demo-catalog";
  report.facts["out"] = options.out.string();
  const auto start = std::chrono::steady_clock::now();
  const DemoCatalogSummary summary = WriteDemoCatalog(options);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.counts["products"] = summary.products;
  report.counts["images"] = summary.images;
  report.counts["duplicate_pairs"] = summary.duplicate_pairs;
  report.counts["colour_variants"] = summary.colour_variants;
  report.counts["outfits"] = summary.outfits;
  report.throughput_unit = "images";
  report.throughput_items = summary.images;
  spdlog::info("demo catalog in {}: {} products, {} images, {} planted duplicate pairs, {} outfits",
               options.out.string(), summary.products, summary.images, summary.duplicate_pairs, summary.outfits);
  PrintSummaryLine(SummaryJsonLine(report));
  return kExitOk;
}

}  // namespace lookbook
