#include "eval/dedup_eval.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include "catalog/csv.h"
#include "store/dedup_file.h"
#include "store/embed_run.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/manifest.h"

namespace lookbook {
namespace {

using Pair = std::pair<std::int64_t, std::int64_t>;

Pair Ordered(std::int64_t a, std::int64_t b) { return {std::min(a, b), std::max(a, b)}; }

// Image reference (as in the catalog) -> every image id that reads it.
std::unordered_map<std::string, std::vector<std::int64_t>> IdsByPath(const std::filesystem::path& run) {
  const EmbedRun embed = ReadEmbedRun(run);
  std::unordered_map<std::string, std::vector<std::int64_t>> ids;
  for (int k = 0; k < embed.shard_count; ++k) {
    const EmbedShard shard = ReadVerifiedShard(embed, k);
    for (std::size_t row = 0; row < shard.images.size(); ++row) {
      if (shard.images[row].status != 0) continue;  // never indexed: not a pair anybody could find
      ids[shard.images[row].path].push_back(ImageId(k, static_cast<std::int64_t>(row)));
    }
  }
  return ids;
}

// Every pair of ids within one connected component of the listed pairs.
std::set<Pair> Closure(const std::vector<std::vector<std::string>>& rows,
                       const std::unordered_map<std::string, std::vector<std::int64_t>>& ids, bool transitive) {
  std::map<std::int64_t, std::int64_t> parent;
  auto find = [&](std::int64_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  std::set<Pair> direct;
  for (const auto& row : rows) {
    if (row.size() < 2) continue;
    const auto a = ids.find(row[0]), b = ids.find(row[1]);
    if (a == ids.end() || b == ids.end()) continue;  // not in the run (rejected at ingest)
    for (const auto x : a->second) {
      for (const auto y : b->second) {
        if (x == y) continue;
        direct.insert(Ordered(x, y));
        parent.emplace(x, x);
        parent.emplace(y, y);
        parent[find(x)] = find(y);
      }
    }
  }
  if (!transitive) return direct;
  std::map<std::int64_t, std::vector<std::int64_t>> groups;
  for (const auto& [id, unused] : parent) groups[find(id)].push_back(id);
  std::set<Pair> all;
  for (const auto& [root, members] : groups) {
    for (std::size_t i = 0; i < members.size(); ++i)
      for (std::size_t j = i + 1; j < members.size(); ++j) all.insert(Ordered(members[i], members[j]));
  }
  return all;
}

}  // namespace

DedupEvaluation EvaluateDedup(const DedupEvalOptions& options) {
  const std::filesystem::path stage_dir = options.run / "dedup";
  std::string why;
  const auto manifest = ReadManifest(stage_dir, &why);
  if (!manifest) throw InputError("run " + options.run.string() + " has no dedup stage (" + why + ")");
  const std::string damaged = VerifyOutputs(stage_dir, *manifest);
  if (!damaged.empty()) throw InputError(stage_dir.string() + ": " + damaged);
  // The pairs' image ids must point into the embed stage as it is now.
  const std::string embed_manifest = ChecksumFile(options.run / "embed" / "manifest.json").checksum;
  const bool current = std::any_of(manifest->inputs.begin(), manifest->inputs.end(), [&](const ManifestEntry& input) {
    return input.path == "embed/manifest.json" && input.checksum == embed_manifest;
  });
  if (!current)
    throw InputError("the dedup stage of " + options.run.string() +
                     " is older than its embeddings: rerun lookbook dedup");
  const DedupFile dedup = ReadDedupFile(stage_dir / "dedup.h5");
  const auto ids = IdsByPath(options.run);
  const std::set<Pair> truth = Closure(ReadCsvFile(options.truth), ids, true);
  const std::set<Pair> negatives =
      options.negatives.empty() ? std::set<Pair>{} : Closure(ReadCsvFile(options.negatives), ids, false);
  if (truth.empty()) throw InputError(options.truth.string() + ": no pair of it is in the run");

  auto score = [&](const std::vector<Pair>& predicted, double* precision, double* recall) {
    std::size_t hits = 0;
    for (const auto& pair : predicted) hits += truth.count(pair);
    *precision = predicted.empty() ? 1.0 : static_cast<double>(hits) / static_cast<double>(predicted.size());
    *recall = static_cast<double>(hits) / static_cast<double>(truth.size());
    return hits;
  };
  auto f1 = [](double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; };

  DedupEvaluation out;
  std::vector<Pair> predicted;
  for (const auto& pair : dedup.pairs) predicted.push_back(Ordered(pair.a, pair.b));
  double precision = 0, recall = 0;
  const std::size_t hits = score(predicted, &precision, &recall);
  std::size_t flagged = 0;
  for (const auto& pair : predicted) flagged += negatives.count(pair);
  out.metrics = {{"truth_pairs", static_cast<double>(truth.size())},
                 {"predicted_pairs", static_cast<double>(predicted.size())},
                 {"true_positives", static_cast<double>(hits)},
                 {"precision", precision},
                 {"recall", recall},
                 {"f1", f1(precision, recall)},
                 {"negative_pairs", static_cast<double>(negatives.size())},
                 {"negatives_flagged", static_cast<double>(flagged)},
                 {"rule_verify", dedup.rule.verify ? 1.0 : 0.0},
                 {"rule_aligned", dedup.rule.aligned},
                 {"rule_aligned_phash", dedup.rule.aligned_phash},
                 {"rule_cosine", dedup.rule.cosine},
                 {"rule_phash_cosine", dedup.rule.phash_cosine},
                 {"rule_max_hamming", static_cast<double>(dedup.rule.max_hamming)}};

  // The sweep: the deciding threshold of the rule as run (the aligned correlation with
  // verification, the cosine without), its perceptual-hash clause held as run.
  out.sweep_signal = dedup.rule.signal_name();
  const double low = dedup.signal_floor();
  for (int step = static_cast<int>(std::ceil(low * 400 - 1e-6)); step <= 400; ++step) {
    const double threshold = step / 400.0;
    const DedupRule rule = dedup.rule.WithThreshold(static_cast<float>(threshold));
    std::vector<Pair> at;
    for (const auto& pair : dedup.candidates) {
      if (IsDuplicate(rule, pair)) at.push_back(Ordered(pair.a, pair.b));
    }
    SweepPoint point;
    point.threshold = threshold;
    score(at, &point.precision, &point.recall);
    point.f1 = f1(point.precision, point.recall);
    out.sweep.push_back(point);
  }
  return out;
}

}  // namespace lookbook
