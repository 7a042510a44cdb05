// The forecasters (chase/forecast.h): registry, mape_percent, features, each model on a series
// whose answer is known, determinism, no look-ahead, and misuse.
#include "chase/forecast.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "chase/error.h"
#include "support/errors.h"

namespace chase {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using ::testing::AllOf;
using ::testing::HasSubstr;

using chase::testing::error_message;

UtcTime at(const char* text) {
  const auto time = parse_utc_time(text);
  EXPECT_TRUE(time) << text;
  return time.value_or(UtcTime{});
}

// A regular series with `step` between points, starting at `start`, values from `value(i, phase)`
// where phase is 2π × the clock time of day.
template <typename F>
CarbonSeries make_series(std::size_t n, std::chrono::seconds step, F value,
                         const char* start = "2021-03-01T00:00:00Z") {
  std::vector<UtcTime> times;
  std::vector<double> values;
  const UtcTime origin = at(start);
  for (std::size_t i = 0; i < n; ++i) {
    const UtcTime t = origin + static_cast<long>(i) * step;
    const auto second =
        std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count() % 86400;
    const double phase = 2 * std::numbers::pi * static_cast<double>(second) / 86400.0;
    times.push_back(t);
    values.push_back(value(i, phase, values));
  }
  return CarbonSeries(std::move(times), std::move(values), step, "synthetic");
}

// A noisy daily cycle (deterministic pseudo-noise), positive.
CarbonSeries daily_cycle(std::size_t n, std::chrono::seconds step = hours(1)) {
  return make_series(n, step, [](std::size_t i, double phase, const std::vector<double>&) {
    return 300 + 80 * std::sin(phase) + 20 * std::cos(3 * phase) +
           15 * std::sin(static_cast<double>(i * i % 97));
  });
}

std::vector<double> slice(const CarbonSeries& series, std::size_t first, std::size_t last) {
  return {series.values().begin() + static_cast<long>(first),
          series.values().begin() + static_cast<long>(last)};
}

const std::vector<std::string> kAll = {"persistence", "seasonal", "linear", "svr",
                                       "gboost",      "adaboost", "forest"};

// ---------------------------------------------------------------------------------------------
// Registry and MAPE.

TEST(ForecastRegistry, ListsEveryModelAndMakesEach) {
  const auto names = forecaster_names();
  for (const auto& name : kAll) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
    const auto model = make_forecaster(name);
    ASSERT_NE(model, nullptr);
    EXPECT_EQ(model->name(), name);
  }
}

TEST(ForecastRegistry, UnknownNameListsTheKnownOnes) {
  const std::string message =
      error_message([] { make_forecaster("prophet"); }, ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, HasSubstr("'prophet'"));
  EXPECT_THAT(message, HasSubstr("persistence"));
  EXPECT_THAT(message, HasSubstr("forest"));
}

TEST(ForecastRegistry, RejectsZeroThreads) {
  ForecasterOptions options;
  options.threads = 0;
  EXPECT_THAT(
      error_message([&] { make_forecaster("linear", options); }, ErrorCode::kInvalidArgument),
      HasSubstr("threads"));
}

TEST(MapePercent, MeanOfRelativeErrorsOverPositiveActuals) {
  // |110−100|/100 = 10 %, |150−200|/200 = 25 %, the zero actual is left out.
  EXPECT_DOUBLE_EQ(mape_percent({110, 150, 7}, {100, 200, 0}), 17.5);
  EXPECT_DOUBLE_EQ(mape_percent({5}, {5}), 0.0);
}

TEST(MapePercent, RejectsMismatchedEmptyOrUndefinedInput) {
  EXPECT_THAT(error_message(
                  [] {
                    mape_percent({1, 2}, {1});
                  },
                  ErrorCode::kInvalidArgument),
              HasSubstr("2 predictions for 1"));
  EXPECT_THAT(error_message([] { mape_percent({}, {}); }, ErrorCode::kInvalidArgument),
              HasSubstr("positive"));
  EXPECT_THAT(error_message(
                  [] {
                    mape_percent({1, 2}, {0, 0});
                  },
                  ErrorCode::kInvalidArgument),
              HasSubstr("positive"));
  EXPECT_THAT(error_message([] { mape_percent({NAN}, {1}); }, ErrorCode::kInvalidArgument),
              HasSubstr("not finite"));
}

// ---------------------------------------------------------------------------------------------
// Baselines: exact.

