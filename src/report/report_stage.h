// `lookbook report`: a static HTML gallery of a run, for people to look at.
//
// RUN/report/ (relative links only; open index.html from disk, no server):
//   index.html         overview: each stage's state and counts, rejects by reason, throughput
//                      per stage and rank (from RUN/summaries/<stage>.json), the histogram of the
//                      pair similarities dedup scored, the dedup threshold sweep and the
//                      recommendation metrics when RUN/eval/ has them (inline SVG)
//   clusters-N.html    duplicate clusters, page_size a page: thumbnails side by side (the
//                      representative framed), every pair with cosine, Hamming distance, kind
//   substitutes-N.html out-of-stock products and their substitutes
//   outfits-N.html     outfit photos with the garment boxes drawn and the items per slot
//   rejects-N.html     every rejected catalog row and image with its reason
//   thumbs/S-R.jpg     thumbnails (image shard S, row R), made with OpenCV from the decoded
//                      images (the embed stage's safe decoder); never for rejected images
//   manifest.json      inputs (the stage manifests and eval files read), every output
// Pages come from Mustache templates (src/report/templates.cpp); catalog text is escaped.
// Sections whose stage has not run say so. Runs on one rank.
#pragma once

#include <filesystem>
#include <string>

#include "util/manifest.h"
#include "util/stage_report.h"

namespace lookbook {

struct ReportOptions {
  std::filesystem::path run;
  int page_size = 100;         // cards (clusters, products, photos) per page
  int reject_page_size = 500;  // rows per rejects page
  int thumb_side = 160;        // longest side of a thumbnail
  int photo_side = 360;        // longest side of an outfit photo
  RerunPolicy rerun = RerunPolicy::kReuseValid;
  std::string code_version;
};

// Throws InputError when the run has no valid ingest and embed stage or an output cannot be
// written; later stages that are missing leave their sections empty.
StageReport RunReport(const ReportOptions& options);

}  // namespace lookbook
