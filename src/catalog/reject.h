// Why a catalog row or image reference was rejected: a closed vocabulary, written to
// RUN/ingest/rejects.csv as `row,product_id,column,path,reason,detail`.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace lookbook {

enum class RejectReason {
  // Whole rows.
  kInvalidUtf8,         // a field is not valid UTF-8
  kFieldCount,          // not as many fields as the header
  kMalformedQuote,      // text after a closing quote
  kUnterminatedQuote,   // a quote still open at the end of the file
  kRecordTooLong,       // longer than the reader's record limit
  kMissingProductId,    // empty id, or (Inditex) no image URL names a product reference
  kInvalidProductId,    // control characters, '/', or longer than 256 bytes
  kDuplicateProductId,  // the id was already taken by an earlier row (first one wins)
  kBadInStock,          // in_stock is not 0/1/true/false/yes/no or a stock count
  kNoImages,            // every image column is empty
  kAllImagesRejected,   // every image reference of the row was rejected
  // Single image references.
  kInvalidPath,   // control characters or NUL in the reference
  kBadUrl,        // (URL layouts) not an http(s) URL with a path
  kAbsolutePath,  // the reference is absolute
  kEscapesRoot,   // ".." leads above the image root
  kOutsideRoot,   // resolves (through a symlink) outside the image root
  kMissing,       // no such file (or a dangling symlink)
  kNotAFile,      // a folder, device, fifo, ...
  kEmptyFile,     // zero bytes
  kTooLarge,      // larger than the configured cap
  kUnreadable,    // stat failed for another reason (permissions, loops)
};

inline constexpr int kRejectReasonCount = static_cast<int>(RejectReason::kUnreadable) + 1;

// The snake_case name written to rejects.csv ("duplicate_product_id").
const char* RejectReasonName(RejectReason reason);

struct Reject {
  std::int64_t row = 0;    // 1-based data record (the header is row 0)
  std::string product_id;  // as far as known
  std::string column;      // the image column for image rejects; empty for whole rows
  std::string path;        // the reference as written in the catalog; empty for whole rows
  RejectReason reason = RejectReason::kMissing;
  std::string detail;  // more than the reason says (the lines a broken quote swallowed); usually empty
};

inline constexpr const char* kRejectsHeader = "row,product_id,column,path,reason,detail";

// Appends one rejects.csv line.
void AppendReject(const Reject& reject, std::string* out);

}  // namespace lookbook
