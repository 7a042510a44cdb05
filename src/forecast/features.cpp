#include "forecast/features.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>

#include "chase/error.h"

namespace chase::forecast_detail {

namespace {

constexpr std::int64_t kSecondsPerDay = 86400;

}  // namespace

std::string describe_series(const CarbonSeries& series) {
  return series.source().empty() ? std::string("the series")
                                 : fmt::format("the series from '{}'", series.source());
}

void check_range(const CarbonSeries& series, std::size_t begin, std::size_t end,
                 std::string_view model, std::string_view call) {
  if (begin >= end || end > series.size()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("Forecaster '{}': {} range [{}, {}) is not a non-empty range of "
                            "indices inside {} ({} points).",
                            model, call, begin, end, describe_series(series), series.size()));
  }
}

void check_horizon(std::size_t horizon, std::string_view model) {
  if (horizon == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("Forecaster '{}': the horizon is 0 steps; it must be at least 1 "
                            "(1 = one step ahead).",
                            model));
  }
}

void check_lag_available(std::size_t begin, std::size_t lag, std::string_view model,
                         std::string_view call) {
  if (begin < lag) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("Forecaster '{}': {} range starts at index {}, but it needs the value "
                            "{} step(s) earlier; start at index {} or later.",
                            model, call, begin, lag, lag));
  }
}

void check_regular(const CarbonSeries& series, std::size_t from, std::size_t to,
                   std::string_view model) {
  const auto& times = series.times();
  for (std::size_t i = from + 1; i < to; ++i) {
    if (times[i] - times[i - 1] != series.resolution()) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("Forecaster '{}': {} is not regular: points {} ({}) and {} ({}) are "
                              "not one resolution ({} s) apart. Fill or resample the series "
                              "first (fill_gaps, or --fill previous|linear on the command line).",
                              model, describe_series(series), i - 1, format_utc_time(times[i - 1]),
                              i, format_utc_time(times[i]), series.resolution().count()));
    }
  }
}

std::size_t steps_per_day(const CarbonSeries& series, std::string_view who) {
  const std::int64_t resolution = series.resolution().count();
  if (resolution <= 0 || kSecondsPerDay % resolution != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: the resolution of {} ({} s) does not divide a day evenly, so it "
                            "has no whole number of points per day; resample it (e.g. to 1 h).",
                            who, describe_series(series), resolution));
  }
  return static_cast<std::size_t>(kSecondsPerDay / resolution);
}

Features build_features(const CarbonSeries& series, std::size_t begin, std::size_t end,
                        std::size_t horizon, bool with_targets, std::string_view model,
                        std::string_view call) {
  check_horizon(horizon, model);
  check_range(series, begin, end, model, call);
  check_lag_available(begin, horizon, model, call);
  check_regular(series, begin - horizon, end, model);
  Features features;
  features.rows = end - begin;
  features.x.resize(features.rows * kFeatureCount);
  if (with_targets)
    features.y.assign(series.values().begin() + static_cast<std::ptrdiff_t>(begin),
                      series.values().begin() + static_cast<std::ptrdiff_t>(end));
  const auto& times = series.times();
  const auto& values = series.values();
  for (std::size_t i = 0; i < features.rows; ++i) {
    const std::size_t t = begin + i;
    const std::int64_t epoch_s =
        std::chrono::floor<std::chrono::seconds>(times[t].time_since_epoch()).count();
    std::int64_t second_of_day = epoch_s % kSecondsPerDay;
    if (second_of_day < 0) second_of_day += kSecondsPerDay;
    const double phase =
        2 * std::numbers::pi * static_cast<double>(second_of_day) / double{kSecondsPerDay};
    double* row = features.x.data() + i * kFeatureCount;
    row[0] = std::sin(phase);
    row[1] = std::cos(phase);
    row[2] = values[t - horizon];
  }
  return features;
}

void check_fitted(bool fitted, std::size_t fit_horizon, std::size_t horizon,
                  std::string_view model) {
  if (!fitted) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("Forecaster '{}': predict() called before fit(); fit it first.", model));
  }
  if (horizon != fit_horizon) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("Forecaster '{}': predict() asked for horizon {} but the model was "
                            "fitted for horizon {}; fit it again for that horizon.",
                            model, horizon, fit_horizon));
  }
}

void FeatureForecaster::fit(const CarbonSeries& series, std::size_t begin, std::size_t end,
                            std::size_t horizon) {
  const Features train = build_features(series, begin, end, horizon, true, name(), "fit");
  fitted_ = false;
  fit_features(train);
  fitted_ = true;
  horizon_ = horizon;
}

std::vector<double> FeatureForecaster::predict(const CarbonSeries& series, std::size_t first,
                                               std::size_t last, std::size_t horizon) const {
  check_fitted(fitted_, horizon_, horizon, name());
  return predict_features(build_features(series, first, last, horizon, false, name(), "predict"));
}

std::vector<std::unique_ptr<Forecaster>> make_forecasters(const std::vector<std::string>& models,
                                                          const ForecasterOptions& options,
                                                          std::string_view who) {
  if (models.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} got no models; name at least one of: {}.", who,
                            fmt::join(forecaster_names(), ", ")));
  }
  std::vector<std::unique_ptr<Forecaster>> forecasters;
  for (const auto& model : models) forecasters.push_back(make_forecaster(model, options));
  return forecasters;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace chase::forecast_detail
