// backtest_chase: the published `chase` protocol (chase/backtest.h, docs/ALGORITHMS.md §4).
// backtest_rolling lives in its own file.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>

#include "chase/backtest.h"
#include "chase/error.h"
#include "forecast/features.h"

namespace chase {

namespace {

constexpr std::int64_t kTestSeconds = 252 * 3600;

}  // namespace

std::vector<ModelScore> backtest_chase(const CarbonSeries& series,
                                       const std::vector<std::string>& models,
                                       const ChaseProtocolOptions& protocol,
                                       const ForecasterOptions& options) {
  const std::string who = "The chase backtest protocol";
  if (protocol.windows == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: the number of windows is 0; it must be at least 1.", who));
  }
  const auto forecasters = forecast_detail::make_forecasters(models, options, who);

  std::size_t fit = protocol.fit_points;
  std::size_t test = protocol.test_points;
  if (fit == 0) fit = forecast_detail::steps_per_day(series, who);
  if (test == 0) {
    const std::int64_t resolution = series.resolution().count();
    if (resolution <= 0 || kTestSeconds % resolution != 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{}: 252 h is not a whole number of points at the series' "
                              "resolution ({} s); set test_points.",
                              who, resolution));
    }
    test = static_cast<std::size_t>(kTestSeconds / resolution);
  }
  const std::size_t span = fit + test + 1;
  const std::size_t n = series.size();
  // Window k starts at 1 + k·(n − span − 2)/(N − 1) and reads up to its start + fit + test − 1,
  // so the last window ends at index n − 3: the protocol needs n ≥ span + 2.
  if (n < span + 2) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("{}: the series has {} points, too few for {} fit + {} test points (it needs "
                    "at least fit + test + 3 = {}). Give a shorter test_points (at most {}) or a "
                    "longer series.",
                    who, n, fit, test, span + 2, n >= fit + 4 ? n - fit - 3 : 0));
  }
  forecast_detail::check_regular(series, 0, n, who);

  const std::size_t windows = protocol.windows;
  std::vector<std::size_t> starts(windows);
  for (std::size_t k = 0; k < windows; ++k) {
    starts[k] = windows == 1 ? 1 : 1 + k * (n - span - 2) / (windows - 1);
  }

  std::vector<ModelScore> scores;
  for (std::size_t m = 0; m < models.size(); ++m) {
    Forecaster& forecaster = *forecasters[m];
    ModelScore score;
    score.model = models[m];
    std::chrono::steady_clock::duration spent{0};
    for (const std::size_t start : starts) {
      const std::size_t first = start + fit;
      const std::size_t last = first + test;
      const auto begin_time = std::chrono::steady_clock::now();
      forecaster.fit(series, start, first, 1);
      const std::vector<double> predicted = forecaster.predict(series, first, last, 1);
      spent += std::chrono::steady_clock::now() - begin_time;
      const std::vector<double> actual(series.values().begin() + static_cast<std::ptrdiff_t>(first),
                                       series.values().begin() + static_cast<std::ptrdiff_t>(last));
      score.window_mapes.push_back(mape_percent(predicted, actual));
      score.points += test;
    }
    score.fit_predict_s = std::chrono::duration<double>(spent).count();
    score.mape_median = forecast_detail::median(score.window_mapes);
    double sum = 0;
    for (const double mape : score.window_mapes) sum += mape;
    score.mape_mean = sum / static_cast<double>(score.window_mapes.size());
    scores.push_back(std::move(score));
  }
  return scores;
}

}  // namespace chase
