#include "catalog/csv.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace lookbook {

const char* CsvErrorName(CsvError error) {
  switch (error) {
    case CsvError::kNone: return "none";
    case CsvError::kInvalidUtf8: return "invalid_utf8";
    case CsvError::kMalformedQuote: return "malformed_quote";
    case CsvError::kUnterminatedQuote: return "unterminated_quote";
    case CsvError::kRecordTooLong: return "record_too_long";
  }
  return "unknown";
}

struct CsvReader::State {
  // Input: either a file descriptor refilled into `buffer`, or a whole string in `buffer`.
  int fd = -1;
  std::string path;
  std::string buffer;
  std::size_t pos = 0;
  bool eof = false;
  CsvReaderLimits limits;

  std::int64_t next_index = 0;
  std::int64_t line = 1;
  std::int64_t blank_lines = 0;
  std::uint64_t bytes_read = 0;
  bool at_start = true;

  ~State() {
    if (fd >= 0) ::close(fd);
  }

  // Returns the next byte or -1 at the end of the input.
  int Get() {
    if (pos >= buffer.size()) {
      if (!Refill()) return -1;
    }
    ++bytes_read;
    return static_cast<unsigned char>(buffer[pos++]);
  }
  int Peek() {
    if (pos >= buffer.size()) {
      if (!Refill()) return -1;
    }
    return static_cast<unsigned char>(buffer[pos]);
  }
  bool Refill() {
    if (fd < 0 || eof) return false;
    buffer.resize(1 << 20);
    for (;;) {
      const ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        throw InputError("cannot read " + path + ": " + std::strerror(errno));
      }
      buffer.resize(static_cast<std::size_t>(n));
      pos = 0;
      if (n == 0) eof = true;
      return n > 0;
    }
  }
};

CsvReader::CsvReader(std::unique_ptr<State> state) : state_(std::move(state)) {}
CsvReader::CsvReader(CsvReader&&) noexcept = default;
CsvReader& CsvReader::operator=(CsvReader&&) noexcept = default;
CsvReader::~CsvReader() = default;

CsvReader CsvReader::Open(const std::filesystem::path& path, CsvReaderLimits limits) {
  auto state = std::make_unique<State>();
  state->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (state->fd < 0) {
    throw InputError("cannot open catalog " + path.string() + ": " + std::strerror(errno));
  }
  state->path = path.string();
  state->limits = limits;
  return CsvReader(std::move(state));
}

CsvReader CsvReader::FromString(std::string text, CsvReaderLimits limits) {
  auto state = std::make_unique<State>();
  state->buffer = std::move(text);
  state->limits = limits;
  return CsvReader(std::move(state));
}

std::int64_t CsvReader::blank_lines() const { return state_->blank_lines; }
std::uint64_t CsvReader::bytes_read() const { return state_->bytes_read; }

bool CsvReader::Next(CsvRecord* record) {
  State& s = *state_;
  if (s.at_start) {
    s.at_start = false;
    // A UTF-8 byte-order mark is not part of the first field name.
    if (s.Peek() == 0xEF) {
      const std::size_t mark = s.pos;
      if (s.buffer.size() - mark >= 3 && static_cast<unsigned char>(s.buffer[mark + 1]) == 0xBB &&
          static_cast<unsigned char>(s.buffer[mark + 2]) == 0xBF) {
        s.pos += 3;
        s.bytes_read += 3;
      }
    }
  }
  // A line with no characters is not a record.
  for (;;) {
    const int c = s.Peek();
    if (c < 0) return false;
    if (c != '\n' && c != '\r') break;
    s.Get();
    if (c == '\r' && s.Peek() == '\n') s.Get();
    ++s.blank_lines;
    ++s.line;
  }

  record->index = s.next_index++;
  record->first_line = s.line;
  record->error = CsvError::kNone;
  // Field strings are reused from record to record: their capacity stays.
  std::size_t field_count = 0;
  auto next_field = [&]() -> std::string* {
    if (record->fields.size() <= field_count) record->fields.emplace_back();
    std::string* field = &record->fields[field_count++];
    field->clear();
    return field;
  };
  std::string* field = next_field();
  std::size_t record_bytes = 0;
  bool too_long = false;
  auto append = [&](const char* bytes, std::size_t n) {
    record_bytes += n;
    if (record_bytes > s.limits.max_record_bytes) too_long = true;
    if (!too_long) field->append(bytes, n);
  };
  auto set_error = [&](CsvError error) {
    if (record->error == CsvError::kNone) record->error = error;
  };

  // The scanner works on spans of the buffer: plain text is copied in one append.
  enum class Mode { kFieldStart, kUnquoted, kQuoted, kAfterQuote } mode = Mode::kFieldStart;
  for (;;) {
    if (s.pos >= s.buffer.size() && !s.Refill()) {
      if (mode == Mode::kQuoted) set_error(CsvError::kUnterminatedQuote);
      break;
    }
    const char* data = s.buffer.data();
    const std::size_t end = s.buffer.size();
    const std::size_t start = s.pos;
    if (mode == Mode::kQuoted) {
      std::size_t stop = start;
      while (stop < end && data[stop] != '"' && data[stop] != '\n') ++stop;
      append(data + start, stop - start);
      s.bytes_read += stop - start;
      s.pos = stop;
      if (stop == end) continue;
      ++s.pos;
      ++s.bytes_read;
      if (data[stop] == '\n') {
        ++s.line;
        append("\n", 1);
      } else if (s.Peek() == '"') {
        s.Get();
        append("\"", 1);
      } else {
        mode = Mode::kAfterQuote;
      }
      continue;
    }
    const char ch = data[start];
    if (ch == ',' || ch == '\n' || ch == '\r' || (mode == Mode::kFieldStart && ch == '"')) {
      ++s.pos;
      ++s.bytes_read;
      if (ch == ',') {
        field = next_field();
        mode = Mode::kFieldStart;
        continue;
      }
      if (ch == '"') {
        mode = Mode::kQuoted;
        continue;
      }
      if (ch == '\r' && s.Peek() == '\n') s.Get();
      ++s.line;
      break;
    }
    if (mode == Mode::kAfterQuote) set_error(CsvError::kMalformedQuote);
    mode = Mode::kUnquoted;
    std::size_t stop = start;
    while (stop < end && data[stop] != ',' && data[stop] != '\n' && data[stop] != '\r') ++stop;
    append(data + start, stop - start);
    s.bytes_read += stop - start;
    s.pos = stop;
  }
  record->fields.resize(field_count);

  if (too_long) {
    record->error = CsvError::kRecordTooLong;
    record->fields.assign(1, std::string());
  } else if (record->error == CsvError::kNone) {
    for (const auto& value : record->fields) {
      if (!IsValidUtf8(value)) {
        record->error = CsvError::kInvalidUtf8;
        break;
      }
    }
  }
  return true;
}

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // ASCII fast path, eight bytes at a time.
    while (end - p >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, sizeof word);
      if (word & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p >= end) break;
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    std::uint32_t code;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      code = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      code = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;  // continuation byte, overlong lead (C0, C1) or F5..FF
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3F);
    }
    if ((extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000) || code > 0x10FFFF ||
        (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    p += extra + 1;
  }
  return true;
}

