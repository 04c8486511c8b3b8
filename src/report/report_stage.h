// `lookbook report`: a static HTML gallery of a run, for people to look at.
//
// RUN/report/ holds index.html (overview), clusters-N.html, substitutes-N.html, outfits-N.html,
// rejects-N.html, thumbs/ and a manifest; relative links only, no server
// (docs/outputs.md#report).
// Pages come from Mustache templates (src/report/templates.cpp); catalog text is escaped.
// Sections whose stage has not run say so. Runs on one process; thumbnails are made by
// --threads threads.
//
// At catalog scale the report shows what a catalog manager acts on, within a fixed size: per
// section at most --max-shown cards (clusters: the largest half, then a seeded sample of the
// rest; substitutes and outfits: a seeded sample; rejects and decisions: the first rows), the
// --max-shown cross-product candidates nearest the rule's threshold (near-N.html), and complete
// counts and plots. Thumbnails are made only for what is shown (docs/outputs.md#report).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "util/manifest.h"
#include "util/options.h"
#include "util/stage_report.h"

namespace lookbook {

// The defaults are the option table's (ReportOptionTable); config/README.md is generated from it.
struct ReportOptions {
  std::filesystem::path run;
  int page_size = 100;            // cards (clusters, products, photos) per page
  int reject_page_size = 500;     // rows per rejects page
  int thumb_side = 160;           // longest side of a thumbnail
  int photo_side = 360;           // longest side of an outfit photo
  int max_shown = 300;            // cards (rows) per section at most
  std::uint64_t sample_seed = 1;  // which sample of the rest is shown
  int threads = 2;                // thumbnail threads
  RerunPolicy rerun = RerunPolicy::kReuseValid;
  std::string code_version;
  std::filesystem::path previous_run;  // nightly: thumbnails of the same pictures are taken from it
};

// The options of `lookbook report`, declared once (util/options.h).
const OptionTable<ReportOptions>& ReportOptionTable();

// Throws InputError when the run has no valid ingest and embed stage or an output cannot be
// written; later stages that are missing leave their sections empty.
StageReport RunReport(const ReportOptions& options);

}  // namespace lookbook
