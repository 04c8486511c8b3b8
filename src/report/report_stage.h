// `lookbook report`: a static HTML gallery of a run, for people to look at.
//
// RUN/report/ holds index.html (overview), clusters-N.html, substitutes-N.html, outfits-N.html,
// rejects-N.html, thumbs/ and a manifest; relative links only, no server
// (docs/outputs.md#report).
// Pages come from Mustache templates (src/report/templates.cpp); catalog text is escaped.
// Sections whose stage has not run say so. Runs on one rank.
#pragma once

#include <filesystem>
#include <string>

#include "util/manifest.h"
#include "util/options.h"
#include "util/stage_report.h"

namespace lookbook {

// The defaults are the option table's (ReportOptionTable); config/README.md is generated from it.
struct ReportOptions {
  std::filesystem::path run;
  int page_size = 100;         // cards (clusters, products, photos) per page
  int reject_page_size = 500;  // rows per rejects page
  int thumb_side = 160;        // longest side of a thumbnail
  int photo_side = 360;        // longest side of an outfit photo
  RerunPolicy rerun = RerunPolicy::kReuseValid;
  std::string code_version;
};

// The options of `lookbook report`, declared once (util/options.h).
const OptionTable<ReportOptions>& ReportOptionTable();

// Throws InputError when the run has no valid ingest and embed stage or an output cannot be
// written; later stages that are missing leave their sections empty.
StageReport RunReport(const ReportOptions& options);

}  // namespace lookbook
