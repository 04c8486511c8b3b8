// lookbook dedup --run RUN   (every rank; mpirun for more)
#include <spdlog/spdlog.h>

#include "index/dedup_stage.h"
#include "index/vector_index.h"
#include "jobs/command.h"
#include "util/error.h"
#include "util/stop.h"

namespace lookbook {

void DescribeDedup(po::options_description* options) {
  options->add_options()("run", po::value<std::string>()->required()->value_name("DIR"),
                         "the run folder (reads DIR/embed and DIR/index, writes DIR/dedup)")(
      "candidates", po::value<int>()->default_value(16)->value_name("K"),
      "neighbours asked of the index per image, 1..1024")("nprobe", po::value<int>()->default_value(8)->value_name("N"),
                                                          "inverted lists searched per query")(
      "verify", po::value<std::string>()->default_value("on")->value_name("on|off"),
      "align the images of every candidate pair (on), or decide on cosine and perceptual hash alone (off: runs without "
      "their images)")("aligned", po::value<float>()->default_value(0.975f)->value_name("R"),
                       "verified: a candidate at or above this aligned correlation is a duplicate")(
      "aligned-phash", po::value<float>()->default_value(0.96f)->value_name("R"),
      "verified: a candidate at or above this aligned correlation is a duplicate when its perceptual hashes agree "
      "(--max-hamming)")("cosine", po::value<float>()->default_value(0.99f)->value_name("C"),
                         "--verify off: a pair at or above this cosine is a duplicate")(
      "phash-cosine", po::value<float>()->default_value(0.965f)->value_name("C"),
      "--verify off: a pair at or above this cosine is a duplicate when its perceptual hashes agree (--max-hamming)")(
      "max-hamming", po::value<int>()->default_value(3)->value_name("BITS"),
      "perceptual-hash agreement: at most this many of 64 bits differ")(
      "candidate-floor", po::value<float>()->default_value(0.9f)->value_name("C"),
      "candidates at or above this cosine are verified and kept in dedup.h5 for threshold sweeps")(
      "keep", po::value<std::string>()->default_value("first")->value_name("POLICY"),
      "each cluster's representative: first (catalog order) | largest (pixels) | in-stock")(
      "query-batch", po::value<int>()->default_value(4096)->value_name("N"), "queries per index search call")(
      "threads", po::value<int>()->default_value(1)->value_name("N"), "FAISS (OpenMP) threads per rank")(
      "force", po::bool_switch(), "redo the stage even when its outputs are valid");
}

int RunDedupCommand(const po::variables_map& vm, const CommandContext& context) {
  DedupOptions options;
  options.run = vm["run"].as<std::string>();
  options.candidates = vm["candidates"].as<int>();
  options.nprobe = vm["nprobe"].as<int>();
  const std::string verify = vm["verify"].as<std::string>();
  if (verify != "on" && verify != "off") throw UsageError("--verify must be on or off");
  options.rule.verify = verify == "on";
  options.rule.aligned = vm["aligned"].as<float>();
  options.rule.aligned_phash = vm["aligned-phash"].as<float>();
  options.rule.cosine = vm["cosine"].as<float>();
  options.rule.phash_cosine = vm["phash-cosine"].as<float>();
  options.rule.max_hamming = vm["max-hamming"].as<int>();
  options.candidate_floor = vm["candidate-floor"].as<float>();
  options.query_batch = vm["query-batch"].as<int>();
  if (options.candidates < 1 || options.candidates > 1024) throw UsageError("--candidates must be in 1..1024");
  if (options.nprobe < 1) throw UsageError("--nprobe must be at least 1");
  for (const auto& [name, value] : {std::pair<const char*, float>{"--cosine", options.rule.cosine},
                                    {"--phash-cosine", options.rule.phash_cosine},
                                    {"--aligned", options.rule.aligned},
                                    {"--aligned-phash", options.rule.aligned_phash},
                                    {"--candidate-floor", options.candidate_floor}}) {
    if (!(value >= -1.0f && value <= 1.0f)) throw UsageError(std::string(name) + " must be in [-1, 1]");
  }
  if (!options.rule.verify && options.candidate_floor > std::min(options.rule.cosine, options.rule.phash_cosine)) {
    throw UsageError("--candidate-floor must not be above --cosine or --phash-cosine");
  }
  if (options.rule.max_hamming < 0 || options.rule.max_hamming > 64) throw UsageError("--max-hamming must be in 0..64");
  if (!ParseKeepPolicy(vm["keep"].as<std::string>(), &options.keep))
    throw UsageError("--keep must be first, largest or in-stock");
  if (options.query_batch < 1 || options.query_batch > 1 << 20) throw UsageError("--query-batch must be in 1..1048576");
  const int threads = vm["threads"].as<int>();
  if (threads < 1 || threads > 256) throw UsageError("--threads must be in 1..256");
  SetIndexThreads(threads);
  options.rerun = vm["force"].as<bool>() ? RerunPolicy::kForce : RerunPolicy::kReuseValid;
  options.code_version = context.code_version;
  const StageReport report = RunDedup(options, context.world);
  if (context.world.is_root()) {
    if (report.status == "ok") {
      spdlog::info("{} duplicate pairs ({} same product, {} across products) in {} clusters; see {}/dedup",
                   report.counts.at("pairs"), report.counts.at("pairs_same_product"),
                   report.counts.at("pairs_cross_product"), report.counts.at("clusters"), options.run.string());
    }
    PrintSummaryLine(SummaryJsonLine(report));
    if (report.status == "ok") KeepSummary(options.run, "dedup", SummaryJsonLine(report));
  }
  return report.status == "stopped" ? kExitStopped : kExitOk;
}

}  // namespace lookbook
