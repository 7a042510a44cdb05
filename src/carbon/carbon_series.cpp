#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "chase/carbon.h"
#include "chase/error.h"
#include "common/csv.h"

namespace chase {

namespace {

// Longer intervals make no sense for grid data and could overflow the nanosecond clock.
constexpr std::chrono::seconds kMaxResolution = std::chrono::years(100);

std::string describe_series(const std::string& source) {
  return source.empty() ? std::string("the carbon-intensity series")
                        : fmt::format("the carbon-intensity series from '{}'", source);
}

void check_values(const std::vector<UtcTime>& times, const std::vector<double>& values,
                  const std::string& source) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i]) || values[i] < 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("Value {} (at {}) of {} is {}: carbon intensities must be finite "
                              "and non-negative, in gCO2eq/kWh.",
                              i, format_utc_time(times[i]), describe_series(source), values[i]));
    }
  }
}

void check_times(const std::vector<UtcTime>& times, const std::string& source) {
  for (std::size_t i = 1; i < times.size(); ++i) {
    if (times[i] <= times[i - 1]) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("Time {} ({}) of {} is not after time {} ({}): the times must be "
                              "strictly increasing; sort them and drop duplicates.",
                              i, format_utc_time(times[i]), describe_series(source), i - 1,
                              format_utc_time(times[i - 1])));
    }
  }
}

void check_resolution(const std::vector<UtcTime>& times, std::chrono::seconds resolution,
                      const std::string& source) {
  if (times.empty()) return;  // an empty series covers nothing, so any resolution will do
  if (resolution <= std::chrono::seconds(0) || resolution > kMaxResolution) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("The resolution of {} is {} s: it must be positive and at most 100 "
                            "years (the length of one interval).",
                            describe_series(source), resolution.count()));
  }
  // (Only a time after the epoch can be close enough to the end of the clock's range to overflow.)
  if (times.back() > UtcTime{} && UtcTime::max() - times.back() < resolution) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("The last interval of {} starts at {} and would end after the latest "
                            "time the clock can represent.",
                            describe_series(source), format_utc_time(times.back())));
  }
}

}  // namespace

CarbonSeries::CarbonSeries(std::vector<UtcTime> times, std::vector<double> values,
                           std::chrono::seconds resolution, std::string source)
    : times_(std::move(times)),
      values_(std::move(values)),
      resolution_(resolution),
      source_(std::move(source)) {
  if (times_.size() != values_.size()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} needs one value per time, but got {} times and {} values.",
                            describe_series(source_), times_.size(), values_.size()));
  }
  check_values(times_, values_, source_);
  check_times(times_, source_);
  check_resolution(times_, resolution_, source_);
}

UtcTime CarbonSeries::start() const {
  if (empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} is empty: it has no start time.", describe_series(source_)));
  }
  return times_.front();
}

UtcTime CarbonSeries::end() const {
  if (empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} is empty: it has no end time.", describe_series(source_)));
  }
  return times_.back() + resolution_;
}

double CarbonSeries::value_at(UtcTime time) const {
  if (empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("No carbon intensity for {}: {} is empty.", format_utc_time(time),
                            describe_series(source_)));
  }
  if (time < start() || time >= end()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("No carbon intensity for {}: {} covers only [{}, {}). Use a series "
                            "that covers this time.",
                            format_utc_time(time), describe_series(source_),
                            format_utc_time(start()), format_utc_time(end())));
  }
  // The last point starting at or before `time`.
  const auto index = static_cast<std::size_t>(std::upper_bound(times_.begin(), times_.end(), time) -
                                              times_.begin() - 1);
  // A point holds for one resolution, or until the next point when that comes sooner.
  UtcTime interval_end = times_[index] + resolution_;
  if (index + 1 < times_.size()) interval_end = std::min(interval_end, times_[index + 1]);
  if (time >= interval_end) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("No carbon intensity for {}: it falls in a gap of {} from {} to {}. "
                            "Fill the gap in the data or use a time outside it.",
                            format_utc_time(time), describe_series(source_),
                            format_utc_time(interval_end), format_utc_time(times_[index + 1])));
  }
  return values_[index];
}

// ---------------------------------------------------------------------------------------------
// Loading from CSV.

