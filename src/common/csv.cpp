#include "common/csv.h"

#include <fmt/format.h>

#include <charconv>

#include "chase/error.h"
#include "common/bounded_input.h"
#include "common/text.h"

namespace chase::csv {

namespace {

constexpr std::string_view kBlanks = " \t\r\n";
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// Collects finished fields into `fields`, reusing the strings already there so that reading a file
// row after row does not reallocate every field.
class FieldSink {
 public:
  explicit FieldSink(std::vector<std::string>& fields) : fields_(fields) {}
  void add(const std::string& field) {
    if (count_ < fields_.size()) {
      fields_[count_].assign(field);
    } else {
      fields_.push_back(field);
    }
    ++count_;
  }
  void finish() { fields_.resize(count_); }

 private:
  std::vector<std::string>& fields_;
  std::size_t count_ = 0;
};

}  // namespace

bool split_record(std::string_view line, std::vector<std::string>& fields) {
  FieldSink sink(fields);
  std::string field;
  bool quoted = false;
  bool was_quoted = false;  // the current field had a quoted part (so its blanks are content)
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"' && !was_quoted && field.find_first_not_of(" \t") == std::string::npos) {
      // A quote opens quoting only at the start of a field; blanks before it are layout.
      field.clear();
      quoted = true;
      was_quoted = true;
    } else if (c == ',') {
      sink.add(field);
      field.clear();
      was_quoted = false;
    } else if (c != '\r' || i + 1 != line.size()) {
      field += c;
    }
  }
  sink.add(field);
  sink.finish();
  return !quoted;
}

std::vector<std::string> split_record(std::string_view line) {
  std::vector<std::string> fields;
  split_record(line, fields);
  return fields;
}

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(kBlanks);
  return std::string(text.substr(first, last - first + 1));
}

std::optional<double> parse_double(std::string_view text) {
  const std::string trimmed = trim(text);
  if (trimmed.empty()) return std::nullopt;
  double value = 0;
  const char* begin = trimmed.data();
  const char* end = begin + trimmed.size();
  if (*begin == '+') {
    ++begin;  // from_chars rejects a leading '+'...
    if (begin == end || *begin == '-' || *begin == '+') return std::nullopt;  // ...and "+-1" too
  }
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

Reader::~Reader() = default;
Reader::Reader(Reader&&) noexcept = default;

Reader::Reader(std::filesystem::path path)
    : path_(std::move(path)),
      input_(std::make_unique<detail::BoundedInput>(path_, detail::kMaxLineBytes)),
      in_(&input_->stream()) {
  if (!read_record(header_)) {
    throw Error(ErrorCode::kParse,
                fmt::format("'{}' is empty: expected a CSV header line followed by data rows.",
                            path_.string()));
  }
  for (auto& name : header_) name = trim(name);
}

std::optional<std::size_t> Reader::column(std::string_view name) const {
  for (std::size_t i = 0; i < header_.size(); ++i) {
    if (header_[i] == name) return i;
  }
  return std::nullopt;
}

bool Reader::read_line(std::string& line) {
  // Read errors and the input limits throw from inside getline (BoundedInput).
  if (!std::getline(*in_, line)) return false;
  ++lines_read_;
  if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF line ends
  if (lines_read_ == 1 && line.starts_with(kUtf8Bom)) line.erase(0, kUtf8Bom.size());
  return true;
}

bool Reader::read_record(std::vector<std::string>& fields) {
  while (read_line(buffer_)) {
    if (buffer_.find_first_not_of(kBlanks) == std::string::npos) continue;  // blank line
    line_ = lines_read_;
    // A quoted field may hold line breaks: keep appending lines until its quote is closed.
    while (!split_record(buffer_, fields)) {
      std::string continuation;
      if (!read_line(continuation)) {
        throw Error(
            ErrorCode::kParse,
            fmt::format("{}:{}: a quoted field opened on this line is never closed; add "
                        "the closing '\"' (a quote inside a quoted field is written '\"\"').",
                        path_.string(), line_));
      }
      buffer_ += '\n';
      buffer_ += continuation;
    }
    return true;
  }
  return false;
}

bool Reader::next(std::vector<std::string>& fields) { return read_record(fields); }

std::string Reader::where() const { return fmt::format("{}:{}", path_.string(), line_); }

std::string Reader::where(std::size_t column_index) const {
  const std::string name =
      column_index < header_.size() ? header_[column_index] : fmt::format("#{}", column_index + 1);
  return fmt::format("{}:{}, column '{}'", path_.string(), line_, escape_untrusted(name, 80));
}

}  // namespace chase::csv
