#include "catalog/reject.h"

#include "catalog/csv.h"

namespace lookbook {

const char* RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kInvalidUtf8: return "invalid_utf8";
    case RejectReason::kFieldCount: return "field_count";
    case RejectReason::kMalformedQuote: return "malformed_quote";
    case RejectReason::kUnterminatedQuote: return "unterminated_quote";
    case RejectReason::kRecordTooLong: return "record_too_long";
    case RejectReason::kMissingProductId: return "missing_product_id";
    case RejectReason::kInvalidProductId: return "invalid_product_id";
    case RejectReason::kDuplicateProductId: return "duplicate_product_id";
    case RejectReason::kBadInStock: return "bad_in_stock";
    case RejectReason::kNoImages: return "no_images";
    case RejectReason::kAllImagesRejected: return "all_images_rejected";
    case RejectReason::kInvalidPath: return "invalid_path";
    case RejectReason::kBadUrl: return "bad_url";
    case RejectReason::kAbsolutePath: return "absolute_path";
    case RejectReason::kEscapesRoot: return "escapes_root";
    case RejectReason::kOutsideRoot: return "outside_root";
    case RejectReason::kMissing: return "missing";
    case RejectReason::kNotAFile: return "not_a_file";
    case RejectReason::kEmptyFile: return "empty_file";
    case RejectReason::kTooLarge: return "too_large";
    case RejectReason::kUnreadable: return "unreadable";
  }
  return "unknown";
}

void AppendReject(const Reject& reject, std::string* out) {
  const std::string row = std::to_string(reject.row);
  AppendCsvRowForPeople(
      {row, reject.product_id, reject.column, reject.path, RejectReasonName(reject.reason), reject.detail}, out);
}

}  // namespace lookbook
