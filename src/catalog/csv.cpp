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

  for (;;) {
    int c = s.Get();
    if (c < 0) return false;
    // A line with no characters is not a record.
    if (c == '\n' || c == '\r') {
      if (c == '\r' && s.Peek() == '\n') s.Get();
      ++s.blank_lines;
      ++s.line;
      continue;
    }

    record->index = s.next_index++;
    record->first_line = s.line;
    record->error = CsvError::kNone;
    record->fields.clear();
    record->fields.emplace_back();
    std::size_t record_bytes = 0;
    bool too_long = false;
    auto append = [&](char ch) {
      if (++record_bytes > s.limits.max_record_bytes) {
        too_long = true;
        return;
      }
      if (!too_long) record->fields.back().push_back(ch);
    };
    auto set_error = [&](CsvError error) {
      if (record->error == CsvError::kNone) record->error = error;
    };

    enum class Mode { kFieldStart, kUnquoted, kQuoted, kAfterQuote } mode = Mode::kFieldStart;
    for (;; c = s.Get()) {
      if (c < 0) {
        if (mode == Mode::kQuoted) set_error(CsvError::kUnterminatedQuote);
        break;
      }
      const char ch = static_cast<char>(c);
      if (mode == Mode::kQuoted) {
        if (ch == '"') {
          if (s.Peek() == '"') {
            s.Get();
            append('"');
          } else {
            mode = Mode::kAfterQuote;
          }
        } else {
          if (ch == '\n') ++s.line;
          append(ch);
        }
        continue;
      }
      if (ch == ',') {
        record->fields.emplace_back();
        mode = Mode::kFieldStart;
        continue;
      }
      if (ch == '\n' || ch == '\r') {
        if (ch == '\r' && s.Peek() == '\n') s.Get();
        ++s.line;
        break;
      }
      if (mode == Mode::kFieldStart && ch == '"') {
        mode = Mode::kQuoted;
        continue;
      }
      if (mode == Mode::kAfterQuote) set_error(CsvError::kMalformedQuote);
      mode = Mode::kUnquoted;
      append(ch);
    }

    if (too_long) {
      record->error = CsvError::kRecordTooLong;
      record->fields.assign(1, std::string());
    } else if (record->error == CsvError::kNone) {
      for (const auto& field : record->fields) {
        if (!IsValidUtf8(field)) {
          record->error = CsvError::kInvalidUtf8;
          break;
        }
      }
    }
    return true;
  }
}

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
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
  const bool needs_quotes =
      field.find_first_of(",\"\r\n") != std::string_view::npos ||
      (!field.empty() && (field.front() == ' ' || field.back() == ' '));
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

}  // namespace lookbook
