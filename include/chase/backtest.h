// chase/backtest.h — scoring forecasters on a carbon-intensity history.
//
// Contract: both protocols take a regular series (see chase/forecast.h) and a list of model names
// for make_forecaster, and return one ModelScore per model, in the order given. Every model sees
// the same windows and the same points. MAPE is in % (mape_percent).
//
// `chase` protocol (docs/ALGORITHMS.md §4, the published method): N windows; window
// k's first fit point is at index floor(1 + k·(n − span − 2)/(N − 1)) with span = fit + test + 1,
// fit = one day of points and test = 252 h of points by default. Each window fits on its `fit`
// points and forecasts the `test` points after them one step ahead with the true previous value.
// mape_median / mape_mean are the median / mean of the per-window MAPEs.
//
// `rolling` protocol: for every day in [start, end), refit on the last `history_days` days of
// points before that day, then forecast every point of the day `horizon_steps` ahead (1 step, or a
// day's worth of steps for day-ahead). mape_mean is the MAPE over all forecast points; mape_median
// the median of the per-day MAPEs. History rule: a model whose history_needed(horizon) is more than
// history_days of points gets that many points instead, or as many as the series has before the
// day (fit(series, max(h, day − W), day, h) with W = max(history_days of points, history_needed)).
// Days are one-day blocks from `start`; the default start is the first UTC midnight with
// history_days of points plus the horizon before it; a partial last block is scored too.
//
// fit_predict_s is the wall time spent in fit() and predict() for that model, summed over windows.
// Errors: a series too short for the protocol, an irregular series, an unknown model or a range
// outside the series throw chase::Error (kInvalidArgument) saying what is wrong and what to change.
//
// Thread safety: reentrant; each call builds its own forecasters.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chase/carbon.h"
#include "chase/forecast.h"
#include "chase/time.h"

namespace chase {

struct ModelScore {
  std::string model;
  double mape_median = 0;
  double mape_mean = 0;
  double fit_predict_s = 0;
  std::size_t points = 0;            // forecast points scored, over all windows/days
  std::vector<double> window_mapes;  // per window (chase) or per day (rolling)
};

struct ChaseProtocolOptions {
  std::size_t windows = 20;
  std::size_t fit_points = 0;   // 0: one day of points at the series' resolution
  std::size_t test_points = 0;  // 0: 252 h of points at the series' resolution
};

struct RollingProtocolOptions {
  std::size_t history_days = 28;
  std::size_t horizon_steps = 1;
  std::optional<UtcTime> start;  // default: the first day with enough history
  std::optional<UtcTime> end;    // default: the end of the series
};

std::vector<ModelScore> backtest_chase(const CarbonSeries& series,
                                       const std::vector<std::string>& models,
                                       const ChaseProtocolOptions& protocol = {},
                                       const ForecasterOptions& options = {});

std::vector<ModelScore> backtest_rolling(const CarbonSeries& series,
                                         const std::vector<std::string>& models,
                                         const RollingProtocolOptions& protocol = {},
                                         const ForecasterOptions& options = {});

}  // namespace chase