void AppendCsvField(std::string_view field, std::string* out) {
  // A leading byte-order mark is quoted too: unquoted at the start of a file, a reader
  // would take it for the file's BOM.
  bool special = false;
  for (const char ch : field) {
    if (ch == ',' || ch == '"' || ch == '\r' || ch == '\n') {
      special = true;
      break;
    }
  }
  const bool needs_quotes = special || (!field.empty() && (field.front() == ' ' || field.back() == ' ')) ||
                            field.substr(0, 3) == "\xEF\xBB\xBF";
  if (!needs_quotes) {
    out->append(field.data(), field.size());
    return;
  }
  out->push_back('"');
  for (const char ch : field) {
    if (ch == '"') out->push_back('"');
    out->push_back(ch);
  }
  out->push_back('"');
}

void AppendCsvRow(const std::vector<std::string_view>& fields, std::string* out) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendCsvField(fields[i], out);
  }
  out->push_back('\n');
}

bool LooksLikeFormula(std::string_view cell) {
  return !cell.empty() &&
         (cell[0] == '=' || cell[0] == '+' || cell[0] == '-' || cell[0] == '@' || cell[0] == '\t' || cell[0] == '\r');
}

void AppendCsvRowForPeople(const std::vector<std::string_view>& fields, std::string* out) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out->push_back(',');
    // A cell that already starts with ' gets one more, so that FromPeopleCell gives it back.
    if (LooksLikeFormula(fields[i]) || (!fields[i].empty() && fields[i][0] == '\'')) {
      AppendCsvField("'" + std::string(fields[i]), out);
    } else {
      AppendCsvField(fields[i], out);
    }
  }
  out->push_back('\n');
}

std::string FromPeopleCell(std::string_view cell) {
  if (!cell.empty() && cell[0] == '\'') return std::string(cell.substr(1));
  return std::string(cell);
}

namespace {

std::vector<std::vector<std::string>> ReadAllRecords(const std::string& name, CsvReader reader,
                                                     std::string_view header) {
  CsvRecord record;
  if (!reader.Next(&record)) throw InputError(name + " is empty");
  if (!header.empty()) {
    std::string seen;
    for (std::size_t i = 0; i < record.fields.size(); ++i) seen += (i ? "," : "") + record.fields[i];
    if (seen != header) throw InputError(name + ": header is '" + seen + "', expected '" + std::string(header) + "'");
  }
  const std::size_t fields = record.fields.size();
  std::vector<std::vector<std::string>> rows;
  while (reader.Next(&record)) {
    if (record.error != CsvError::kNone) {
      throw InputError(name + ": record " + std::to_string(record.index) + ": " + CsvErrorName(record.error));
    }
    if (record.fields.size() != fields) {
      throw InputError(name + ": record " + std::to_string(record.index) + " has " +
                       std::to_string(record.fields.size()) + " fields, the header " + std::to_string(fields));
    }
    rows.push_back(std::move(record.fields));
  }
  return rows;
}

}  // namespace

std::vector<std::vector<std::string>> ReadCsvFile(const std::filesystem::path& path, std::string_view header) {
  return ReadAllRecords(path.string(), CsvReader::Open(path), header);
}

std::vector<std::vector<std::string>> ParseCsvText(const std::string& name, std::string text, std::string_view header) {
  return ReadAllRecords(name, CsvReader::FromString(std::move(text)), header);
}

}  // namespace lookbook
