#include "eval/dedup_eval.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "catalog/csv.h"
#include "eval/metrics.h"
#include "stage/run_status.h"
#include "stage/stage.h"
#include "store/dedup_file.h"
#include "store/embed_run.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/manifest.h"

namespace lookbook {
namespace {

// Image reference (as in the catalog) -> the ids of its images, ok or not.
struct RunImages {
  std::unordered_map<std::string, std::vector<std::int64_t>> ok;  // embedded: could be found
  std::set<std::string> all;                                      // every reference the run holds
};

RunImages ImagesByPath(const std::filesystem::path& run) {
  const EmbedRun embed = ReadEmbedRun(run);
  RunImages out;
  for (int k = 0; k < embed.shard_count; ++k) {
    const EmbedShard shard = ReadVerifiedShard(embed, k);
    for (std::size_t row = 0; row < shard.images.size(); ++row) {
      out.all.insert(shard.images[row].path);
      if (shard.images[row].status != 0) continue;  // never indexed: not a pair anybody could find
      out.ok[shard.images[row].path].push_back(ImageId(k, static_cast<std::int64_t>(row)));
    }
  }
  return out;
}

// The listed pairs of references as pairs of ids (every id of one reference with every id of
// the other). Rows whose images are not in the run, or not embedded, are counted, not scored.
struct ListedPairs {
  std::vector<IdPair> pairs;
  std::int64_t rows_not_in_run = 0;
  std::int64_t rows_not_embedded = 0;
};

ListedPairs ToIds(const std::vector<std::vector<std::string>>& rows, const RunImages& images) {
  ListedPairs out;
  for (const auto& row : rows) {
    if (row.size() < 2) continue;
    if (!images.all.count(row[0]) || !images.all.count(row[1])) {
      ++out.rows_not_in_run;
      continue;
    }
    const auto a = images.ok.find(row[0]), b = images.ok.find(row[1]);
    if (a == images.ok.end() || b == images.ok.end()) {
      ++out.rows_not_embedded;
      continue;
    }
    for (const auto x : a->second) {
      for (const auto y : b->second) {
        if (x != y) out.pairs.push_back(Ordered(x, y));
      }
    }
  }
  return out;
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
  if (const std::string stale = StaleInputs(options.run, "dedup"); !stale.empty()) {
    throw InputError("the dedup stage of " + options.run.string() + " is stale (" + stale + "): rerun lookbook dedup");
  }
  const DedupFile dedup = ReadDedupFile(stage_dir / "dedup.h5");
  const RunImages images = ImagesByPath(options.run);
  const ListedPairs truth_rows = ToIds(ReadCsvFile(options.truth), images);
  const std::set<IdPair> truth = PairClosure(truth_rows.pairs);
  ListedPairs negative_rows;
  if (!options.negatives.empty()) negative_rows = ToIds(ReadCsvFile(options.negatives), images);
  const std::set<IdPair> negatives(negative_rows.pairs.begin(), negative_rows.pairs.end());
  if (truth.empty()) throw InputError(options.truth.string() + ": no pair of it is in the run");
  if (truth_rows.rows_not_in_run + truth_rows.rows_not_embedded > 0) {
    spdlog::warn(
        "eval dedup: {} truth row(s) name an image the run does not hold and {} an image it could not "
        "embed: they are not scored",
        truth_rows.rows_not_in_run, truth_rows.rows_not_embedded);
  }

  DedupEvaluation out;
  std::vector<IdPair> predicted;
  for (const auto& pair : dedup.pairs) predicted.push_back(Ordered(pair.a, pair.b));
  const PairScore score = ScorePairs(predicted, truth);
  std::size_t flagged = 0;
  for (const auto& pair : predicted) flagged += negatives.count(pair);
  out.metrics = {{"truth_pairs", static_cast<double>(truth.size())},
                 {"truth_rows_not_in_run", static_cast<double>(truth_rows.rows_not_in_run)},
                 {"truth_rows_not_embedded", static_cast<double>(truth_rows.rows_not_embedded)},
                 {"predicted_pairs", static_cast<double>(predicted.size())},
                 {"true_positives", static_cast<double>(score.hits)},
                 {"precision", score.precision},
                 {"recall", score.recall},
                 {"f1", score.f1},
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
  out.sweep = SweepRule(dedup.rule, dedup.candidates, truth, dedup.signal_floor());
  return out;
}

std::vector<SweepPoint> SweepRule(const DedupRule& rule, const std::vector<ScoredPair>& candidates,
                                  const std::set<IdPair>& truth, double low) {
  std::vector<SweepPoint> out;
  for (int step = static_cast<int>(std::ceil(low * 400 - 1e-6)); step <= 400; ++step) {
    const double threshold = step / 400.0;
    const DedupRule at_threshold = rule.WithThreshold(static_cast<float>(threshold));
    std::vector<IdPair> at;
    for (const auto& pair : candidates) {
      if (IsDuplicate(at_threshold, pair)) at.push_back(Ordered(pair.a, pair.b));
    }
    const PairScore scored = ScorePairs(at, truth);
    SweepPoint point;
    point.threshold = threshold;
    point.precision = scored.precision;
    point.recall = scored.recall;
    point.f1 = scored.f1;
    out.push_back(point);
  }
  return out;
}

}  // namespace lookbook
