#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "carbon/carbon_formats.h"
#include "chase/carbon.h"
#include "chase/error.h"
#include "common/csv.h"
#include "common/text.h"

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
                           std::chrono::seconds resolution, std::string source,
                           std::vector<ExogenousColumn> exogenous)
    : times_(std::move(times)),
      values_(std::move(values)),
      resolution_(resolution),
      source_(std::move(source)),
      exogenous_(std::move(exogenous)) {
  if (times_.size() != values_.size()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} needs one value per time, but got {} times and {} values.",
                            describe_series(source_), times_.size(), values_.size()));
  }
  check_values(times_, values_, source_);
  check_times(times_, source_);
  check_resolution(times_, resolution_, source_);
  for (std::size_t c = 0; c < exogenous_.size(); ++c) {
    const ExogenousColumn& column = exogenous_[c];
    if (column.values.size() != times_.size()) {
      throw Error(
          ErrorCode::kInvalidArgument,
          fmt::format("Exogenous column '{}' of {} has {} values for {} times; it needs "
                      "one value per time.",
                      column.name, describe_series(source_), column.values.size(), times_.size()));
    }
    for (std::size_t i = 0; i < column.values.size(); ++i) {
      if (!std::isfinite(column.values[i])) {
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("Value {} (at {}) of exogenous column '{}' of {} is not finite.", i,
                                format_utc_time(times_[i]), column.name, describe_series(source_)));
      }
    }
    for (std::size_t other = 0; other < c; ++other) {
      if (exogenous_[other].name == column.name) {
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("{} has two exogenous columns named '{}'; names must be unique.",
                                describe_series(source_), column.name));
      }
    }
  }
}

CarbonSeries::CarbonSeries(std::vector<UtcTime> times, std::vector<double> values,
                           std::chrono::seconds resolution, std::string source,
                           std::vector<ExogenousColumn> exogenous, std::vector<bool> estimated)
    : CarbonSeries(std::move(times), std::move(values), resolution, std::move(source),
                   std::move(exogenous)) {
  if (!estimated.empty() && estimated.size() != times_.size()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} has {} 'estimated' flags for {} times; it needs one per time (or "
                            "none).",
                            describe_series(source_), estimated.size(), times_.size()));
  }
  // All false says no more than none at all; keep the cheaper form.
  if (std::find(estimated.begin(), estimated.end(), true) != estimated.end()) {
    estimated_ = std::move(estimated);
  }
}

bool CarbonSeries::regular() const noexcept {
  for (std::size_t i = 1; i < times_.size(); ++i) {
    if (times_[i] - times_[i - 1] != resolution_) return false;
  }
  return true;
}

std::optional<double> CarbonSeries::max_between(UtcTime from, UtcTime to) const {
  const auto first = std::lower_bound(times_.begin(), times_.end(), from);
  const auto last = std::lower_bound(first, times_.end(), to);
  if (first >= last) return std::nullopt;
  return *std::max_element(values_.begin() + (first - times_.begin()),
                           values_.begin() + (last - times_.begin()));
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
  std::vector<double> exogenous;  // one per kept exogenous column
  bool estimated = false;         // the file says the value is estimated (or it was filled)
};

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// A field or header name from the file, quoted in a message: escaped (common/text.h), cut short.
constexpr std::size_t kMaxQuotedField = 80;

std::string quoted_list(std::span<const std::string> names) {
  std::string list;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) list += ", ";
    list += names[i].empty() ? fmt::format("(unnamed column {})", i + 1)
                             : fmt::format("'{}'", escape_untrusted(names[i], kMaxQuotedField));
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
  const auto header = [&](std::size_t i) { return escape_untrusted(reader.header()[i]); };
  throw Error(ErrorCode::kNotFound,
              fmt::format("'{}' has no column named '{}' (asked for as the {} column){}. Its "
                          "columns are: {}.",
                          reader.path().string(), name, role.name,
                          near ? fmt::format("; did you mean '{}'?", header(*near)) : "",
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
                            reader.where(column), escape_untrusted(text, kMaxQuotedField)));
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
                            reader.where(column), escape_untrusted(text, kMaxQuotedField)));
  }
  if (!std::isfinite(*value) || *value < 0) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: '{}' is not a valid carbon intensity: it must be a finite, "
                            "non-negative number of gCO2eq/kWh. Fix the value or remove the row.",
                            reader.where(column), escape_untrusted(text, kMaxQuotedField)));
  }
  return *value;
}