TEST(Baselines, PersistenceIsTheValueHorizonStepsBack) {
  const CarbonSeries series = daily_cycle(100);
  auto model = make_forecaster("persistence");
  EXPECT_EQ(model->history_needed(1), 0u);
  for (std::size_t horizon : {1u, 3u}) {
    model->fit(series, 10, 34, horizon);
    const auto predicted = model->predict(series, 40, 60, horizon);
    ASSERT_EQ(predicted.size(), 20u);
    for (std::size_t t = 40; t < 60; ++t)
      EXPECT_EQ(predicted[t - 40], series.values()[t - horizon]);
  }
}

TEST(Baselines, SeasonalIsTheSameClockTimeADayEarlier) {
  for (const auto step : {std::chrono::seconds(hours(1)), std::chrono::seconds(minutes(30))}) {
    const CarbonSeries series = daily_cycle(200, step);
    const std::size_t day = static_cast<std::size_t>(86400 / step.count());
    auto model = make_forecaster("seasonal");
    model->fit(series, 1, 1 + day, 1);
    const auto predicted = model->predict(series, day, 2 * day, 1);
    for (std::size_t t = day; t < 2 * day; ++t) {
      EXPECT_EQ(predicted[t - day], series.values()[t - day]);
    }
    // A horizon longer than a day reaches back two days; too early a target is an error.
    model->fit(series, 1, 1 + day, day + 1);
    EXPECT_EQ(model->predict(series, 2 * day, 2 * day + 1, day + 1)[0], series.values()[0]);
    EXPECT_THAT(error_message([&] { model->predict(series, day, day + 1, day + 1); },
                              ErrorCode::kInvalidArgument),
                HasSubstr("needs the value"));
  }
}

// ---------------------------------------------------------------------------------------------
// The published models on series whose answer is known.

TEST(Linear, RecoversANoiselessLinearSeriesExactly) {
  // y_t = 40 + 12 sin + 7 cos + 0.6 y_{t−1}: exactly linear in the three features.
  const CarbonSeries series =
      make_series(120, hours(1), [](std::size_t i, double phase, const std::vector<double>& y) {
        const double previous = i == 0 ? 250.0 : y.back();
        return 40 + 12 * std::sin(phase) + 7 * std::cos(phase) + 0.6 * previous;
      });
  auto model = make_forecaster("linear");
  model->fit(series, 1, 25, 1);
  const auto predicted = model->predict(series, 25, 120, 1);
  for (std::size_t t = 25; t < 120; ++t) {
    EXPECT_NEAR(predicted[t - 25], series.values()[t], 1e-8) << t;
  }
}

TEST(Linear, HalfHourlyClockFeaturesUseTheTimeOfDayNotTheStep) {
  // y depends on the clock only; the series starts at 06:20, so a step counter would be off phase.
  const CarbonSeries series = make_series(
      200, minutes(30),
      [](std::size_t, double phase, const std::vector<double>&) {
        return 500 + 30 * std::sin(phase) - 20 * std::cos(phase);
      },
      "2022-10-20T06:20:00Z");
  auto model = make_forecaster("linear");
  model->fit(series, 1, 49, 1);
  const auto predicted = model->predict(series, 49, 200, 1);
  EXPECT_LT(mape_percent(predicted, slice(series, 49, 200)), 1e-9);
}

// A step in the time of day: 150 from 00:00 to 11:59, 400 from 12:00.
CarbonSeries step_series(std::size_t n) {
  return make_series(n, hours(1), [](std::size_t i, double, const std::vector<double>&) {
    return i % 24 < 12 ? 150.0 : 400.0;
  });
}

TEST(TreeModels, FitAStepFunctionOfTheTimeOfDay) {
  const CarbonSeries series = step_series(24 * 6);
  for (const std::string name : {"gboost", "adaboost", "forest"}) {
    auto model = make_forecaster(name);
    model->fit(series, 1, 49, 1);
    const auto predicted = model->predict(series, 49, 24 * 6, 1);
    const auto actual = slice(series, 49, 24 * 6);
    if (name == "forest") {
      // Bootstrap samples may miss the hours next to the step, so a few trees put the boundary
      // an hour off; the average stays close.
      EXPECT_LT(mape_percent(predicted, actual), 3.0) << name;
    } else {
      EXPECT_LT(mape_percent(predicted, actual), 0.01) << name;
    }
  }
}

TEST(TreeModels, ATreeCannotExtrapolateBeyondTheFittedRange) {
  // A rising ramp: trees predict at most the largest value seen, unlike a linear model.
  const CarbonSeries series =
      make_series(80, hours(1), [](std::size_t i, double, const std::vector<double>&) {
        return 100.0 + static_cast<double>(i);
      });
  for (const std::string name : {"gboost", "adaboost", "forest"}) {
    auto model = make_forecaster(name);
    model->fit(series, 1, 25, 1);
    for (const double value : model->predict(series, 40, 80, 1)) {
      EXPECT_LE(value, 124.0 + 1e-9) << name;
      EXPECT_GE(value, 101.0 - 1e-9) << name;
    }
  }
  auto linear = make_forecaster("linear");
  linear->fit(series, 1, 25, 1);
  EXPECT_NEAR(linear->predict(series, 79, 80, 1)[0], 179.0, 1e-6);
}

