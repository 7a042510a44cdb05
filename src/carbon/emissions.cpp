#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "chase/carbon.h"
#include "chase/error.h"

namespace chase {

namespace {

// One interval of a series: the intensity `value` holds on [begin, end).
struct Interval {
  UtcTime begin;
  UtcTime end;
  double value;
};

std::string describe_series(const CarbonSeries& series) {
  return series.source().empty()
             ? std::string("the carbon-intensity series")
             : fmt::format("the carbon-intensity series from '{}'", series.source());
}

std::string describe_window(UtcTime start, UtcTime end) {
  return fmt::format("[{}, {})", format_utc_time(start), format_utc_time(end));
}

void check_energy(double energy_j) {
  // Negative energy is passed through (the formula is linear); NaN or infinity would only turn
  // into a meaningless emissions figure.
  if (!std::isfinite(energy_j)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("Cannot compute emissions of {} J: the energy must be a finite number "
                            "of joules; check the energy measurement.",
                            energy_j));
  }
}

// The interval of `series` holding `time`; throws kInvalidArgument, naming the window being
// computed, when `time` lies outside the series or in one of its gaps. Must agree with
// CarbonSeries::value_at: a point holds for one resolution, or until the next point if sooner.
Interval interval_at(const CarbonSeries& series, UtcTime time, UtcTime window_start,
                     UtcTime window_end) {
  if (series.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("Cannot compute the emissions of the window {}: {} is empty.",
                            describe_window(window_start, window_end), describe_series(series)));
  }
  if (time < series.start() || time >= series.end()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("Cannot compute the emissions of the window {}: {} has no intensity "
                            "for {}, as it covers only [{}, {}). Use a series that covers the "
                            "whole window; emissions are never extrapolated.",
                            describe_window(window_start, window_end), describe_series(series),
                            format_utc_time(time), format_utc_time(series.start()),
                            format_utc_time(series.end())));
  }
  const auto& times = series.times();
  const auto index = static_cast<std::size_t>(std::upper_bound(times.begin(), times.end(), time) -
                                              times.begin() - 1);
  UtcTime end = times[index] + series.resolution();
  if (index + 1 < times.size()) end = std::min(end, times[index + 1]);
  if (time >= end) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("Cannot compute the emissions of the window {}: {} has no intensity "
                    "for {}, which falls in its gap from {} to {} (the series covers "
                    "[{}, {}) with gaps). Fill the gap or measure a window outside it.",
                    describe_window(window_start, window_end), describe_series(series),
                    format_utc_time(time), format_utc_time(end), format_utc_time(times[index + 1]),
                    format_utc_time(series.start()), format_utc_time(series.end())));
  }
  return {times[index], end, series.values()[index]};
}

// The intensity over [start, end) weighted by how long each interval's value holds within it.
double mean_intensity(const CarbonSeries& series, UtcTime start, UtcTime end) {
  if (start == end) return interval_at(series, start, start, end).value;
  double weighted_sum = 0;  // Σ intensity × ticks
  for (UtcTime cursor = start; cursor < end;) {
    const Interval interval = interval_at(series, cursor, start, end);
    const UtcTime part_end = std::min(end, interval.end);
    weighted_sum += interval.value * static_cast<double>((part_end - cursor).count());
    cursor = part_end;
  }
  return weighted_sum / static_cast<double>((end - start).count());
}

}  // namespace

double emissions_g(double energy_j, double intensity_g_per_kwh) {
  check_energy(energy_j);
  if (!std::isfinite(intensity_g_per_kwh) || intensity_g_per_kwh < 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("Cannot compute emissions at a carbon intensity of {} gCO2eq/kWh: the "
                            "intensity must be a finite, non-negative number.",
                            intensity_g_per_kwh));
  }
  return energy_j / kJoulesPerKwh * intensity_g_per_kwh;
}

double emissions_g(double energy_j, UtcTime start, UtcTime end, const CarbonSeries& series) {
  check_energy(energy_j);
  if (end < start) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("Cannot compute emissions for a window that ends ({}) before it "
                            "starts ({}); pass the start time first.",
                            format_utc_time(end), format_utc_time(start)));
  }
  // Spreading the energy evenly over the window and weighting each part by its interval's
  // intensity is the same as charging all of it at the time-weighted mean intensity.
  return emissions_g(energy_j, mean_intensity(series, start, end));
}

}  // namespace chase
