// CSV per RFC 4180, read as a stream of records and written with minimal quoting.
//
// Reading accepts: a header record first; fields quoted with '"' holding commas, doubled
// quotes and line breaks; CRLF, LF or lone CR record ends; an optional UTF-8 byte-order mark
// at the start of the file; a missing line break after the last record. A quote inside an
// unquoted field is kept as a literal character (as Python's csv and pandas do). Lines with
// no characters at all are not records: they are counted in blank_lines() and skipped.
//
// A record that is not well formed is still returned, with `error` set, so the caller can
// reject it with a reason and go on: invalid UTF-8 in any field, text after a closing quote,
// a quote left open at the end of the file, a record longer than max_record_bytes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lookbook {

enum class CsvError {
  kNone,
  kInvalidUtf8,
  kMalformedQuote,     // characters between a closing quote and the next separator
  kUnterminatedQuote,  // end of file inside a quoted field
  kRecordTooLong,
};

const char* CsvErrorName(CsvError error);

struct CsvRecord {
  std::int64_t index = 0;       // 0 = header, 1 = first data record, ...
  std::int64_t first_line = 0;  // 1-based physical line the record starts on
  std::vector<std::string> fields;
  CsvError error = CsvError::kNone;
};

struct CsvReaderLimits {
  std::size_t max_record_bytes = 1 << 20;
};

class CsvReader {
 public:
  // Throws InputError when the file cannot be opened.
  static CsvReader Open(const std::filesystem::path& path, CsvReaderLimits limits = {});
  // Reads from memory (tests, fuzzing).
  static CsvReader FromString(std::string text, CsvReaderLimits limits = {});

  CsvReader(CsvReader&&) noexcept;
  CsvReader& operator=(CsvReader&&) noexcept;
  ~CsvReader();

  // Fills *record with the next record; false at the end of the input. Throws InputError on a
  // read error of the underlying file.
  bool Next(CsvRecord* record);

  std::int64_t blank_lines() const;
  std::uint64_t bytes_read() const;

 private:
  struct State;
  explicit CsvReader(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// A small, trusted CSV file (truth tables, the project's own outputs) read whole: the data
// records' fields, the header checked against `header` (comma-separated) when it is not empty.
// Throws InputError naming the file and record for a damaged record, a record with another
// number of fields than the header, or another header.
std::vector<std::vector<std::string>> ReadCsvFile(const std::filesystem::path& path, std::string_view header = {});
// The same for bytes already read (and checked against a manifest); `name` names them in errors.
std::vector<std::vector<std::string>> ParseCsvText(const std::string& name, std::string text,
                                                   std::string_view header = {});

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points
// above U+10FFFF).
bool IsValidUtf8(std::string_view text);

// Appends `field` to *out, quoted when it holds a comma, quote, CR or LF, starts or ends
// with a space, or starts with a UTF-8 byte-order mark.
void AppendCsvField(std::string_view field, std::string* out);
// Appends one record and a "\n".
void AppendCsvRow(const std::vector<std::string_view>& fields, std::string* out);

// Files for people (ingest/rejects.csv, dedup/decisions.csv: opened in a spreadsheet) escape
// formulas as OWASP's CSV-injection advice says: a cell that starts with =, +, -, @, a tab or a
// carriage return is written with a leading ' (text, not a formula), quoted as any cell. The
// machine tables (ingest shards, pairs.csv, clusters.csv, substitutes.csv, outfits.csv) stay
// exact: downstream systems join on their ids (docs/outputs.md#files-for-people-and-for-machines).
bool LooksLikeFormula(std::string_view cell);
void AppendCsvRowForPeople(const std::vector<std::string_view>& fields, std::string* out);
// The cell as it was before AppendCsvRowForPeople (lookbook's own readers of those files).
std::string FromPeopleCell(std::string_view cell);

}  // namespace lookbook
