// align_variants RUN OUT.csv: every candidate pair of RUN/dedup/dedup.h5, aligned from the align
// thumbnails embed stored, by the full-size search (AlignedCorrelation) and by coarse-to-fine
// searches of several settings (image/align.h AlignSearch), each timed. For choosing the
// verification cascade's settings on data (tests/bench/cascade_bench.py measures the result in
// the pipeline). One thread; the pairs in key order as dedup scores them.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "image/align.h"
#include "store/dedup_file.h"
#include "store/embed_run.h"
#include "store/embed_shard.h"

int main(int argc, char** argv) {
  using namespace lookbook;
  if (argc != 3) {
    std::cerr << "usage: align_variants RUN OUT.csv\n";
    return 2;
  }
  if (std::getenv("ALIGN_CV_THREADS")) cv::setNumThreads(std::atoi(std::getenv("ALIGN_CV_THREADS")));
  const std::filesystem::path run = argv[1];
  const EmbedRun embed = ReadEmbedRun(run);
  std::vector<EmbedShard> shards;
  for (int k = 0; k < embed.shard_count; ++k) shards.push_back(ReadVerifiedShard(embed, k, ShardParts::kAll));
  const DedupFile dedup = ReadDedupFile(run / "dedup" / "dedup.h5");
  struct Variant {
    std::string name;
    AlignSearch search;
    bool boxes = false;
  };
  std::vector<Variant> variants = {
      {"c2f_50_z_20", {50, true, 20, -1.5f}, false},    {"c2f_10_z_5_g65", {10, true, 5, 0.65f}, false},
      {"box_10_z_5_g65", {10, true, 5, 0.65f}, true},   {"box_15_z_5_g65", {15, true, 5, 0.65f}, true},
      {"box_10_z_10_g65", {10, true, 10, 0.65f}, true},
  };
  std::ofstream out(argv[2]);
  out << "i,full,full_us";
  for (const auto& v : variants) out << "," << v.name << "," << v.name << "_us," << v.name << "_half_colour";
  out << "\n";
  using Clock = std::chrono::steady_clock;
  auto us = [](Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); };
  for (std::size_t i = 0; i < dedup.candidates.size(); ++i) {
    const ScoredPair& pair = dedup.candidates[i];
    auto row = [&](std::int64_t id) -> const ImageRow& {
      return shards[static_cast<std::size_t>(ShardOfImageId(id))].images[static_cast<std::size_t>(RowOfImageId(id))];
    };
    auto thumb = [&](std::int64_t id) {
      return shards[static_cast<std::size_t>(ShardOfImageId(id))].align_thumbs.data() +
             static_cast<std::size_t>(RowOfImageId(id)) * kAlignThumbBytes;
    };
    const bool swap = row(pair.b).key < row(pair.a).key;
    const std::int64_t first = swap ? pair.b : pair.a, second = swap ? pair.a : pair.b;
    const AlignView a = ViewFromThumb(thumb(first)), b = ViewFromThumb(thumb(second));
    auto t = Clock::now();
    const float full = AlignedCorrelation(a, b);
    out << i << "," << full << "," << us(t);
    for (const auto& v : variants) {
      t = Clock::now();
      const ThumbStats sa{row(first).content_box, row(first).colour}, sb{row(second).content_box, row(second).colour};
      const AlignResult r = v.boxes ? AlignCoarseToFine(a, b, v.search, &sa, &sb) : AlignCoarseToFine(a, b, v.search);
      out << "," << r.aligned << "," << us(t) << "," << r.half_colour;
    }
    out << "\n";
  }
  return 0;
}