namespace {

// Header names recognised without help, compared case-insensitively after trimming; for the value,
// earlier names are preferred when a file has several (e.g. `hist`, the realised intensity, over
// `value`).
constexpr std::array<std::string_view, 7> kTimeColumns = {
    "UTC time", "utc_time", "timestamp", "datetime", "time", "point_time", "date"};
constexpr std::array<std::string_view, 7> kValueColumns = {
    "carbon_intensity", "carbon intensity", "carbonIntensity", "intensity", "hist", "value", "ci"};

// What a column is for, to word messages about it.
struct ColumnRole {
  std::string_view name;        // "time", "value"
  std::string_view cli_flag;    // "--time-col"
  std::string_view api_option;  // "time_column"
};
constexpr ColumnRole kTimeRole{"time", "--time-col", "time_column"};
constexpr ColumnRole kValueRole{"value", "--value-col", "value_column"};

struct Row {
  UtcTime time;
  double value;
  std::size_t line;
};

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

std::string quoted_list(std::span<const std::string> names) {
  std::string list;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) list += ", ";
    list += names[i].empty() ? fmt::format("(unnamed column {})", i + 1)
                             : fmt::format("'{}'", names[i]);
  }
  return list;
}

std::string quoted_list(std::span<const std::string_view> names) {
  std::string list;
  for (const auto name : names) list += fmt::format("{}'{}'", list.empty() ? "" : ", ", name);
  return list;
}

std::optional<std::size_t> find_ignoring_case(const std::vector<std::string>& header,
                                              std::string_view name) {
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (equals_ignoring_case(header[i], name)) return i;
  }
  return std::nullopt;
}

// The column the caller named: an exact header name.
std::size_t named_column(const csv::Reader& reader, const std::string& name, ColumnRole role) {
  if (const auto index = reader.column(name)) return *index;
  const auto near = find_ignoring_case(reader.header(), name);
  throw Error(ErrorCode::kNotFound,
              fmt::format("'{}' has no column named '{}' (asked for as the {} column){}. Its "
                          "columns are: {}.",
                          reader.path().string(), name, role.name,
                          near ? fmt::format("; did you mean '{}'?", reader.header()[*near]) : "",
                          quoted_list(reader.header())));
}

// The first recognised header name, in the order of `candidates`.
std::size_t detect_column(const csv::Reader& reader, std::span<const std::string_view> candidates,
                          ColumnRole role) {
  for (const auto candidate : candidates) {
    if (const auto index = find_ignoring_case(reader.header(), candidate)) return *index;
  }
  throw Error(ErrorCode::kNotFound,
              fmt::format("'{}' has no recognisable {} column (looked for {}). Its columns are: "
                          "{}. Pass the {} column's name ({} NAME on the command line, "
                          "CarbonCsvOptions::{} in the API).",
                          reader.path().string(), role.name, quoted_list(candidates),
                          quoted_list(reader.header()), role.name, role.cli_flag, role.api_option));
}

std::size_t find_column(const csv::Reader& reader, const std::string& override_name,
                        std::span<const std::string_view> candidates, ColumnRole role) {
  return override_name.empty() ? detect_column(reader, candidates, role)
                               : named_column(reader, override_name, role);
}

// The trimmed text of field `column`, or a kParse error when the row is too short to have it.
std::string field_text(const csv::Reader& reader, const std::vector<std::string>& fields,
                       std::size_t column) {
  if (column >= fields.size()) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: the field is missing (the row has {} fields, the header {}). "
                            "Complete the row or remove it.",
                            reader.where(column), fields.size(), reader.header().size()));
  }
  return csv::trim(fields[column]);
}

UtcTime parse_time_field(const csv::Reader& reader, const std::vector<std::string>& fields,
                         std::size_t column) {
  const std::string text = field_text(reader, fields, column);
  const auto time = parse_utc_time(text);
  if (!time) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: cannot parse '{}' as a UTC time (expected ISO 8601 or "
                            "YYYY-MM-DD HH:MM:SS).",
                            reader.where(column), text));
  }
  return *time;
}

double parse_value_field(const csv::Reader& reader, const std::vector<std::string>& fields,
                         std::size_t column) {
  const std::string text = field_text(reader, fields, column);
  const auto value = csv::parse_double(text);
  if (!value) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: cannot parse '{}' as a number (expected a carbon intensity in "
                            "gCO2eq/kWh). Fix the value or remove the row; missing rows are "
                            "allowed and stay uncovered.",
                            reader.where(column), text));
  }
  if (!std::isfinite(*value) || *value < 0) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: '{}' is not a valid carbon intensity: it must be a finite, "
                            "non-negative number of gCO2eq/kWh. Fix the value or remove the row.",
                            reader.where(column), text));
  }
  return *value;
}

