// The rolling protocol (chase/backtest.h): day boundaries, the history rule, the horizon, the
// pooled mean and per-day median, explicit ranges and misuse.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "chase/backtest.h"
#include "chase/forecast.h"
#include "forecast_test_util.h"

namespace chase {
namespace {

using test_util::at;
using test_util::daily_pattern;
using test_util::error_message;
using test_util::hourly;
using ::testing::HasSubstr;

// Persistence's forecasts scored by hand: pooled MAPE and per-day MAPEs of days [first, last).
struct Expected {
  double mean;
  std::vector<double> days;
};
Expected persistence_by_hand(const CarbonSeries& series, std::size_t first, std::size_t last,
                             std::size_t horizon) {
  Expected expected{0, {}};
  double sum = 0;
  std::size_t count = 0;
  for (std::size_t day = first; day < last; day += 24) {
    std::vector<double> predicted, actual;
    for (std::size_t t = day; t < std::min(day + 24, last); ++t) {
      predicted.push_back(series.values()[t - horizon]);
      actual.push_back(series.values()[t]);
      sum += std::abs(predicted.back() - actual.back()) / actual.back();
      ++count;
    }
    expected.days.push_back(mape_percent(predicted, actual));
  }
  expected.mean = sum / static_cast<double>(count) * 100;
  return expected;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

TEST(BacktestRolling, DefaultStartIsTheFirstMidnightWithEnoughHistory) {
  // Starts at 05:00; persistence wants history_days (2) days + the horizon before the first day.
  const CarbonSeries series = daily_pattern(10 * 24, 5.0);
  const CarbonSeries shifted(
      std::vector<UtcTime>(series.times().begin() + 5, series.times().end()),
      std::vector<double>(series.values().begin() + 5, series.values().end()), series.resolution());
  RollingProtocolOptions protocol;
  protocol.history_days = 2;
  const auto scores = backtest_rolling(shifted, {"persistence"}, protocol);
  // Index 0 is 01-01 05:00; 49 points of history end at 01-03 06:00, so the first day is 01-04.
  const std::size_t first = 3 * 24 - 5;
  EXPECT_EQ(shifted.times()[first], at("2021-01-04T00:00:00Z"));
  EXPECT_EQ(scores[0].points, shifted.size() - first);
  EXPECT_EQ(scores[0].window_mapes.size(), 7u);
  const Expected expected = persistence_by_hand(shifted, first, shifted.size(), 1);
  EXPECT_NEAR(scores[0].mape_mean, expected.mean, 1e-9);
  EXPECT_NEAR(scores[0].mape_median, median(expected.days), 1e-9);
  for (std::size_t d = 0; d < expected.days.size(); ++d) {
    EXPECT_NEAR(scores[0].window_mapes[d], expected.days[d], 1e-9);
  }
}

TEST(BacktestRolling, EveryModelIsScoredOnTheSameDaysWhateverHistoryItAsksFor) {
  // auto asks for more than the series has before the first day: it gets what exists, and is
  // scored on exactly the days and points persistence is.
  const CarbonSeries series = daily_pattern(40 * 24);
  RollingProtocolOptions protocol;
  auto model = make_forecaster("auto");
  ASSERT_GT(model->history_needed(1), series.size());
  const auto scores = backtest_rolling(series, {"persistence", "auto"}, protocol);
  EXPECT_EQ(scores[0].points, series.size() - 29 * 24);  // 28 days + 1 step → the 30th midnight
  EXPECT_EQ(scores[1].points, scores[0].points);
  EXPECT_EQ(scores[1].window_mapes.size(), 11u);
}

TEST(BacktestRolling, HorizonIsStepsAhead) {
  // An exact daily cycle: a day-ahead persistence forecast is perfect, one step ahead is not.
  const CarbonSeries series = daily_pattern(20 * 24, 0.0);
  RollingProtocolOptions protocol;
  protocol.history_days = 3;
  protocol.horizon_steps = 24;
  EXPECT_NEAR(backtest_rolling(series, {"persistence"}, protocol)[0].mape_mean, 0, 1e-12);
  protocol.horizon_steps = 1;
  EXPECT_GT(backtest_rolling(series, {"persistence"}, protocol)[0].mape_mean, 1);
  EXPECT_NEAR(backtest_rolling(series, {"seasonal"}, protocol)[0].mape_mean, 0, 1e-12);
}

TEST(BacktestRolling, ExplicitRangeAndAPartialLastDay) {
  const CarbonSeries series = daily_pattern(20 * 24);
  RollingProtocolOptions protocol;
  protocol.history_days = 2;
  protocol.start = at("2021-01-05T00:00:00Z");
  protocol.end = at("2021-01-07T12:00:00Z");
  const auto scores = backtest_rolling(series, {"persistence", "seasonal"}, protocol);
  EXPECT_EQ(scores[0].points, 60u);
  EXPECT_EQ(scores[0].window_mapes.size(), 3u);
  EXPECT_EQ(scores[1].points, 60u);
  const Expected expected = persistence_by_hand(series, 4 * 24, 6 * 24 + 12, 1);
  EXPECT_NEAR(scores[0].mape_mean, expected.mean, 1e-9);
  EXPECT_GE(scores[0].fit_predict_s, 0);
}

TEST(BacktestRolling, RejectsMisuse) {
  const CarbonSeries series = daily_pattern(20 * 24);
  RollingProtocolOptions protocol;
  protocol.history_days = 2;
  EXPECT_THROW(backtest_rolling(series, {}, protocol), Error);
  EXPECT_THAT(error_message([&] { backtest_rolling(series, {"nope"}, protocol); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("nope"));
  protocol.start = at("2021-01-02T00:00:00Z");  // 1 day of history, 2 needed
  EXPECT_THAT(error_message([&] { backtest_rolling(series, {"persistence"}, protocol); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("history"));
  protocol.start = at("2021-01-05T00:30:00Z");  // not a point of the series
  EXPECT_THAT(error_message([&] { backtest_rolling(series, {"persistence"}, protocol); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("grid"));
  protocol.start.reset();
  protocol.history_days = 30;  // longer than the series
  EXPECT_THROW(backtest_rolling(series, {"persistence"}, protocol), Error);
  protocol.history_days = 2;
  std::vector<UtcTime> times = series.times();
  times.back() += std::chrono::hours(3);
  const CarbonSeries irregular(times, series.values(), series.resolution());
  EXPECT_THAT(error_message([&] { backtest_rolling(irregular, {"persistence"}, protocol); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("not regular"));
}

}  // namespace
}  // namespace chase
