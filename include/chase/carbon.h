// chase/carbon.h — carbon-intensity series and the emissions of measured energy.
//
// Contract: a CarbonSeries maps UTC interval starts to gCO2eq/kWh. Point i holds for one
// `resolution` from times[i]; a series with gaps leaves the gaps uncovered (no value is invented
// for them). Times are strictly increasing; values are finite and non-negative (the constructor
// checks).
// load_carbon_csv() finds the time and value columns by header (or by name when given), accepts
// ISO 8601 and "YYYY-MM-DD HH:MM:SS" (UTC), sorts unsorted rows, and reports malformed input as
// kParse naming the file, line and column.
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
#include <string>
#include <vector>

#include "chase/time.h"

namespace chase {

class CarbonSeries {
 public:
  CarbonSeries() = default;
  // Throws kInvalidArgument for unsorted/duplicate times, NaN or negative values, or size mismatch.
  CarbonSeries(std::vector<UtcTime> times, std::vector<double> values,
               std::chrono::seconds resolution, std::string source = "");

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

 private:
  std::vector<UtcTime> times_;
  std::vector<double> values_;
  std::chrono::seconds resolution_{0};
  std::string source_;
};

struct CarbonCsvOptions {
  std::string time_column;   // empty: detect ("UTC time", "timestamp", "datetime", "time", ...)
  std::string value_column;  // empty: detect ("carbon_intensity", "value", "hist", ...)
};

CarbonSeries load_carbon_csv(const std::filesystem::path& path,
                             const CarbonCsvOptions& options = {});

constexpr double kJoulesPerKwh = 3.6e6;

// Emissions in g of `energy_j` at a constant intensity in gCO2eq/kWh.
double emissions_g(double energy_j, double intensity_g_per_kwh);
// Emissions in g of `energy_j` used evenly over [start, end) under `series`.
double emissions_g(double energy_j, UtcTime start, UtcTime end, const CarbonSeries& series);

}  // namespace chase
