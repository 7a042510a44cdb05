// Internal: a small CSV reader (RFC 4180 quoting, CRLF tolerant) and strict number parsing, so
// every loader reports malformed input the same way: "<file>:<line>, column '<name>': <problem>".
//
// Quoting: a '"' opens a quoted field only at the start of a field (blanks before it are dropped);
// elsewhere it is an ordinary character. Quoted fields may hold commas, doubled quotes and line
// breaks (the record then spans several lines; line() is the line it starts on).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chase::detail {
class BoundedInput;
}  // namespace chase::detail

namespace chase::csv {

// Splits one CSV record; quoted fields may contain commas and doubled quotes.
std::vector<std::string> split_record(std::string_view line);
// The same into `fields` (reusing its strings); false when the record ends inside a quoted field.
bool split_record(std::string_view line, std::vector<std::string>& fields);

// Parses a whole field as a finite-or-not double ("nan"/"inf" are accepted by the parser; callers
// decide whether they are allowed). Surrounding blanks are ignored; nullopt when not a number.
std::optional<double> parse_double(std::string_view text);

std::string trim(std::string_view text);

class Reader {
 public:
  // Opens the file and reads the header; throws chase::Error (kIo, kParse for an empty file).
  // A UTF-8 byte order mark and blank lines before the header are skipped. The file is read
  // through detail::BoundedInput: a file past the input limit, or a line longer than
  // detail::kMaxLineBytes, throws kIo (common/bounded_input.h).
  explicit Reader(std::filesystem::path path);
  ~Reader();
  Reader(Reader&&) noexcept;

  const std::filesystem::path& path() const noexcept { return path_; }
  const std::vector<std::string>& header() const noexcept { return header_; }
  // Index of the header column `name` (exact match after trimming), or nullopt.
  std::optional<std::size_t> column(std::string_view name) const;
  // Reads the next non-blank record; false at end of file. line() is then its 1-based line number.
  // Throws kParse for a quoted field that is never closed, kIo for a read error.
  bool next(std::vector<std::string>& fields);
  std::size_t line() const noexcept { return line_; }

  // "<file>:<line>" for the current record, and with ", column '<name>'" when given.
  std::string where() const;
  std::string where(std::size_t column_index) const;

 private:
  // Reads one physical line without its line break ('\n' or "\r\n"); false at end of file.
  bool read_line(std::string& line);
  // Reads the next non-blank record (joining lines inside quotes) into `fields`.
  bool read_record(std::vector<std::string>& fields);

  std::filesystem::path path_;
  std::unique_ptr<detail::BoundedInput> input_;
  std::istream* in_ = nullptr;
  std::vector<std::string> header_;
  std::size_t line_ = 0;        // the line the current record starts on
  std::size_t lines_read_ = 0;  // physical lines consumed so far
  std::string buffer_;          // reused between records to avoid reallocating
};

}  // namespace chase::csv
