// lookbook index --run RUN [--factory SPEC|auto]   (every rank; mpirun for more)
#include <spdlog/spdlog.h>

#include "index/index_stage.h"
#include "index/vector_index.h"
#include "jobs/command.h"
#include "util/error.h"
#include "util/stop.h"

namespace lookbook {

void DescribeIndex(po::options_description* options) {
  options->add_options()("run", po::value<std::string>()->required()->value_name("DIR"),
                         "the run folder (reads DIR/embed, writes DIR/index)")(
      "factory", po::value<std::string>()->default_value("auto")->value_name("SPEC"),
      "FAISS index_factory string (inner product), e.g. IVF1024,PQ32np; auto picks from the vector count and "
      "--memory-budget")("memory-budget", po::value<std::uint64_t>()->default_value(8ull << 30)->value_name("BYTES"),
                         "auto: bytes the codes of all shards may take")(
      "train-sample", po::value<std::int64_t>()->default_value(131072)->value_name("N"),
      "training vectors drawn from all shards")("seed", po::value<std::uint64_t>()->default_value(1)->value_name("S"),
                                                "the training sample's seed")(
      "threads", po::value<int>()->default_value(1)->value_name("N"), "FAISS (OpenMP) threads per rank")(
      "force", po::bool_switch(), "redo the stage even when its outputs are valid");
}

int RunIndexCommand(const po::variables_map& vm, const CommandContext& context) {
  IndexOptions options;
  options.run = vm["run"].as<std::string>();
  options.factory = vm["factory"].as<std::string>();
  if (options.factory.empty()) throw UsageError("--factory must be a FAISS factory string or auto");
  options.memory_budget = vm["memory-budget"].as<std::uint64_t>();
  options.train_sample = vm["train-sample"].as<std::int64_t>();
  if (options.train_sample < 1) throw UsageError("--train-sample must be at least 1");
  options.seed = vm["seed"].as<std::uint64_t>();
  const int threads = vm["threads"].as<int>();
  if (threads < 1 || threads > 256) throw UsageError("--threads must be in 1..256");
  SetIndexThreads(threads);
  options.rerun = vm["force"].as<bool>() ? RerunPolicy::kForce : RerunPolicy::kReuseValid;
  options.code_version = context.code_version;
  const StageReport report = RunIndex(options, context.world);
  if (context.world.is_root()) {
    if (report.status == "ok") {
      spdlog::info("{} vectors in {} shard index(es), {}; see {}/index", report.counts.at("vectors"),
                   report.counts.at("shards"), report.facts.at("factory"), options.run.string());
    }
    PrintSummaryLine(SummaryJsonLine(report));
    if (report.status == "ok") KeepSummary(options.run, "index", SummaryJsonLine(report));
  }
  return report.status == "stopped" ? kExitStopped : kExitOk;
}

}  // namespace lookbook
