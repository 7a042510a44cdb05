// chase/carbon.h — carbon-intensity series and the emissions of measured energy.
//
// Contract: a CarbonSeries maps UTC interval starts to gCO2eq/kWh. Point i holds for one
// `resolution` from times[i]; a series with gaps leaves the gaps uncovered (no value is invented
// for them). Times are strictly increasing; values are finite and non-negative (the constructor
// checks). A series may also say, per point, whether the value is estimated (a forecast or
// model value standing in for a measurement): estimated() is empty when no point is, else one flag
// per point.
// load_carbon_csv() finds the time and value columns by header (or by name when given), accepts
// ISO 8601 and "YYYY-MM-DD HH:MM:SS" (UTC), sorts unsorted rows, and reports malformed input as
// kParse naming the file, line and column. It recognises, from the header (or the JSON shape),
// never the file name, the public exports: Electricity Maps' CSV (life-cycle when it has both the
// direct and the LCA column and none was named, with a note), WattTime's CSV and JSON (lbs/MWh
// converted), the UK Carbon Intensity API's JSON and the Carbon Aware SDK's JSON; columns named by
// the caller override the detection. Times without a UTC offset under a header that does not say
// UTC are read as UTC and flagged in the report (they may be local time).
//
// Exogenous columns: a series may carry extra numeric columns (e.g. weather and generation
// forecasts published a day ahead), each with one finite value per point, aligned with times().
// The loader keeps them only when asked: `exogenous` keeps the columns whose header contains
// "forecast" (case-insensitive) — realised generation columns (coal, nat_gas, ...) are never kept
// unless named explicitly in `exogenous_columns`, since they would leak the answer to a forecaster.
// Loading options: duplicate times are an error unless `duplicates` keeps the first or the last row
// of each time; gaps (missing points at the inferred resolution) are counted and listed in the
// CarbonLoadReport, then left uncovered (fill none), carried forward (previous) or interpolated in
// time (linear). `resample` puts the series on a grid of that period aligned to the Unix epoch:
// a period at least the source resolution takes the mean of the points starting in it
// (downsampling); a shorter one takes the value in force at its start (upsampling); a period with
// neither is a gap, filled by `fill`. A load with fill previous/linear (or a resample with a fill)
// returns a regular() series. Exogenous columns get the same treatment as the intensity.
//
// Emissions: E_J / 3.6e6 × CI. For a window [start, end) under a series, the window's energy is
// spread evenly over its duration and split at the series' interval boundaries, each part weighted
// by its interval's intensity. A window reaching outside the series, or over one of its gaps, is an
// error (kInvalidArgument naming the series' coverage or the gap), never an extrapolated guess.
//
// Thread safety: CarbonSeries is immutable after construction; the functions are pure.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chase/time.h"

namespace chase {

// An extra input column aligned with a series' points (one finite value per point).
struct ExogenousColumn {
  std::string name;
  std::vector<double> values;
  bool operator==(const ExogenousColumn&) const = default;
};

class CarbonSeries {
 public:
  CarbonSeries() = default;
  // Throws kInvalidArgument for unsorted/duplicate times, NaN or negative values, or size mismatch
  // (also of an exogenous column, whose values must be finite; names must be unique).
  CarbonSeries(std::vector<UtcTime> times, std::vector<double> values,
               std::chrono::seconds resolution, std::string source = "",
               std::vector<ExogenousColumn> exogenous = {});
  // The same, with one `estimated` flag per point (or none: an empty vector, nothing estimated).
  CarbonSeries(std::vector<UtcTime> times, std::vector<double> values,
               std::chrono::seconds resolution, std::string source,
               std::vector<ExogenousColumn> exogenous, std::vector<bool> estimated);

  const std::vector<UtcTime>& times() const noexcept { return times_; }
  const std::vector<double>& values() const noexcept { return values_; }
  std::chrono::seconds resolution() const noexcept { return resolution_; }
  const std::string& source() const noexcept { return source_; }
  std::size_t size() const noexcept { return times_.size(); }
  bool empty() const noexcept { return times_.empty(); }
  UtcTime start() const;  // first interval start
  UtcTime end() const;    // last interval start + resolution
  // Intensity in force at `time`; throws kInvalidArgument outside [start(), end()) or in a gap.
  double value_at(UtcTime time) const;
  // True when every point starts one resolution after the previous one (no gaps); an empty or
  // one-point series is regular. Forecasters need a regular series.
  bool regular() const noexcept;
  // The highest value of the points starting in [from, to); nullopt when none does. (CI_max of
  // the chase cost is this over the day before a job starts.)
  std::optional<double> max_between(UtcTime from, UtcTime to) const;
  const std::vector<ExogenousColumn>& exogenous() const noexcept { return exogenous_; }
  // One flag per point, true where the value is estimated; empty when no point is.
  const std::vector<bool>& estimated() const noexcept { return estimated_; }
  bool is_estimated(std::size_t index) const noexcept {
    return index < estimated_.size() && estimated_[index];
  }