double parse_exogenous_field(const csv::Reader& reader, const std::vector<std::string>& fields,
                             std::size_t column) {
  const std::string text = field_text(reader, fields, column);
  const auto value = csv::parse_double(text);
  if (!value || !std::isfinite(*value)) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: cannot parse '{}' as a finite number (this exogenous column must "
                            "be numeric). Fix the value, or leave the column out of the "
                            "exogenous inputs.",
                            reader.where(column), escape_untrusted(text, kMaxQuotedField)));
  }
  return *value;
}

// "true"/"false" (any case), "1"/"0", "yes"/"no"; empty is false.
bool parse_flag_field(const csv::Reader& reader, const std::vector<std::string>& fields,
                      std::size_t column) {
  std::string text = field_text(reader, fields, column);
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (text == "true" || text == "1" || text == "yes") return true;
  if (text.empty() || text == "false" || text == "0" || text == "no") return false;
  throw Error(ErrorCode::kParse,
              fmt::format("{}: cannot read '{}' as true or false.", reader.where(column), text));
}

// Where the columns are, and what to do with them, for read_rows.
struct ColumnPlan {
  std::size_t time = 0;
  std::size_t value = 0;
  std::vector<std::size_t> exogenous;
  detail::CsvLayout layout;
};

std::vector<Row> read_rows(csv::Reader& reader, const ColumnPlan& plan, CarbonLoadReport& report) {
  std::vector<Row> rows;
  std::vector<std::string> fields;
  while (reader.next(fields)) {
    const UtcTime time = parse_time_field(reader, fields, plan.time);
    if (!detail::has_utc_offset(field_text(reader, fields, plan.time))) {
      ++report.times_without_offset;
    }
    double value = parse_value_field(reader, fields, plan.value) * plan.layout.factor;
    if (plan.layout.units_column) {
      const std::string unit = field_text(reader, fields, *plan.layout.units_column);
      const auto factor = detail::watttime_unit_factor(unit);
      if (!factor) {
        throw Error(ErrorCode::kParse,
                    fmt::format("{}: the unit '{}' cannot be converted to gCO2eq/kWh (e.g. a "
                                "percentile signal). Export the co2_moer signal.",
                                reader.where(*plan.layout.units_column), unit));
      }
      value *= *factor;
    }
    std::vector<double> exogenous;
    exogenous.reserve(plan.exogenous.size());
    for (const std::size_t column : plan.exogenous) {
      exogenous.push_back(parse_exogenous_field(reader, fields, column));
    }
    const bool estimated = plan.layout.estimated_column &&
                           parse_flag_field(reader, fields, *plan.layout.estimated_column);
    rows.push_back({time, value, reader.line(), std::move(exogenous), estimated});
  }
  return rows;
}

