#include "common/csv.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "chase/error.h"

namespace chase::csv {

std::vector<std::string> split_record(std::string_view line) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
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
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c != '\r' || i + 1 != line.size()) {
      field += c;
    }
  }
  fields.push_back(std::move(field));
  return fields;
}

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

std::optional<double> parse_double(std::string_view text) {
  const std::string trimmed = trim(text);
  if (trimmed.empty()) return std::nullopt;
  double value = 0;
  const char* begin = trimmed.data();
  const char* end = begin + trimmed.size();
  if (*begin == '+') ++begin;  // from_chars rejects a leading '+'
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

Reader::Reader(std::filesystem::path path) : path_(std::move(path)), in_(path_) {
  if (!in_) {
    throw Error(ErrorCode::kIo,
                fmt::format("cannot open '{}': {}", path_.string(), std::strerror(errno)));
  }
  std::string line;
  while (std::getline(in_, line)) {
    ++line_;
    if (!trim(line).empty()) {
      if (line_ == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 BOM
      for (auto& name : split_record(line)) header_.push_back(trim(name));
      return;
    }
  }
  throw Error(ErrorCode::kParse,
              fmt::format("'{}' is empty: expected a CSV header line", path_.string()));
}

std::optional<std::size_t> Reader::column(std::string_view name) const {
  for (std::size_t i = 0; i < header_.size(); ++i) {
    if (header_[i] == name) return i;
  }
  return std::nullopt;
}

bool Reader::next(std::vector<std::string>& fields) {
  std::string line;
  while (std::getline(in_, line)) {
    ++line_;
    if (trim(line).empty()) continue;
    fields = split_record(line);
    return true;
  }
  if (in_.bad()) {
    throw Error(ErrorCode::kIo, fmt::format("error reading '{}' after line {}: {}", path_.string(),
                                            line_, std::strerror(errno)));
  }
  return false;
}

std::string Reader::where() const { return fmt::format("{}:{}", path_.string(), line_); }

std::string Reader::where(std::size_t column_index) const {
  const std::string name =
      column_index < header_.size() ? header_[column_index] : fmt::format("#{}", column_index + 1);
  return fmt::format("{}:{}, column '{}'", path_.string(), line_, name);
}

}  // namespace chase::csv
