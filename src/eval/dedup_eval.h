// `lookbook eval dedup`: a run's duplicate pairs against known ones (the demo catalog's
// truth/duplicates.csv or any CSV whose first two columns are image references as written
// in the catalog).
//
// Known pairs are transitive: every two images of one truth cluster form a truth pair.
//   truth_pairs, predicted_pairs, true_positives
//   precision, recall, f1          of RUN/dedup's pairs (the configured rule)
//   negatives_flagged              predicted pairs that are listed as negatives (the demo's
//                                  colour variants: the same garment in another colour)
// and a sweep over the rule's deciding threshold (the aligned correlation when the run verified
// its candidates, else the cosine; the perceptual-hash clause held as configured), recomputed
// from every candidate pair in dedup.h5: for each threshold the precision, recall and F1.
// Written to RUN/eval/dedup.json for the report.
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "eval/metrics.h"
#include "store/dedup_file.h"

namespace lookbook {

struct DedupEvalOptions {
  std::filesystem::path run;
  std::filesystem::path truth;      // CSV: image_a,image_b,...
  std::filesystem::path negatives;  // optional CSV: image_a,image_b (pairs that must not be flagged)
};

struct SweepPoint {
  double threshold = 0, precision = 0, recall = 0, f1 = 0;
};

struct DedupEvaluation {
  std::map<std::string, double> metrics;
  std::string sweep_signal;  // "aligned" or "cosine"
  std::vector<SweepPoint> sweep;
};

// The sweep: for every threshold from `low` to 1 in steps of 1/400 (the first step at or above
// `low`), the precision, recall and F1 against `truth` of the candidates `rule` with that
// deciding threshold (rule.WithThreshold) calls duplicates.
std::vector<SweepPoint> SweepRule(const DedupRule& rule, const std::vector<ScoredPair>& candidates,
                                  const std::set<IdPair>& truth, double low);

// Throws InputError when the run has no valid dedup stage or the truth cannot be read.
DedupEvaluation EvaluateDedup(const DedupEvalOptions& options);

}  // namespace lookbook
