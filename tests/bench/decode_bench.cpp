// decode_bench: single-thread images/s of lookbook's decode + preprocess on JPEG files,
// against the raw TurboJPEG scaled decode of the same files at the same DCT scale, in one
// process. Also: --make DIR N writes N photo-like 1000x1333 JPEGs for the benchmarks.
//   decode_bench --make DIR N
//   decode_bench [--size S] [--seconds T] FILE...
#include <turbojpeg.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <string>
#include <vector>

#include "demo/fashion_mnist.h"
#include "demo/render.h"
#include "image/decode.h"
#include "image/preprocess.h"

namespace {

using Clock = std::chrono::steady_clock;

// Photo-like: a garment from Fashion-MNIST large on a textured, lit background with sensor
// noise, so the JPEGs have the entropy of real product photos (not flat synthetic colour).
void MakePhotos(const std::string& dir, int count) {
  const auto data = lookbook::FashionMnist::Load(lookbook::kFashionMnistDir, lookbook::FashionSplit::kTest);
  std::mt19937 rng(3);
  for (int i = 0; i < count; ++i) {
    const auto& colour = lookbook::DemoPalette()[static_cast<std::size_t>(i) % lookbook::DemoPalette().size()];
    const lookbook::BgrImage shot =
        lookbook::RenderProductShot(data.image(static_cast<std::size_t>(i) * 7), colour, 1000, 235);
    cv::Mat photo(1333, 1000, CV_8UC3, cv::Scalar(230, 232, 235));
    cv::Mat(1000, 1000, CV_8UC3, const_cast<std::uint8_t*>(shot.bgr.data()))
        .copyTo(photo(cv::Rect(0, 166, 1000, 1000)));
    cv::Mat noise(photo.size(), CV_16SC3);
    cv::randn(noise, 0, 6 + static_cast<int>(rng() % 6));
    cv::Mat lit;
    photo.convertTo(lit, CV_16SC3);
    for (int y = 0; y < lit.rows; ++y) {
      cv::Vec3s* row = lit.ptr<cv::Vec3s>(y);
      for (int x = 0; x < lit.cols; ++x) row[x] += cv::Vec3s::all(static_cast<short>((x - y) / 40));
    }
    lit += noise;
    lit.convertTo(photo, CV_8UC3);
    char name[64];
    std::snprintf(name, sizeof name, "/photo-%04d.jpg", i);
    cv::imwrite(dir + name, photo, {cv::IMWRITE_JPEG_QUALITY, 90});
  }
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

template <typename Body>
double ImagesPerSecond(const std::vector<std::string>& files, double seconds, Body body) {
  for (const auto& bytes : files) body(bytes);  // warm-up
  std::size_t done = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  while (elapsed < seconds) {
    for (const auto& bytes : files) body(bytes);
    done += files.size();
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  return static_cast<double>(done) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::strcmp(argv[1], "--make") == 0) {
    MakePhotos(argv[2], std::atoi(argv[3]));
    return 0;
  }
  int size = 224;
  double seconds = 3;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--size") == 0 && i + 1 < argc)
      size = std::atoi(argv[++i]);
    else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else
      files.push_back(ReadAll(argv[i]));
  }
  if (files.empty()) {
    std::cerr << "usage: decode_bench [--size S] [--seconds T] FILE... | --make DIR N\n";
    return 2;
  }
  lookbook::DecodeLimits limits;
  limits.min_side = size;
  lookbook::PreprocessSpec spec;
  spec.size = size;
  std::vector<float> pixels(static_cast<std::size_t>(3) * size * size);

  // The peer: TurboJPEG alone, scaled decode at the scale lookbook picks, into RGB.
  tjhandle tj = tjInitDecompress();
  int count = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&count);
  std::vector<unsigned char> buffer;
  std::string scale;
  const double raw = ImagesPerSecond(files, seconds, [&](const std::string& bytes) {
    int w, h, sub, cs;
    tjDecompressHeader3(tj, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), &w, &h, &sub, &cs);
    tjscalingfactor best{1, 1};
    for (int i = 0; i < count; ++i) {
      const auto f = factors[i];
      if (f.num <= f.denom && std::min(TJSCALED(w, f), TJSCALED(h, f)) >= size &&
          TJSCALED(w, f) * TJSCALED(h, f) < TJSCALED(w, best) * TJSCALED(h, best))
        best = f;
    }
    scale = std::to_string(best.num) + "/" + std::to_string(best.denom);
    buffer.resize(static_cast<std::size_t>(TJSCALED(w, best)) * TJSCALED(h, best) * 3);
    tjDecompress2(tj, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), buffer.data(),
                  TJSCALED(w, best), 0, TJSCALED(h, best), TJPF_RGB, 0);
  });
  tjDestroy(tj);
  const double decode = ImagesPerSecond(files, seconds, [&](const std::string& bytes) {
    const auto result = lookbook::DecodeImage(bytes, limits);
    if (result.status != lookbook::ImageStatus::kOk) std::abort();
  });
  const double preprocess = ImagesPerSecond(files, seconds, [&](const std::string& bytes) {
    const auto result = lookbook::DecodeImage(bytes, limits);
    lookbook::Preprocess(result.image, spec, pixels.data());
  });
  const double with_hash = ImagesPerSecond(files, seconds, [&](const std::string& bytes) {
    const auto result = lookbook::DecodeImage(bytes, limits);
    lookbook::Preprocess(result.image, spec, pixels.data());
    lookbook::ComputePerceptualHash(result.image);
  });
  std::cout << nlohmann::json{{"files", files.size()},
                              {"scale", scale},
                              {"turbojpeg_scaled_decode_per_s", raw},
                              {"lookbook_decode_per_s", decode},
                              {"lookbook_decode_preprocess_per_s", preprocess},
                              {"lookbook_decode_preprocess_phash_per_s", with_hash}}
                   .dump()
            << std::endl;
  return 0;
}
