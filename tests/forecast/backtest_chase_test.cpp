// The `chase` backtest protocol (chase/backtest.h): window placement, scores, errors, and the
// published models on real data (skipped when ../shared/data is absent).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "chase/backtest.h"
#include "chase/error.h"
#include "support/errors.h"
#include "support/real_data.h"

namespace chase {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using ::testing::AllOf;
using ::testing::HasSubstr;

using chase::testing::error_message;

std::filesystem::path data_dir() {
  if (const char* dir = std::getenv("CHASE_DATA_DIR"); dir != nullptr && *dir != '\0') return dir;
  return CHASE_DEFAULT_DATA_DIR;
}

// n hourly points with distinct, irregular values (so each window's persistence MAPE differs).
CarbonSeries distinct_series(std::size_t n, std::chrono::seconds step = hours(1)) {
  std::vector<UtcTime> times;
  std::vector<double> values;
  const UtcTime origin = *parse_utc_time("2021-01-01T00:00:00Z");
  for (std::size_t i = 0; i < n; ++i) {
    times.push_back(origin + static_cast<long>(i) * step);
    values.push_back(100 + static_cast<double>((i * 37 + i * i * 11) % 101));
  }
  return CarbonSeries(times, values, step, "distinct");
}

// Persistence MAPE of targets [first, last) computed here, independently of the library.
double persistence_mape(const CarbonSeries& series, std::size_t first, std::size_t last) {
  double sum = 0;
  for (std::size_t t = first; t < last; ++t) {
    sum += std::abs(series.values()[t - 1] - series.values()[t]) / series.values()[t];
  }
  return sum / static_cast<double>(last - first) * 100;
}

TEST(BacktestChase, PlacesWindowsAtThePublishedIndices) {
  // n = 100, fit 4, test 5 → span 10; window k starts at ⌊1 + k·88/3⌋ = 1, 30, 59, 89.
  const CarbonSeries series = distinct_series(100);
  ChaseProtocolOptions protocol;
  protocol.windows = 4;
  protocol.fit_points = 4;
  protocol.test_points = 5;
  const auto scores = backtest_chase(series, {"persistence", "linear"}, protocol);
  ASSERT_EQ(scores.size(), 2u);
  EXPECT_EQ(scores[0].model, "persistence");
  EXPECT_EQ(scores[1].model, "linear");
  const std::vector<std::size_t> starts = {1, 30, 59, 89};
  ASSERT_EQ(scores[0].window_mapes.size(), 4u);
  for (std::size_t k = 0; k < starts.size(); ++k) {
    EXPECT_DOUBLE_EQ(scores[0].window_mapes[k],
                     persistence_mape(series, starts[k] + 4, starts[k] + 9))
        << "window " << k;
  }
  EXPECT_EQ(scores[0].points, 20u);
  EXPECT_EQ(scores[1].points, 20u);
  // The last window's last target is n − 3.
  EXPECT_EQ(starts.back() + 4 + 5 - 1, 100u - 3);
  std::vector<double> sorted = scores[0].window_mapes;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_DOUBLE_EQ(scores[0].mape_median, (sorted[1] + sorted[2]) / 2);
  EXPECT_DOUBLE_EQ(scores[0].mape_mean, (sorted[0] + sorted[1] + sorted[2] + sorted[3]) / 4);
  EXPECT_GE(scores[0].fit_predict_s, 0.0);
}

TEST(BacktestChase, DefaultsAreOneDayFitAnd252HoursTest) {
  // Half-hourly: fit 48, test 504, span 553; 5 windows over n = 600 → starts 1 + k·45/4.
  const CarbonSeries series = distinct_series(600, minutes(30));
  ChaseProtocolOptions protocol;
  protocol.windows = 5;
  const auto scores = backtest_chase(series, {"persistence"}, protocol);
  const std::vector<std::size_t> starts = {1, 12, 23, 34, 46};
  ASSERT_EQ(scores[0].window_mapes.size(), 5u);
  for (std::size_t k = 0; k < starts.size(); ++k) {
    EXPECT_DOUBLE_EQ(scores[0].window_mapes[k],
                     persistence_mape(series, starts[k] + 48, starts[k] + 48 + 504));
  }
  EXPECT_EQ(scores[0].points, 5u * 504);
  std::vector<double> sorted = scores[0].window_mapes;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_DOUBLE_EQ(scores[0].mape_median, sorted[2]);
}

TEST(BacktestChase, OneWindowStartsAtIndexOne) {
  const CarbonSeries series = distinct_series(40);
  ChaseProtocolOptions protocol;
  protocol.windows = 1;
  protocol.fit_points = 5;
  protocol.test_points = 10;
  const auto scores = backtest_chase(series, {"persistence"}, protocol);
  ASSERT_EQ(scores[0].window_mapes.size(), 1u);
  EXPECT_DOUBLE_EQ(scores[0].window_mapes[0], persistence_mape(series, 6, 16));
}

TEST(BacktestChase, EveryModelRunsOnTheSameWindows) {
  const CarbonSeries series = distinct_series(24 * 8);
  ChaseProtocolOptions protocol;
  protocol.windows = 3;
  protocol.test_points = 48;
  const auto scores = backtest_chase(
      series, {"persistence", "seasonal", "linear", "svr", "gboost", "adaboost", "forest"},
      protocol);
  ASSERT_EQ(scores.size(), 7u);
  for (const auto& score : scores) {
    EXPECT_EQ(score.window_mapes.size(), 3u) << score.model;
    EXPECT_EQ(score.points, 3u * 48) << score.model;
    EXPECT_TRUE(std::isfinite(score.mape_median)) << score.model;
    EXPECT_GT(score.mape_mean, 0.0) << score.model;
    EXPECT_GT(score.fit_predict_s, 0.0) << score.model;
  }
}

TEST(BacktestChase, TooShortASeriesSaysWhatFits) {
  // MISO's case: 167 half-hourly points cannot hold 48 + 504 + 3.
  const CarbonSeries series = distinct_series(167, minutes(30));
  EXPECT_THAT(
      error_message([&] { backtest_chase(series, {"linear"}); }, ErrorCode::kInvalidArgument),
      AllOf(HasSubstr("167 points"), HasSubstr("at least fit + test + 3 = 555"),
            HasSubstr("at most 116")));
  ChaseProtocolOptions protocol;
  protocol.test_points = 116;  // the largest that fits
  EXPECT_EQ(backtest_chase(series, {"linear"}, protocol)[0].points, 20u * 116);
  protocol.test_points = 117;
  EXPECT_THROW(backtest_chase(series, {"linear"}, protocol), Error);
}

TEST(BacktestChase, RejectsBadModelsWindowsAndIrregularSeries) {
  const CarbonSeries series = distinct_series(100);
  ChaseProtocolOptions protocol;
  protocol.fit_points = 4;
  protocol.test_points = 5;
  EXPECT_THAT(error_message(
                  [&] {
                    backtest_chase(series, {"linear", "nope"}, protocol);
                  },
                  ErrorCode::kInvalidArgument),
              HasSubstr("'nope'"));
  EXPECT_THAT(
      error_message([&] { backtest_chase(series, {}, protocol); }, ErrorCode::kInvalidArgument),
      HasSubstr("no models"));
  protocol.windows = 0;
  EXPECT_THAT(error_message([&] { backtest_chase(series, {"linear"}, protocol); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("windows is 0"));
  protocol.windows = 3;
  std::vector<UtcTime> times = series.times();
  times.back() += hours(2);
  const CarbonSeries gappy(times, series.values(), hours(1), "gappy.csv");
  EXPECT_THAT(error_message([&] { backtest_chase(gappy, {"linear"}, protocol); },
                            ErrorCode::kInvalidArgument),
              AllOf(HasSubstr("not regular"), HasSubstr("gappy.csv")));
  const CarbonSeries odd_step = distinct_series(2000, std::chrono::seconds(7 * 60));
  EXPECT_THAT(
      error_message([&] { backtest_chase(odd_step, {"linear"}); }, ErrorCode::kInvalidArgument),
      HasSubstr("does not divide a day"));
}

TEST(BacktestChase, RealCisoDataMatchesTheReferenceBaselines) {
  const auto path = data_dir() / "carbon" / "dacf" / "CISO_direct_emissions.csv";
  CHASE_SKIP_UNLESS_REAL_DATA(path);
  const CarbonSeries series = load_carbon_csv(path);
  ASSERT_EQ(series.size(), 17544u);
  const auto scores = backtest_chase(series, {"persistence", "seasonal", "linear", "svr"});
  // Persistence, recomputed here on the published windows (24 fit, 252 test, span 277).
  const std::size_t n = series.size();
  std::vector<double> mapes;
  for (std::size_t k = 0; k < 20; ++k) {
    const std::size_t start = 1 + k * (n - 277 - 2) / 19;
    mapes.push_back(persistence_mape(series, start + 24, start + 24 + 252));
  }
  EXPECT_EQ(scores[0].window_mapes, mapes);
  // docs/ALGORITHMS.md §4, measured with scikit-learn on these windows: persistence 8.2 %, linear
  // 8.8 %, SVR 11.0 % (median MAPE); our models must land within 10 % of those.
  EXPECT_NEAR(scores[0].mape_median, 8.2, 0.82);
  EXPECT_NEAR(scores[2].mape_median, 8.8, 0.88);
  EXPECT_NEAR(scores[3].mape_median, 11.0, 1.1);
  EXPECT_GT(scores[1].mape_median, 0.0);
}

}  // namespace
}  // namespace chase
