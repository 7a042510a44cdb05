// backtest_rolling: the `rolling` protocol (chase/backtest.h).
//
// Days are blocks of one day of points from `start` (a UTC midnight by default, so calendar days);
// the last block is cut at `end`. History rule: model m is refitted before each day d on the
// W_m = max(history_days · points per day, history_needed_m(h)) points before d, or on as many as
// the series has when that is fewer (keeping the h points before them that the first target's
// lag needs): fit(series, max(h, d − W_m), d, h); the day is then scored with
// predict(series, d, d + len, h). The first day needs history_days of points plus h before it;
// the default start is the first midnight where that holds, and every model is scored on the
// same days and points.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "chase/backtest.h"
#include "chase/error.h"
#include "forecast/features.h"

namespace chase {

namespace {

constexpr std::int64_t kSecondsPerDay = 86400;

// Index of the point starting at `time`; throws when `time` is not one of the series' points
// (or its end, when `allow_end`).
std::size_t index_of(const CarbonSeries& series, UtcTime time, std::string_view what,
                     bool allow_end, const std::string& who) {
  const auto offset = time - series.start();
  const auto step = std::chrono::duration_cast<UtcTime::duration>(series.resolution());
  const bool inside =
      time >= series.start() && (allow_end ? time <= series.end() : time < series.end());
  if (!inside || offset % step != UtcTime::duration(0)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: the {} time {} is not {} of the series, which has a point every "
                            "{} s in [{}, {}). Pick a time on that grid.",
                            who, what, format_utc_time(time),
                            allow_end ? "a point boundary" : "a point", series.resolution().count(),
                            format_utc_time(series.start()), format_utc_time(series.end())));
  }
  return static_cast<std::size_t>(offset / step);
}

}  // namespace

std::vector<ModelScore> backtest_rolling(const CarbonSeries& series,
                                         const std::vector<std::string>& models,
                                         const RollingProtocolOptions& protocol,
                                         const ForecasterOptions& options) {
  const std::string who = "The rolling backtest protocol";
  if (protocol.history_days == 0 || protocol.horizon_steps == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: history_days ({}) and horizon_steps ({}) must both be at least "
                            "1.",
                            who, protocol.history_days, protocol.horizon_steps));
  }
  if (series.empty()) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: the series is empty.", who));
  }
  const auto forecasters = forecast_detail::make_forecasters(models, options, who);
  const std::size_t per_day = forecast_detail::steps_per_day(series, who);
  const std::size_t n = series.size();
  forecast_detail::check_regular(series, 0, n, who);
  const std::size_t horizon = protocol.horizon_steps;

  std::vector<std::size_t> windows;  // W_m
  for (const auto& forecaster : forecasters) {
    windows.push_back(
        std::max(protocol.history_days * per_day, forecaster->history_needed(horizon)));
  }
  const std::size_t earliest = protocol.history_days * per_day + horizon;  // first index scored

  std::size_t first = 0;
  if (protocol.start) {
    first = index_of(series, *protocol.start, "start", false, who);
  } else {
    // The first UTC midnight at or after `earliest`.
    first = earliest;
    while (first < n) {
      const std::int64_t s =
          std::chrono::floor<std::chrono::seconds>(series.times()[first].time_since_epoch())
              .count();
      if (((s % kSecondsPerDay) + kSecondsPerDay) % kSecondsPerDay == 0) break;
      ++first;
    }
  }
  const std::size_t last = protocol.end ? index_of(series, *protocol.end, "end", true, who) : n;
  if (first < earliest || first >= last) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format(
            "{}: nothing to score. The first scored day needs {} points of history "
            "before it (history_days × {} points plus the horizon), so it can start at "
            "{} at the earliest, and the range ends at {}. Use a later start, fewer "
            "history days, a shorter horizon or a longer series.",
            who, earliest, per_day,
            earliest < n ? format_utc_time(series.times()[earliest])
                         : std::string("(past the end)"),
            last < n ? format_utc_time(series.times()[last]) : format_utc_time(series.end())));
  }

  std::vector<ModelScore> scores;
  for (std::size_t m = 0; m < models.size(); ++m) {
    Forecaster& forecaster = *forecasters[m];
    ModelScore score;
    score.model = models[m];
    std::chrono::steady_clock::duration spent{0};
    double error_sum = 0;
    std::size_t error_count = 0;
    for (std::size_t day = first; day < last; day += per_day) {
      const std::size_t day_end = std::min(day + per_day, last);
      const auto begin_time = std::chrono::steady_clock::now();
      forecaster.fit(series, day >= windows[m] + horizon ? day - windows[m] : horizon, day,
                     horizon);
      const std::vector<double> predicted = forecaster.predict(series, day, day_end, horizon);
      spent += std::chrono::steady_clock::now() - begin_time;
      const std::vector<double> actual(
          series.values().begin() + static_cast<std::ptrdiff_t>(day),
          series.values().begin() + static_cast<std::ptrdiff_t>(day_end));
      bool any_positive = false;
      for (std::size_t i = 0; i < actual.size(); ++i) {
        if (actual[i] > 0) {
          error_sum += std::abs(predicted[i] - actual[i]) / actual[i];
          ++error_count;
          any_positive = true;
        }
      }
      // A day of zero intensities has no percentage error; it is left out of the median.
      if (any_positive) score.window_mapes.push_back(mape_percent(predicted, actual));
      score.points += actual.size();
    }
    if (error_count == 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{}: every scored intensity is 0, so the percentage error is "
                              "undefined.",
                              who));
    }
    score.fit_predict_s = std::chrono::duration<double>(spent).count();
    score.mape_mean = error_sum / static_cast<double>(error_count) * 100;
    score.mape_median = forecast_detail::median(score.window_mapes);
    scores.push_back(std::move(score));
  }
  return scores;
}

}  // namespace chase