std::vector<Row> read_rows(csv::Reader& reader, std::size_t time_column, std::size_t value_column) {
  std::vector<Row> rows;
  std::vector<std::string> fields;
  while (reader.next(fields)) {
    const UtcTime time = parse_time_field(reader, fields, time_column);
    const double value = parse_value_field(reader, fields, value_column);
    rows.push_back({time, value, reader.line()});
  }
  return rows;
}

// Sorts the rows by time (files are usually sorted already) and rejects repeated times.
void sort_rows(std::vector<Row>& rows, const std::string& file) {
  const auto by_time = [](const Row& a, const Row& b) { return a.time < b.time; };
  if (!std::is_sorted(rows.begin(), rows.end(), by_time)) {
    std::stable_sort(rows.begin(), rows.end(), by_time);
  }
  for (std::size_t i = 1; i < rows.size(); ++i) {
    if (rows[i].time == rows[i - 1].time) {
      throw Error(
          ErrorCode::kParse,
          fmt::format("'{}', lines {} and {}: both rows have the time {}; each time may "
                      "appear only once. Remove one of them.",
                      file, std::min(rows[i - 1].line, rows[i].line),
                      std::max(rows[i - 1].line, rows[i].line), format_utc_time(rows[i].time)));
    }
  }
}

// The most frequent spacing between consecutive (sorted) rows; ties go to the smallest, so that a
// series with a few gaps still gets its true resolution.
std::chrono::seconds infer_resolution(const std::vector<Row>& rows, const std::string& file) {
  if (rows.empty()) {
    throw Error(ErrorCode::kParse, fmt::format("'{}' has a header but no data rows.", file));
  }
  if (rows.size() == 1) {
    throw Error(ErrorCode::kParse,
                fmt::format("'{}' has a single data row (line {}): the resolution cannot be "
                            "inferred from one row. Add at least one more row.",
                            file, rows.front().line));
  }
  std::vector<UtcTime::duration> steps;
  steps.reserve(rows.size() - 1);
  for (std::size_t i = 1; i < rows.size(); ++i) steps.push_back(rows[i].time - rows[i - 1].time);
  std::sort(steps.begin(), steps.end());
  UtcTime::duration best{0};  // always set below: the first run beats best_count = 0
  std::size_t best_count = 0;
  for (std::size_t run_start = 0; run_start < steps.size();) {
    std::size_t run_end = run_start;
    while (run_end < steps.size() && steps[run_end] == steps[run_start]) ++run_end;
    if (run_end - run_start > best_count) {  // strictly more: ties keep the smaller step
      best = steps[run_start];
      best_count = run_end - run_start;
    }
    run_start = run_end;
  }
  const auto resolution = std::chrono::duration_cast<std::chrono::seconds>(best);
  if (resolution != best) {
    throw Error(
        ErrorCode::kParse,
        fmt::format("'{}': the most common spacing between rows, {} ms, is not a whole "
                    "number of seconds, so it cannot be used as the series' resolution.",
                    file, std::chrono::duration_cast<std::chrono::milliseconds>(best).count()));
  }
  return resolution;
}

}  // namespace

CarbonSeries load_carbon_csv(const std::filesystem::path& path, const CarbonCsvOptions& options) {
  csv::Reader reader(path);
  const std::string file = path.string();
  const std::size_t time_column = find_column(reader, options.time_column, kTimeColumns, kTimeRole);
  const std::size_t value_column =
      find_column(reader, options.value_column, kValueColumns, kValueRole);
  if (time_column == value_column) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("'{}': column '{}' was chosen as both the time and the value column. "
                    "Pass different columns ({} and {}).",
                    file, reader.header()[time_column], kTimeRole.cli_flag, kValueRole.cli_flag));
  }

  std::vector<Row> rows = read_rows(reader, time_column, value_column);
  sort_rows(rows, file);
  const std::chrono::seconds resolution = infer_resolution(rows, file);

  std::vector<UtcTime> times;
  std::vector<double> values;
  times.reserve(rows.size());
  values.reserve(rows.size());
  for (const Row& row : rows) {
    times.push_back(row.time);
    values.push_back(row.value);
  }
  return CarbonSeries(std::move(times), std::move(values), resolution, file);
}

}  // namespace chase
