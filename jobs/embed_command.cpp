// lookbook embed --run RUN --model CLIP_BUNDLE [--segmenter UNET_BUNDLE] [--shard K]
// (every rank; mpirun for more)
#include <spdlog/spdlog.h>

#include "embed/embed_stage.h"
#include "jobs/command.h"
#include "util/error.h"
#include "util/stop.h"

namespace lookbook {

void DescribeEmbed(po::options_description* options) {
  options->add_options()("run", po::value<std::string>()->required()->value_name("DIR"),
                         "the run folder (reads DIR/ingest, writes DIR/embed)")(
      "model", po::value<std::string>()->required()->value_name("BUNDLE"), "CLIP model bundle folder (bundle.json)")(
      "shard", po::value<int>()->value_name("K"), "embed shard K only (no MPI launcher needed)")(
      "device", po::value<std::string>()->default_value("cpu")->value_name("DEV"),
      "cpu | cuda | cuda:N (cuda under MPI: local rank mod GPUs per node)")(
      "threads", po::value<int>()->default_value(1)->value_name("N"), "LibTorch intra-op threads per rank")(
      "decode-threads", po::value<int>()->default_value(2)->value_name("N"), "image decode threads per rank")(
      "batch-size", po::value<int>()->default_value(32)->value_name("N"), "images per inference batch, 1..4096")(
      "precision", po::value<std::string>()->default_value("fp32")->value_name("P"),
      "fp32 | bf16 (CPU with oneDNN, CUDA) | fp16 (CUDA)")(
      "embedding-dtype", po::value<std::string>()->default_value("float32")->value_name("T"),
      "float32 | float16 on disk")("max-image-bytes",
                                   po::value<std::uint64_t>()->default_value(64ull << 20)->value_name("BYTES"),
                                   "larger files are rejected (file_too_large)")(
      "max-pixels", po::value<std::uint64_t>()->default_value(100'000'000)->value_name("N"),
      "images with more pixels (from the header) are rejected (too_many_pixels)")(
      "progress-seconds", po::value<double>()->default_value(10.0)->value_name("S"), "seconds between progress lines")(
      "segmenter", po::value<std::string>()->value_name("BUNDLE"), "segmenter bundle: find, store and embed garments")(
      "segment-images", po::value<std::string>()->default_value("auto")->value_name("WHICH"),
      "all | auto (every image, kept with >= 2 garment slots) | a catalog image column (e.g. image_3)")(
      "garment-slots", po::value<std::string>()->default_value("")->value_name("MAP"),
      "class=slot,... overrides of the bundle's class-to-slot map (slot none drops a class)")(
      "garment-min-area", po::value<double>()->default_value(0.005)->value_name("F"),
      "smallest garment, as a fraction of the image")("garment-min-score",
                                                      po::value<double>()->default_value(0.7)->value_name("P"),
                                                      "smallest mean segmenter confidence over a garment")(
      "garment-cleanup", po::value<int>()->default_value(1)->value_name("R"),
      "opening radius in segmenter pixels that removes small blobs (0: off)")(
      "mask-side", po::value<int>()->default_value(128)->value_name("M"), "stored label maps are M x M per image")(
      "crop-margin", po::value<double>()->default_value(0.08)->value_name("F"),
      "garment crops grow by this fraction of their long side")("crop-fill",
                                                                po::value<int>()->default_value(245)->value_name("G"),
                                                                "grey level outside a garment's mask in its crop")(
      "segment-batch-size", po::value<int>()->default_value(8)->value_name("N"), "images per segmenter batch, 1..1024")(
      "force", po::bool_switch(), "redo every shard even when its output is valid");
}

int RunEmbedCommand(const po::variables_map& vm, const CommandContext& context) {
  EmbedOptions options;
  options.run = vm["run"].as<std::string>();
  options.model = vm["model"].as<std::string>();
  if (vm.count("shard")) options.only_shard = vm["shard"].as<int>();
  const std::string device = vm["device"].as<std::string>();
  if (!ParseDevice(device, &options.inference.device)) throw UsageError("--device must be cpu, cuda or cuda:N");
  if (!ParsePrecision(vm["precision"].as<std::string>(), &options.inference.precision)) {
    throw UsageError("--precision must be fp32, bf16 or fp16");
  }
  const std::string dtype = vm["embedding-dtype"].as<std::string>();
  if (dtype == "float16")
    options.storage = EmbeddingStorage::kFloat16;
  else if (dtype != "float32")
    throw UsageError("--embedding-dtype must be float32 or float16");
  const int threads = vm["threads"].as<int>();
  options.decode_threads = vm["decode-threads"].as<int>();
  options.batch_size = vm["batch-size"].as<int>();
  if (threads < 1 || threads > 256) throw UsageError("--threads must be in 1..256");
  if (options.decode_threads < 1 || options.decode_threads > 256)
    throw UsageError("--decode-threads must be in 1..256");
  if (options.batch_size < 1 || options.batch_size > 4096) throw UsageError("--batch-size must be in 1..4096");
  options.limits.max_file_bytes = vm["max-image-bytes"].as<std::uint64_t>();
  options.limits.max_pixels = vm["max-pixels"].as<std::uint64_t>();
  options.progress_seconds = vm["progress-seconds"].as<double>();
  options.rerun = vm["force"].as<bool>() ? RerunPolicy::kForce : RerunPolicy::kReuseValid;
  if (vm.count("segmenter")) options.segmenter = vm["segmenter"].as<std::string>();
  options.segment_images = vm["segment-images"].as<std::string>();
  if (options.segment_images.empty()) throw UsageError("--segment-images must be all, auto or a column name");
  options.slot_map = vm["garment-slots"].as<std::string>();
  options.garments.min_area = vm["garment-min-area"].as<double>();
  options.garments.min_score = vm["garment-min-score"].as<double>();
  if (!(options.garments.min_score >= 0 && options.garments.min_score <= 1))
    throw UsageError("--garment-min-score must be in [0, 1]");
  options.garments.cleanup_radius = vm["garment-cleanup"].as<int>();
  options.garments.mask_side = vm["mask-side"].as<int>();
  options.garments.crop_margin = vm["crop-margin"].as<double>();
  const int fill = vm["crop-fill"].as<int>();
  options.segment_batch_size = vm["segment-batch-size"].as<int>();
  if (!(options.garments.min_area >= 0 && options.garments.min_area < 1))
    throw UsageError("--garment-min-area must be in [0, 1)");
  if (options.garments.cleanup_radius < 0 || options.garments.cleanup_radius > 16)
    throw UsageError("--garment-cleanup must be in 0..16");
  if (options.garments.mask_side < 8 || options.garments.mask_side > 1024)
    throw UsageError("--mask-side must be in 8..1024");
  if (!(options.garments.crop_margin >= 0 && options.garments.crop_margin <= 1))
    throw UsageError("--crop-margin must be in [0, 1]");
  if (fill < 0 || fill > 255) throw UsageError("--crop-fill must be in 0..255");
  options.garments.crop_fill = static_cast<std::uint8_t>(fill);
  if (options.segment_batch_size < 1 || options.segment_batch_size > 1024)
    throw UsageError("--segment-batch-size must be in 1..1024");
  options.code_version = context.code_version;

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
