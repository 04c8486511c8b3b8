// lookbook embed --run RUN --model CLIP_BUNDLE [--segmenter UNET_BUNDLE] [--shard K]
// (every rank; mpirun for more)
#include <spdlog/spdlog.h>

#include "embed/embed_stage.h"
#include "jobs/command.h"
#include "jobs/options.h"
#include "util/error.h"
#include "util/stop.h"

namespace lookbook {

std::vector<OptionSpec> EmbedSpecs() { return EmbedOptionTable().specs(); }

int RunEmbedCommand(const po::variables_map& vm, const CommandContext& context) {
  EmbedOptions options;
  EmbedOptionTable().Parse(GivenValues(vm, EmbedOptionTable().specs()), &options);
  if (options.segment_images.empty()) throw UsageError("--segment-images must be all, auto or a column name");
  options.code_version = context.code_version;
  const std::string& device = options.device;
  const int threads = options.threads;

  // One GPU per rank: a plain "cuda" picks the local rank's device.
  if (options.inference.device.kind == DeviceKind::kCuda && device == "cuda" && context.world.size() > 1) {
    const int local = context.world.LocalRank();
    const int gpus = CudaDeviceCount();
    options.inference.device.index = gpus > 0 ? local % gpus : 0;
  }
  SetTorchThreads(threads, 1);

  const StageReport report = RunEmbed(options, context.world);
  if (context.world.is_root()) {
    spdlog::info("{} images: {} ok, {} rejected; {} shard(s) embedded, {} already valid; see {}/embed",
                 report.counts.at("images_in"), report.counts.at("images_ok"), report.counts.at("images_rejected"),
                 report.counts.at("shards_embedded"), report.counts.at("shards_skipped"), options.run.string());
    if (report.counts.count("garments")) {
      spdlog::info("garments: {} in {} of {} segmented images (shards embedded this run)", report.counts.at("garments"),
                   report.counts.at("images_with_garments"), report.counts.at("images_segmented"));
    }
    PrintSummaryLine(SummaryJsonLine(report));
    if (report.status == "ok") KeepSummary(options.run, "embed", SummaryJsonLine(report));
  }
  return report.status == "stopped" ? kExitStopped : kExitOk;
}

}  // namespace lookbook
