// Internal: a small CSV reader (RFC 4180 quoting, CRLF tolerant) and strict number parsing, so every
// loader reports malformed input the same way: "<file>:<line>: column '<name>': <problem>".
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chase::csv {

// Splits one CSV record; quoted fields may contain commas and doubled quotes.
std::vector<std::string> split_record(std::string_view line);

// Parses a whole field as a finite-or-not double ("nan"/"inf" are accepted by the parser; callers
// decide whether they are allowed). Surrounding blanks are ignored; nullopt when not a number.
std::optional<double> parse_double(std::string_view text);

std::string trim(std::string_view text);

class Reader {
 public:
  // Opens the file and reads the header; throws chase::Error (kIo, kParse for an empty file).
  explicit Reader(std::filesystem::path path);

  const std::filesystem::path& path() const noexcept { return path_; }
  const std::vector<std::string>& header() const noexcept { return header_; }
  // Index of the header column `name` (exact match after trimming), or nullopt.
  std::optional<std::size_t> column(std::string_view name) const;
  // Reads the next non-blank record; false at end of file. line() is then its 1-based line number.
  bool next(std::vector<std::string>& fields);
  std::size_t line() const noexcept { return line_; }

  // "<file>:<line>" for the current record, and with ", column '<name>'" when given.
  std::string where() const;
  std::string where(std::size_t column_index) const;

 private:
  std::filesystem::path path_;
  std::ifstream in_;
  std::vector<std::string> header_;
  std::size_t line_ = 0;
};

}  // namespace chase::csv