 private:
  std::vector<UtcTime> times_;
  std::vector<double> values_;
  std::chrono::seconds resolution_{0};
  std::string source_;
  std::vector<ExogenousColumn> exogenous_;
  std::vector<bool> estimated_;
};

enum class GapFill { kNone, kPrevious, kLinear };
enum class DuplicateTimes { kError, kKeepFirst, kKeepLast };

// "none" | "previous" | "linear"; nullopt otherwise.
std::optional<GapFill> parse_gap_fill(std::string_view text);
// "error" | "first" | "last"; nullopt otherwise.
std::optional<DuplicateTimes> parse_duplicate_times(std::string_view text);

struct CarbonCsvOptions {
  CarbonCsvOptions() = default;
  // The two column names only (brace-initialisable as {time, value}); the rest keep defaults.
  CarbonCsvOptions(std::string time, std::string value)
      : time_column(std::move(time)), value_column(std::move(value)) {}

  std::string time_column;   // empty: detect ("UTC time", "timestamp", "datetime", "time", ...)
  std::string value_column;  // empty: detect ("carbon_intensity", "value", "hist", ...)
  GapFill fill = GapFill::kNone;
  std::chrono::seconds resample{0};  // 0: keep the inferred resolution
  DuplicateTimes duplicates = DuplicateTimes::kError;
  bool exogenous = false;                      // keep the columns whose name contains "forecast"
  std::vector<std::string> exogenous_columns;  // keep exactly these (overrides `exogenous`)
};

// What a load found and did. Examples list at most kMaxExamples items, with line numbers.
struct CarbonLoadReport {
  static constexpr std::size_t kMaxExamples = 5;
  std::size_t rows = 0;  // data rows read
  bool sorted = true;    // false when the rows had to be sorted
  std::size_t duplicates = 0;
  std::vector<std::string> duplicate_examples;
  std::size_t gaps = 0;            // runs of missing points at the source resolution
  std::size_t missing_points = 0;  // points those runs miss
  std::vector<std::string> gap_examples;
  std::chrono::seconds source_resolution{0};
  std::size_t filled_points = 0;               // points invented by `fill` (after any resampling)
  std::vector<std::string> exogenous_columns;  // kept, in file order
  // The public export recognised ("electricitymaps", "watttime", "ukgrid", "carbon-aware-sdk");
  // empty for a generic CSV.
  std::string format;
  // What the loader chose for the caller, one sentence each (also logged): the column used when an
  // export has several (Electricity Maps: direct vs life-cycle), a unit conversion, left-out nulls,
  // times that may be local.
  std::vector<std::string> notes;
  std::size_t times_without_offset = 0;  // rows whose time text carries no UTC offset
  bool local_times_suspected = false;    // ... and the time column's header does not say UTC
  std::size_t estimated_points = 0;      // points of the series flagged estimated
};

CarbonSeries load_carbon_csv(const std::filesystem::path& path,
                             const CarbonCsvOptions& options = {},
                             CarbonLoadReport* report = nullptr);

// The series on a regular grid at its own resolution, its gaps filled by `fill` (previous value or
// linear in time); `filled` gets the number of points invented. A regular series, or kNone, comes
// back unchanged. For series from providers, which drop null values and leave holes.
CarbonSeries fill_gaps(const CarbonSeries& series, GapFill fill, std::size_t* filled = nullptr);

constexpr double kJoulesPerKwh = 3.6e6;

// Emissions in g of `energy_j` at a constant intensity in gCO2eq/kWh.
double emissions_g(double energy_j, double intensity_g_per_kwh);
// Emissions in g of `energy_j` used evenly over [start, end) under `series`.
double emissions_g(double energy_j, UtcTime start, UtcTime end, const CarbonSeries& series);

}  // namespace chase