// Sorts the rows by time (files are usually sorted already) and handles repeated times: an error,
// or keep the first / last row of each time in file order.
void sort_rows(std::vector<Row>& rows, const std::string& file, DuplicateTimes duplicates,
               CarbonLoadReport& report) {
  const auto by_time = [](const Row& a, const Row& b) { return a.time < b.time; };
  report.sorted = std::is_sorted(rows.begin(), rows.end(), by_time);
  if (!report.sorted) std::stable_sort(rows.begin(), rows.end(), by_time);
  std::vector<Row> kept;
  kept.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i == 0 || rows[i].time != rows[i - 1].time) {
      kept.push_back(std::move(rows[i]));
      continue;
    }
    const std::size_t first_line = std::min(kept.back().line, rows[i].line);
    const std::size_t second_line = std::max(kept.back().line, rows[i].line);
    if (duplicates == DuplicateTimes::kError) {
      throw Error(
          ErrorCode::kParse,
          fmt::format("'{}', lines {} and {}: both rows have the time {}; each time may "
                      "appear only once. Remove one of them (or keep the first or last row of "
                      "each time: --duplicates first|last on the command line).",
                      file, first_line, second_line, format_utc_time(rows[i].time)));
    }
    ++report.duplicates;
    if (report.duplicate_examples.size() < CarbonLoadReport::kMaxExamples) {
      report.duplicate_examples.push_back(fmt::format(
          "{} at lines {} and {}", format_utc_time(rows[i].time), first_line, second_line));
    }
    // Stable sort keeps file order within a time: the later row is the later line.
    if (duplicates == DuplicateTimes::kKeepLast) kept.back() = std::move(rows[i]);
  }
  rows = std::move(kept);
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

namespace {

// Counts the runs of missing points between consecutive rows at `resolution`.
void report_gaps(const std::vector<Row>& rows, std::chrono::seconds resolution,
                 CarbonLoadReport& report) {
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const auto step = rows[i].time - rows[i - 1].time;
    if (step <= resolution) continue;
    const auto missing = static_cast<std::size_t>((step - UtcTime::duration(1)) / resolution);
    ++report.gaps;
    report.missing_points += missing;
    if (report.gap_examples.size() < CarbonLoadReport::kMaxExamples) {
      report.gap_examples.push_back(fmt::format(
          "{} point(s) missing between line {} ({}) and line {} ({})", missing, rows[i - 1].line,
          format_utc_time(rows[i - 1].time), rows[i].line, format_utc_time(rows[i].time)));
    }
  }
}

UtcTime floor_to(UtcTime time, std::chrono::seconds period) {
  const auto since = time.time_since_epoch();
  const auto step = std::chrono::duration_cast<UtcTime::duration>(period);
  auto bins = since / step;
  if (since % step < UtcTime::duration(0)) --bins;
  return UtcTime{} + bins * step;
}

// A point of the output grid; `present` false marks a gap.
struct GridPoint {
  UtcTime time;
  bool present = false;
  double value = 0;
  std::vector<double> exogenous;
  bool estimated = false;  // from an estimated row, or invented by a fill
};

// More grid points than carbon data needs (a minute's data for 9.5 years): a fill or resample
// asked for more is a far-off time in the data, which would otherwise allocate without bound.
constexpr std::int64_t kMaxGridPoints = 5'000'000;

std::int64_t whole_seconds(UtcTime time) {
  return std::chrono::floor<std::chrono::seconds>(time.time_since_epoch()).count();
}

// Throws unless the grid of `period` from `origin` to the end of the last row fits the clock
// (every point plus one period) and kMaxGridPoints. Counted in whole seconds, which cannot
// overflow: times are within ±9.3e9 s, and resolution and period at most kMaxResolution.
void check_grid(const std::vector<Row>& rows, std::chrono::seconds resolution, UtcTime origin,
                std::chrono::seconds period, const std::string& source) {
  if (resolution > kMaxResolution) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("The resolution of {} is {} s: it must be at most 100 years (the "
                            "length of one interval).",
                            describe_series(source), resolution.count()));
  }
  const std::int64_t end = whole_seconds(rows.back().time) + resolution.count();
  const std::int64_t latest = whole_seconds(UtcTime::max()) - period.count();
  if (end > latest) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: its last point ({}) ends too close to the latest time the clock "
                            "can represent (2262-04-11). Check the year of that row.",
                            describe_series(source), format_utc_time(rows.back().time)));
  }
  const std::int64_t points = (end - whole_seconds(origin)) / period.count() + 1;
  if (points > kMaxGridPoints) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("{}: from {} to {} at one point every {} s is {} points, more than "
                    "the {} chase fills or resamples. A time in the data is probably "
                    "far off (check the years of the first and last rows); otherwise "
                    "resample to a longer period.",
                    describe_series(source), format_utc_time(rows.front().time),
                    format_utc_time(rows.back().time), period.count(), points, kMaxGridPoints));
  }
}

