// lookbook demo-catalog --out DIR [--items N] [--seed S] [--split train|test] [--outfits flat-lay|random]
#include <spdlog/spdlog.h>
#include <chrono>

#include <limits>
#include "demo/demo_catalog.h"
#include "jobs/command.h"
#include "jobs/options.h"
#include "util/error.h"
#include "util/stage_report.h"

namespace lookbook {

namespace {

struct DemoCatalogArgs {
  DemoCatalogOptions options;
  std::string split = "test";
  std::string outfits = "flat-lay";
};

const OptionTable<DemoCatalogArgs>& DemoCatalogOptionTable() {
  static const OptionTable<DemoCatalogArgs> table = [] {
    using O = DemoCatalogArgs;
    OptionTable<O> t;
    t.Path(
        "out", "DIR", [](O& o) -> std::filesystem::path& { return o.options.out; }, true,
        "folder to write the catalog into");
    t.Integer<int>(
        "items", "N", [](O& o) -> int& { return o.options.items; }, 400, 10, 60000, OptionEffect::kOutput,
        "number of products (at most the split's image count: 10,000 test, 60,000 train)");
    t.Integer<std::uint64_t>(
        "seed", "S", [](O& o) -> std::uint64_t& { return o.options.seed; }, 7, 0,
        std::numeric_limits<std::uint64_t>::max(), OptionEffect::kOutput, "random seed (same seed, same bytes)");
    t.Text("split", "NAME", [](O& o) -> std::string& { return o.split; }, "test", OptionEffect::kOutput,
           "Fashion-MNIST split: train (model training) | test (demo, evaluation)", {"train", "test"});
    t.Text("outfits", "KIND", [](O& o) -> std::string& { return o.outfits; }, "flat-lay", OptionEffect::kOutput,
           "outfit photos: flat-lay (the demo's layout on light grey) | random (other frames, backgrounds, "
           "layouts, scales, turns, shadows, JPEG qualities: the randomized test split)",
           {"flat-lay", "random"});
    t.Add(
        OptionSpec{"fashion-mnist", "DIR", kFashionMnistDir, false, false, "",
                   "folder with the Fashion-MNIST idx files", OptionEffect::kControl},
        [](const std::vector<std::string>& values, O* out) { out->options.fashion_mnist = values.back(); },
        [](const O& o) { return o.options.fashion_mnist.string(); });
    return t;
  }();
  return table;
}

}  // namespace

std::vector<OptionSpec> DemoCatalogSpecs() { return DemoCatalogOptionTable().specs(); }

int RunDemoCatalogCommand(const po::variables_map& vm, const CommandContext& context) {
  DemoCatalogArgs args;
  DemoCatalogOptionTable().Parse(GivenValues(vm, DemoCatalogOptionTable().specs()), &args);
  DemoCatalogOptions options = args.options;
  if (!ParseFashionSplit(args.split, &options.split)) throw UsageError("--split must be train or test");
  options.outfits = args.outfits == "random" ? DemoOutfits::kRandom : DemoOutfits::kFlatLay;

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