TEST(Svr, TracksASmoothSeries) {
  const CarbonSeries series =
      make_series(24 * 4, hours(1), [](std::size_t, double phase, const std::vector<double>&) {
        return 300 + 40 * std::sin(phase);
      });
  auto model = make_forecaster("svr");
  model->fit(series, 1, 25, 1);
  const auto predicted = model->predict(series, 25, 24 * 4, 1);
  const auto actual = slice(series, 25, 24 * 4);
  // scikit-learn 1.2's SVR(C=100, gamma=1e-4, epsilon=0.1) on these features and points scores
  // 2.1191 %; the same dual problem solved to the same tolerance must agree closely.
  EXPECT_NEAR(mape_percent(predicted, actual), 2.1191, 0.01);
  // It learned something: the flat mean would be far worse.
  const std::vector<double> flat(actual.size(), 300.0);
  EXPECT_LT(mape_percent(predicted, actual), mape_percent(flat, actual) / 3);
}

// A carbon intensity is never negative. A series that declines steadily and then stays at 0 (a
// grid going fully renewable) makes a linear model extrapolate the decline below 0; every model
// make_forecaster returns is clamped to the physical range (forecast.h).
TEST(Forecasters, NeverForecastANegativeIntensityOnADecliningSeries) {
  constexpr std::size_t kPoints = 24 * 8;
  const CarbonSeries series =
      make_series(kPoints, hours(1), [](std::size_t i, double, const std::vector<double>&) {
        return std::max(0.0, 400.0 - 4.0 * static_cast<double>(i));
      });
  constexpr std::size_t kFitEnd = 100;  // the decline only: the last value fitted is 4
  for (const std::string name :
       {"persistence", "seasonal", "linear", "svr", "gboost", "adaboost", "forest"}) {
    SCOPED_TRACE(name);
    auto model = make_forecaster(name);
    const std::size_t begin = std::max<std::size_t>(1, model->history_needed(1));
    ASSERT_LT(begin + 24, kFitEnd);
    model->fit(series, begin, kFitEnd, 1);
    const auto predicted = model->predict(series, kFitEnd, kPoints, 1);
    ASSERT_EQ(predicted.size(), kPoints - kFitEnd);
    for (std::size_t i = 0; i < predicted.size(); ++i) {
      EXPECT_GE(predicted[i], 0.0) << "target " << kFitEnd + i;
      EXPECT_TRUE(std::isfinite(predicted[i])) << "target " << kFitEnd + i;
    }
  }
  // The clamp only touches what is below 0: on the decline itself linear is exact.
  auto linear = make_forecaster("linear");
  linear->fit(series, 1, kFitEnd, 1);
  EXPECT_NEAR(linear->predict(series, 50, 51, 1).front(), series.values()[50], 1e-6);
}

// ---------------------------------------------------------------------------------------------
// Determinism, no look-ahead, misuse.

TEST(Forecasters, SameSeedSameResultOtherSeedOtherForest) {
  const CarbonSeries series = daily_cycle(24 * 5);
  for (const std::string name : {"gboost", "adaboost", "forest", "svr", "linear"}) {
    ForecasterOptions options;
    options.seed = 7;
    auto a = make_forecaster(name, options);
    auto b = make_forecaster(name, options);
    a->fit(series, 1, 25, 1);
    b->fit(series, 1, 25, 1);
    EXPECT_EQ(a->predict(series, 25, 120, 1), b->predict(series, 25, 120, 1)) << name;
    // Refitting the same object gives the same model again.
    a->fit(series, 1, 25, 1);
    EXPECT_EQ(a->predict(series, 25, 120, 1), b->predict(series, 25, 120, 1)) << name;
  }
  for (const std::string name : {"adaboost", "forest"}) {
    ForecasterOptions one, two;
    one.seed = 1;
    two.seed = 2;
    auto a = make_forecaster(name, one);
    auto b = make_forecaster(name, two);
    a->fit(series, 1, 25, 1);
    b->fit(series, 1, 25, 1);
    EXPECT_NE(a->predict(series, 25, 120, 1), b->predict(series, 25, 120, 1)) << name;
  }
}

