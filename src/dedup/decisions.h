// Reviewer decisions: DIR/decisions.csv of a runs root (docs/outputs.md#decisionscsv).
//
//   image_a,image_b,decision,who,when
//   P001/image_1,P002/image_1,not_duplicate,ana,2026-11-02
//
// Images are image keys (product/column). `decision` is duplicate or not_duplicate. Every night
// the dedup stage applies them after its rule and before clustering: a `duplicate` decision makes
// the pair a duplicate (published with decided_by = reviewer, even when the search never found
// it), a `not_duplicate` one removes it. A later row about the same two images supersedes an
// earlier one. A row that is not well formed is rejected with a reason and counted; a decision
// about an image that is not an ok image tonight is reported as unmatched, never dropped silently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lookbook {

inline constexpr const char* kDecisionsHeader = "image_a,image_b,decision,who,when";

struct Decision {
  std::string image_a, image_b;  // as written
  bool duplicate = false;
  std::string who, when;
  std::int64_t record = 0;  // 1 = first data record
};

struct RejectedDecision {
  std::vector<std::string> fields;  // as read (up to 5)
  std::string reason;               // "record N (line L): why"
};

struct DecisionsFile {
  std::vector<Decision> decisions;         // well formed, in file order
  std::vector<RejectedDecision> rejected;  // in file order
  std::int64_t total = 0;                  // data records; decisions + rejected == total
};

// Throws InputError when the header is not kDecisionsHeader; bad rows are rejected, not thrown.
DecisionsFile ParseDecisions(const std::string& name, const std::string& text);

// What a night made of each decision.
enum class DecisionStatus {
  kOverridesRule,   // the rule said otherwise: the reviewer's decision stands
  kAgreesWithRule,  // the rule already said so
  kSuperseded,      // a later row decides the same two images
  kUnmatched,       // an image is not an ok image of this run
  kRejected,        // the row is not well formed (RejectedDecision::reason)
};
const char* DecisionStatusName(DecisionStatus status);

}  // namespace lookbook
