// lookbook ingest --catalog CSV --images DIR --run RUN [--shards N]
#include <spdlog/spdlog.h>

#include "catalog/ingest.h"
#include "jobs/command.h"
#include "util/error.h"

namespace lookbook {
namespace {

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

}  // namespace

void DescribeIngest(po::options_description* options) {
  options->add_options()("run", po::value<std::string>()->required()->value_name("DIR"),
                         "the run folder (outputs go to DIR/ingest)")(
      "catalog", po::value<std::string>()->required()->value_name("CSV"), "the catalog CSV (RFC 4180)")(
      "images", po::value<std::string>()->required()->value_name("DIR"),
      "image root: every image reference resolves inside it")(
      "shards", po::value<int>()->default_value(16)->value_name("N"), "number of shards, 1..65536")(
      "layout", po::value<std::string>()->default_value("default")->value_name("NAME"),
      "catalog layout: default (product_id,image_<n>,category,in_stock,title) | inditex (IMAGE_VERSION_1..3 URLs)")(
      "id-column", po::value<std::string>()->value_name("NAME"),
      "column holding the product id (overrides the layout)")(
      "image-columns", po::value<std::string>()->value_name("A,B,..."),
      "columns holding image references, in order (overrides the layout)")(
      "category-column", po::value<std::string>()->value_name("NAME"), "column holding the category")(
      "stock-column", po::value<std::string>()->value_name("NAME"), "column holding in_stock")(
      "title-column", po::value<std::string>()->value_name("NAME"), "column holding the title")(
      "image-refs", po::value<std::string>()->value_name("path|url"),
      "how image cells are written (overrides the layout)")(
      "max-image-bytes", po::value<std::uint64_t>()->default_value(64ull << 20)->value_name("BYTES"),
      "larger image files are rejected (too_large)")("io-threads", po::value<int>()->default_value(16)->value_name("N"),
                                                     "parallel file checks, 1..1024")(
      "force", po::bool_switch(), "redo the stage even when its published outputs are valid");
}

int RunIngestCommand(const po::variables_map& vm, const CommandContext& context) {
  IngestOptions options;
  options.run = vm["run"].as<std::string>();
  options.catalog = vm["catalog"].as<std::string>();
  options.images = vm["images"].as<std::string>();
  options.shards = vm["shards"].as<int>();
  if (options.shards < 1 || options.shards > 65536) throw UsageError("--shards must be in 1..65536");
  CatalogLayout layout;
  if (!ParseCatalogLayout(vm["layout"].as<std::string>(), &layout)) {
    throw UsageError("--layout must be default or inditex, not '" + vm["layout"].as<std::string>() + "'");
  }
  options.columns = LayoutMapping(layout);
  if (vm.count("id-column")) {
    options.columns.id_source = ProductIdSource::kColumn;
    options.columns.product_id = vm["id-column"].as<std::string>();
    if (options.columns.product_id.empty()) throw UsageError("--id-column must not be empty");
  }
  if (vm.count("image-columns")) {
    options.columns.image_columns = SplitList(vm["image-columns"].as<std::string>());
    if (options.columns.image_columns.empty()) throw UsageError("--image-columns names no column");
  }
  if (vm.count("category-column")) options.columns.category = vm["category-column"].as<std::string>();
  if (vm.count("stock-column")) options.columns.in_stock = vm["stock-column"].as<std::string>();
  if (vm.count("title-column")) options.columns.title = vm["title-column"].as<std::string>();
  if (vm.count("image-refs") &&
      !ParseImageReferenceStyle(vm["image-refs"].as<std::string>(), &options.columns.image_references)) {
    throw UsageError("--image-refs must be path or url");
  }
  options.max_image_bytes = vm["max-image-bytes"].as<std::uint64_t>();
  if (options.max_image_bytes == 0) throw UsageError("--max-image-bytes must be positive");
  options.io_threads = vm["io-threads"].as<int>();
  if (options.io_threads < 1 || options.io_threads > 1024) throw UsageError("--io-threads must be in 1..1024");
  options.rerun = vm["force"].as<bool>() ? RerunPolicy::kForce : RerunPolicy::kReuseValid;
  options.code_version = context.code_version;

  const StageReport report = RunIngest(options);
  if (report.status == "skipped") {
    spdlog::info("outputs in {}/ingest are valid for this catalog and options: nothing to do (--force redoes)",
                 options.run.string());
  } else {
    spdlog::info("{} rows: {} accepted, {} rejected; {} images: {} accepted, {} rejected; see {}/ingest/rejects.csv",
                 report.counts.at("rows_in"), report.counts.at("rows_ok"), report.counts.at("rows_rejected"),
                 report.counts.at("images_in"), report.counts.at("images_ok"), report.counts.at("images_rejected"),
                 options.run.string());
  }
  PrintSummaryLine(SummaryJsonLine(report));
  if (report.status == "ok") KeepSummary(options.run, "ingest", SummaryJsonLine(report));
  return kExitOk;
}

}  // namespace lookbook