TEST(Forecasters, NeverReadTheFuture) {
  // Two series equal before index 60 and different from it on. Fitting on [20, 44) and
  // predicting [44, 61) one step ahead may read values up to index 59 only: the predictions must
  // agree. (Target 60 uses value 59; values from 60 on are the future.)
  const CarbonSeries a = daily_cycle(100);
  std::vector<double> changed = a.values();
  for (std::size_t i = 60; i < changed.size(); ++i) changed[i] = changed[i] * 3 + 50;
  const CarbonSeries b(a.times(), changed, a.resolution(), "changed");
  for (const auto& name : kAll) {
    auto model_a = make_forecaster(name);
    auto model_b = make_forecaster(name);
    model_a->fit(a, 20, 44, 1);
    model_b->fit(b, 20, 44, 1);
    EXPECT_EQ(model_a->predict(a, 44, 61, 1), model_b->predict(b, 44, 61, 1)) << name;
    // And a fit's targets stop at its end: changing values from the end on changes nothing.
    model_b->fit(b, 36, 60, 1);
    model_a->fit(a, 36, 60, 1);
    EXPECT_EQ(model_a->predict(a, 60, 61, 1), model_b->predict(b, 60, 61, 1)) << name;
  }
}

TEST(Forecasters, MisuseIsAClearError) {
  const CarbonSeries series = daily_cycle(60);
  for (const auto& name : kAll) {
    auto model = make_forecaster(name);
    EXPECT_THAT(
        error_message([&] { model->predict(series, 30, 40, 1); }, ErrorCode::kInvalidArgument),
        HasSubstr("before fit"))
        << name;
    EXPECT_THAT(error_message([&] { model->fit(series, 10, 70, 1); }, ErrorCode::kInvalidArgument),
                HasSubstr("[10, 70)"))
        << name;
    EXPECT_THAT(error_message([&] { model->fit(series, 20, 20, 1); }, ErrorCode::kInvalidArgument),
                HasSubstr("non-empty"))
        << name;
    EXPECT_THAT(error_message([&] { model->fit(series, 10, 30, 0); }, ErrorCode::kInvalidArgument),
                HasSubstr("horizon is 0"))
        << name;
    model->fit(series, 10, 34, 1);
    EXPECT_THAT(
        error_message([&] { model->predict(series, 40, 50, 2); }, ErrorCode::kInvalidArgument),
        HasSubstr("fitted for horizon 1"))
        << name;
    EXPECT_THAT(
        error_message([&] { model->predict(series, 50, 61, 1); }, ErrorCode::kInvalidArgument),
        HasSubstr("inside"))
        << name;
  }
  for (const std::string name : {"linear", "svr", "gboost", "adaboost", "forest"}) {
    auto model = make_forecaster(name);
    EXPECT_EQ(model->history_needed(3), 3u);
    EXPECT_THAT(error_message([&] { model->fit(series, 2, 30, 3); }, ErrorCode::kInvalidArgument),
                HasSubstr("start at index 3"))
        << name;
  }
}

TEST(Forecasters, RejectAnIrregularSeries) {
  const CarbonSeries regular = daily_cycle(60);
  std::vector<UtcTime> times = regular.times();
  for (std::size_t i = 30; i < times.size(); ++i) times[i] += hours(1);  // a gap after point 29
  const CarbonSeries gappy(times, regular.values(), hours(1), "gappy.csv");
  for (const auto& name : kAll) {
    auto model = make_forecaster(name);
    EXPECT_THAT(error_message([&] { model->fit(gappy, 10, 40, 1); }, ErrorCode::kInvalidArgument),
                AllOf(HasSubstr("not regular"), HasSubstr("gappy.csv"), HasSubstr("resample")))
        << name;
    model->fit(gappy, 1, 25, 1);  // before the gap: fine
    EXPECT_THAT(
        error_message([&] { model->predict(gappy, 28, 40, 1); }, ErrorCode::kInvalidArgument),
        HasSubstr("not regular"))
        << name;
  }
}

TEST(Forecasters, HandleDegenerateFits) {
  // A constant series: every model predicts the constant. One fit point: every model still fits.
  const CarbonSeries flat = make_series(
      60, hours(1), [](std::size_t, double, const std::vector<double>&) { return 250.0; });
  const CarbonSeries varied = daily_cycle(60);
  for (const auto& name : kAll) {
    auto model = make_forecaster(name);
    model->fit(flat, 1, 25, 1);
    for (const double value : model->predict(flat, 30, 40, 1)) {
      EXPECT_NEAR(value, 250.0, name == "svr" ? 0.1 : 1e-9) << name;
    }
    model->fit(varied, 30, 31, 1);
    const auto predicted = model->predict(varied, 31, 40, 1);
    ASSERT_EQ(predicted.size(), 9u) << name;
    for (const double value : predicted) EXPECT_TRUE(std::isfinite(value)) << name;
  }
}

}  // namespace
}  // namespace chase