// Puts the rows on a grid of `period` starting at `origin`: each grid point takes the mean of the
// rows starting in it, else the row in force at its start, else it is a gap.
std::vector<GridPoint> to_grid(const std::vector<Row>& rows, std::chrono::seconds resolution,
                               UtcTime origin, std::chrono::seconds period,
                               std::size_t exogenous_count, const std::string& source) {
  check_grid(rows, resolution, origin, period, source);
  std::vector<GridPoint> grid;
  const UtcTime last_end = rows.back().time + resolution;
  std::size_t next = 0;  // first row not yet before the current grid point
  for (UtcTime t = origin; t < last_end; t += period) {
    GridPoint point{t, false, 0, std::vector<double>(exogenous_count, 0.0)};
    // Rows that start before t: advance `next`, remembering the last one (in force at t?).
    while (next < rows.size() && rows[next].time < t) ++next;
    std::size_t count = 0;
    for (std::size_t i = next; i < rows.size() && rows[i].time < t + period; ++i) {
      point.value += rows[i].value;
      point.estimated = point.estimated || rows[i].estimated;
      for (std::size_t c = 0; c < exogenous_count; ++c) point.exogenous[c] += rows[i].exogenous[c];
      ++count;
    }
    if (count > 0) {
      point.present = true;
      point.value /= static_cast<double>(count);
      for (double& x : point.exogenous) x /= static_cast<double>(count);
    } else if (next > 0 && rows[next - 1].time + resolution > t) {
      point.present = true;  // an upsampled point: the row in force at t
      point.value = rows[next - 1].value;
      point.exogenous = rows[next - 1].exogenous;
      point.estimated = rows[next - 1].estimated;
    }
    grid.push_back(std::move(point));
  }
  return grid;
}

// Fills the gaps of `grid` (never at its ends: the first and last points come from rows).
std::size_t fill_grid(std::vector<GridPoint>& grid, GapFill fill) {
  if (fill == GapFill::kNone) return 0;
  std::size_t filled = 0;
  std::size_t previous = 0;  // last present point
  for (std::size_t i = 0; i < grid.size(); ++i) {
    if (grid[i].present) {
      if (fill == GapFill::kLinear) {
        for (std::size_t j = previous + 1; j < i; ++j) {
          const double w = static_cast<double>(j - previous) / static_cast<double>(i - previous);
          grid[j].value = (1 - w) * grid[previous].value + w * grid[i].value;
          for (std::size_t c = 0; c < grid[j].exogenous.size(); ++c) {
            grid[j].exogenous[c] = (1 - w) * grid[previous].exogenous[c] + w * grid[i].exogenous[c];
          }
          grid[j].present = true;
          grid[j].estimated = true;
        }
      }
      previous = i;
    } else if (fill == GapFill::kPrevious && i > 0) {
      grid[i].value = grid[i - 1].value;
      grid[i].exogenous = grid[i - 1].exogenous;
      grid[i].present = true;
      grid[i].estimated = true;
      ++filled;
    } else {
      ++filled;  // counted now, filled when the next present point is reached
    }
  }
  return filled;
}

bool is_forecast_column(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("forecast") != std::string::npos;
}

}  // namespace

std::optional<GapFill> parse_gap_fill(std::string_view text) {
  if (text == "none") return GapFill::kNone;
  if (text == "previous") return GapFill::kPrevious;
  if (text == "linear") return GapFill::kLinear;
  return std::nullopt;
}

std::optional<DuplicateTimes> parse_duplicate_times(std::string_view text) {
  if (text == "error") return DuplicateTimes::kError;
  if (text == "first") return DuplicateTimes::kKeepFirst;
  if (text == "last") return DuplicateTimes::kKeepLast;
  return std::nullopt;
}

