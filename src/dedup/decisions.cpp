#include "dedup/decisions.h"

#include <algorithm>

#include "catalog/csv.h"
#include "util/error.h"

namespace lookbook {

DecisionsFile ParseDecisions(const std::string& name, const std::string& text) {
  CsvReader reader = CsvReader::FromString(text);
  CsvRecord record;
  if (!reader.Next(&record)) throw InputError(name + " is empty: it needs the header " + kDecisionsHeader);
  std::string header;
  for (std::size_t i = 0; i < record.fields.size(); ++i) header += (i ? "," : "") + record.fields[i];
  if (record.error != CsvError::kNone || header != kDecisionsHeader) {
    throw InputError(name + ": the header is '" + header + "', not '" + kDecisionsHeader + "'");
  }
  DecisionsFile out;
  while (reader.Next(&record)) {
    ++out.total;
    auto reject = [&](const std::string& why) {
      RejectedDecision rejected;
      rejected.fields.assign(record.fields.begin(),
                             record.fields.begin() + static_cast<long>(std::min<std::size_t>(record.fields.size(), 5)));
      rejected.reason =
          "record " + std::to_string(record.index) + " (line " + std::to_string(record.first_line) + "): " + why;
      out.rejected.push_back(std::move(rejected));
    };
    if (record.error != CsvError::kNone) {
      reject(CsvErrorName(record.error));
      continue;
    }
    if (record.fields.size() != 5) {
      reject(std::to_string(record.fields.size()) + " fields, not 5");
      continue;
    }
    Decision decision;
    decision.image_a = record.fields[0];
    decision.image_b = record.fields[1];
    decision.who = record.fields[3];
    decision.when = record.fields[4];
    decision.record = record.index;
    const std::string& what = record.fields[2];
    if (decision.image_a.empty() || decision.image_b.empty()) {
      reject("an image key is empty");
    } else if (decision.image_a == decision.image_b) {
      reject("image_a and image_b are the same image");
    } else if (what != "duplicate" && what != "not_duplicate") {
      reject("decision '" + what + "' is not duplicate or not_duplicate");
    } else {
      decision.duplicate = what == "duplicate";
      out.decisions.push_back(std::move(decision));
    }
  }
  return out;
}

const char* DecisionStatusName(DecisionStatus status) {
  switch (status) {
    case DecisionStatus::kOverridesRule: return "overrides_rule";
    case DecisionStatus::kAgreesWithRule: return "agrees_with_rule";
    case DecisionStatus::kSuperseded: return "superseded";
    case DecisionStatus::kUnmatched: return "unmatched";
    case DecisionStatus::kRejected: return "rejected";
  }
  LB_CHECK(false, "unknown decision status");
  return "";
}

}  // namespace lookbook
