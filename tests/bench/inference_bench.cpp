// inference_bench BUNDLE --batch B --threads T [--seconds S] [--precision fp32|bf16] [--start-at EPOCH]:
// images/s of lookbook's ImageEncoder (CLIP bundles) or Segmenter (segmenter bundles) on
// random input, the way the embed stage calls them. --start-at: after loading and one warm-up
// batch, wait for that wall-clock time (seconds since the epoch) before measuring, so that a
// peer started beside it measures the same window; the output says "late" when the warm-up
// overran it, and gives the measured window.
#include <chrono>
#include <cstring>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "model/bundle.h"
#include "model/encoders.h"
#include "model/segmenter.h"
#include "util/blas.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: inference_bench BUNDLE [--batch B] [--threads T] [--seconds S] [--precision P]\n";
    return 2;
  }
  int batch = 8, threads = 1;
  double seconds = 10, start_at = 0;
  lookbook::InferenceOptions options;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--batch") == 0)
      batch = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--threads") == 0)
      threads = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--seconds") == 0)
      seconds = std::atof(argv[i + 1]);
    else if (std::strcmp(argv[i], "--precision") == 0)
      lookbook::ParsePrecision(argv[i + 1], &options.precision);
    else if (std::strcmp(argv[i], "--start-at") == 0)
      start_at = std::atof(argv[i + 1]);
  }
  lookbook::SetTorchThreads(threads, 1);
  const auto bundle = lookbook::LoadBundle(argv[1]);
  std::function<void(const float*, int)> run;
  if (bundle.kind == lookbook::BundleKind::kSegmenter) {
    auto segmenter = std::make_shared<lookbook::Segmenter>(lookbook::Segmenter::Load(bundle, options));
    run = [segmenter](const float* pixels, int n) {
      std::vector<float> confidence;
      segmenter->Segment(pixels, n, &confidence);
    };
  } else {
    auto encoder = std::make_shared<lookbook::ImageEncoder>(lookbook::ImageEncoder::Load(bundle, options));
    run = [encoder](const float* pixels, int n) { encoder->Encode(pixels, n); };
  }
  const int size = bundle.preprocess.size;
  std::vector<float> pixels(static_cast<std::size_t>(batch) * 3 * size * size);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (auto& p : pixels) p = normal(rng);
  run(pixels.data(), batch);  // warm-up
  const auto now_epoch = [] {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  };
  const bool late = start_at > 0 && now_epoch() > start_at;
  if (start_at > 0 && !late) std::this_thread::sleep_for(std::chrono::duration<double>(start_at - now_epoch()));
  const double window_start = now_epoch();
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  int images = 0;
  double elapsed = 0;
  while (elapsed < seconds) {
    run(pixels.data(), batch);
    images += batch;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  std::cout << nlohmann::json{{"bundle", bundle.name},
                              {"input_size", size},
                              {"batch", batch},
                              {"threads", threads},
                              {"images_per_s", images / elapsed},
                              {"window", {window_start, window_start + elapsed}},
                              {"late", late},
                              {"precision", lookbook::PrecisionName(options.precision)},
                              {"blas_core", lookbook::BlasCoreName()},
                              {"blas_threads", lookbook::BlasThreads()}}
                   .dump()
            << std::endl;
  return 0;
}