namespace {

// The rows of a JSON export (detail::read_carbon_json); `line` is the point's index in the file.
std::vector<Row> json_rows(const std::filesystem::path& path, const CarbonCsvOptions& options,
                           CarbonLoadReport& report) {
  if (!options.time_column.empty() || !options.value_column.empty() ||
      !options.exogenous_columns.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("'{}' is a JSON export: it has no columns to choose. Leave the time, "
                            "value and exogenous columns unset.",
                            path.string()));
  }
  detail::JsonSeries json = detail::read_carbon_json(path);
  report.format = json.format;
  report.notes = std::move(json.notes);
  for (const std::string& note : report.notes) spdlog::warn("{}", note);
  std::vector<Row> rows;
  rows.reserve(json.records.size());
  for (const auto& record : json.records) {
    rows.push_back({record.time, record.value, record.index, {}, record.estimated});
  }
  return rows;
}

// The rows of a CSV: columns from the caller's names, else the recognised export's, else the
// generic header names.
std::vector<Row> csv_rows(const std::filesystem::path& path, const CarbonCsvOptions& options,
                          CarbonLoadReport& report) {
  csv::Reader reader(path);
  const std::string file = path.string();
  ColumnPlan plan;
  plan.layout = detail::detect_csv_layout(reader.header(), !options.value_column.empty());
  const auto& layout = plan.layout;
  plan.time = !options.time_column.empty() || !layout.time_column
                  ? find_column(reader, options.time_column, kTimeColumns, kTimeRole)
                  : *layout.time_column;
  plan.value = !options.value_column.empty() || !layout.value_column
                   ? find_column(reader, options.value_column, kValueColumns, kValueRole)
                   : *layout.value_column;
  if (plan.time == plan.value) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("'{}': column '{}' was chosen as both the time and the value column. "
                    "Pass different columns ({} and {}).",
                    file, reader.header()[plan.time], kTimeRole.cli_flag, kValueRole.cli_flag));
  }
  report.format = layout.format;
  report.notes = layout.notes;
  for (const std::string& note : report.notes) spdlog::warn("{}", note);
  if (!options.exogenous_columns.empty()) {
    for (const std::string& name : options.exogenous_columns) {
      const std::size_t column =
          named_column(reader, name, {"exogenous", "--exogenous-cols", "exogenous_columns"});
      if (column == plan.time || column == plan.value) {
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("'{}': column '{}' is the time or value column; it cannot also be "
                                "an exogenous input.",
                                file, name));
      }
      plan.exogenous.push_back(column);
    }
  } else if (options.exogenous) {
    for (std::size_t c = 0; c < reader.header().size(); ++c) {
      if (c != plan.time && c != plan.value && is_forecast_column(reader.header()[c])) {
        plan.exogenous.push_back(c);
      }
    }
  }
  for (const std::size_t c : plan.exogenous) report.exogenous_columns.push_back(reader.header()[c]);

  std::vector<Row> rows = read_rows(reader, plan, report);
  // A time without an offset is read as UTC; unless the header says so, it may be local time.
  const std::string time_header = reader.header()[plan.time];
  std::string time_header_lower = time_header;
  std::transform(time_header_lower.begin(), time_header_lower.end(), time_header_lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (report.times_without_offset > 0 && time_header_lower.find("utc") == std::string::npos) {
    report.local_times_suspected = true;
    report.notes.push_back(fmt::format(
        "'{}': {} of {} times in column '{}' have no UTC offset and the header does not say UTC; "
        "they were read as UTC. If the file is in local time, convert it to UTC (or add the "
        "offset, e.g. \"2026-03-01T12:00:00+01:00\") first.",
        file, report.times_without_offset, rows.size(), time_header));
    spdlog::warn("{}", report.notes.back());
  }
  return rows;
}

}  // namespace

