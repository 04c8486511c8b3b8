// libFuzzer target for the CSV reader: any bytes must parse into records without a crash,
// a hang or a sanitizer report, every field of an error-free record must be valid UTF-8,
// and writing the fields back and reading them again must give the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "catalog/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lookbook;
  CsvReader reader =
      CsvReader::FromString(std::string(reinterpret_cast<const char*>(data), size), CsvReaderLimits{4096});
  CsvRecord record;
  std::int64_t expected_index = 0;
  while (reader.Next(&record)) {
    if (record.index != expected_index++) std::abort();
    if (record.fields.empty()) std::abort();
    if (record.error != CsvError::kNone) continue;
    std::string text;
    std::vector<std::string_view> views(record.fields.begin(), record.fields.end());
    for (const auto& field : record.fields) {
      if (!IsValidUtf8(field)) std::abort();
    }
    // A record of one empty field writes as a blank line, which is not a record.
    if (record.fields.size() == 1 && record.fields[0].empty()) continue;
    AppendCsvRow(views, &text);
    CsvReader again = CsvReader::FromString(text);
    CsvRecord copy;
    if (!again.Next(&copy) || copy.fields != record.fields) std::abort();
    if (again.Next(&copy)) std::abort();
  }
  return 0;
}
