// The report's Mustache templates (kainjow/mustache): one per page kind, plus the shared
// layout partials. {{name}} is HTML-escaped by the library; only {{{svg}}}-style triple
// mustaches insert markup, and only markup this project renders from numbers.
#pragma once

namespace lookbook::report_templates {

extern const char* const kHeader;       // partial "header": <head>, styles, navigation; needs title
extern const char* const kFooter;       // partial "footer"
extern const char* const kPager;        // partial "pager": pages (number, href, current), prev, next
extern const char* const kIndex;        // the overview
extern const char* const kClusters;     // duplicate clusters, one page
extern const char* const kNear;         // the cross-product candidates nearest the rule, one page
extern const char* const kSubstitutes;  // substitutes for out-of-stock products, one page
extern const char* const kOutfits;      // outfit photos with their garments and items, one page
extern const char* const kDecisions;    // reviewer decisions and what became of each
extern const char* const kRejects;      // rejected rows and images, one page
extern const char* const kHistogram;    // an SVG bar chart: bars (x, y, w, h), axis labels
extern const char* const kLines;        // an SVG line chart: series (points, colour, name)

}  // namespace lookbook::report_templates