CarbonSeries load_carbon_csv(const std::filesystem::path& path, const CarbonCsvOptions& options,
                             CarbonLoadReport* report_out) {
  const std::string file = path.string();
  if (options.resample < std::chrono::seconds(0) || options.resample > kMaxResolution) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("Loading '{}': the resample period is {} s; it must be positive and "
                            "at most 100 years (or 0 to keep the file's resolution).",
                            file, options.resample.count()));
  }

  CarbonLoadReport report;
  std::vector<Row> rows = detail::looks_like_json(path) ? json_rows(path, options, report)
                                                        : csv_rows(path, options, report);
  report.rows = rows.size();
  sort_rows(rows, file, options.duplicates, report);
  const std::chrono::seconds resolution = infer_resolution(rows, file);
  report.source_resolution = resolution;
  report_gaps(rows, resolution, report);

  std::vector<ExogenousColumn> exogenous(report.exogenous_columns.size());
  for (std::size_t c = 0; c < exogenous.size(); ++c)
    exogenous[c].name = report.exogenous_columns[c];
  std::vector<UtcTime> times;
  std::vector<double> values;
  std::vector<bool> estimated;
  std::chrono::seconds out_resolution = resolution;
  const bool regrid = options.resample > std::chrono::seconds(0) || options.fill != GapFill::kNone;
  if (!regrid) {
    for (Row& row : rows) {
      times.push_back(row.time);
      values.push_back(row.value);
      estimated.push_back(row.estimated);
      for (std::size_t c = 0; c < exogenous.size(); ++c) {
        exogenous[c].values.push_back(row.exogenous[c]);
      }
    }
  } else {
    const bool resample = options.resample > std::chrono::seconds(0);
    out_resolution = resample ? options.resample : resolution;
    const UtcTime origin =
        resample ? floor_to(rows.front().time, out_resolution) : rows.front().time;
    std::vector<GridPoint> grid =
        to_grid(rows, resolution, origin, out_resolution, exogenous.size(), file);
    report.filled_points = fill_grid(grid, options.fill);
    for (GridPoint& point : grid) {
      if (!point.present) continue;
      times.push_back(point.time);
      values.push_back(point.value);
      estimated.push_back(point.estimated);
      for (std::size_t c = 0; c < exogenous.size(); ++c) {
        exogenous[c].values.push_back(point.exogenous[c]);
      }
    }
  }
  report.estimated_points =
      static_cast<std::size_t>(std::count(estimated.begin(), estimated.end(), true));
  if (report_out != nullptr) *report_out = std::move(report);
  return CarbonSeries(std::move(times), std::move(values), out_resolution, file,
                      std::move(exogenous), std::move(estimated));
}

CarbonSeries fill_gaps(const CarbonSeries& series, GapFill fill, std::size_t* filled) {
  if (filled != nullptr) *filled = 0;
  if (series.regular() || fill == GapFill::kNone) return series;
  std::vector<Row> rows;
  for (std::size_t i = 0; i < series.size(); ++i) {
    Row row{series.times()[i], series.values()[i], 0, {}, series.is_estimated(i)};
    for (const auto& column : series.exogenous()) row.exogenous.push_back(column.values[i]);
    rows.push_back(std::move(row));
  }
  auto grid = to_grid(rows, series.resolution(), series.start(), series.resolution(),
                      series.exogenous().size(), series.source());
  const auto count = fill_grid(grid, fill);
  if (filled != nullptr) *filled = count;
  std::vector<UtcTime> times;
  std::vector<double> values;
  std::vector<bool> estimated;
  auto exogenous = series.exogenous();
  for (auto& column : exogenous) column.values.clear();
  for (const auto& point : grid) {
    times.push_back(point.time);
    values.push_back(point.value);
    estimated.push_back(point.estimated);
    for (std::size_t c = 0; c < exogenous.size(); ++c)
      exogenous[c].values.push_back(point.exogenous[c]);
  }
  return CarbonSeries(std::move(times), std::move(values), series.resolution(), series.source(),
                      std::move(exogenous), std::move(estimated));
}

}  // namespace chase
