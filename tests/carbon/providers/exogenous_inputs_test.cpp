// Exogenous inputs published ahead (day-ahead weather and generation forecasts): the file
// provider serves them with its history and up to its publication lead past now, never further;
// CarbonSignal forecasts the hours they cover with them, and what lies past the lead cannot
// change the forecast.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <numbers>

#include "carbon/providers/provider_test_util.h"
#include "chase/carbon_signal.h"
#include "chase/forecast.h"

namespace chase::testing {
namespace {

using std::chrono::hours;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Hourly rows from 2026-03-01T00:00Z: the intensity, a day-ahead column and a realised one.
std::filesystem::path write_hourly_csv(const TempDir& dir, int rows) {
  const auto path = dir.path() / "dacf-like.csv";
  std::ofstream out(path);
  out << "UTC time,carbon_intensity,avg_wind_production_forecast,coal\n";
  for (int i = 0; i < rows; ++i) {
    out << fmt::format("2026-03-{:02d} {:02d}:00:00,{},{},{}\n", 1 + i / 24, i % 24, 100 + i,
                       1000 + i, 5000 + i);
  }
  return path;
}

class ExogenousFileProviderTest : public ::testing::Test {
 protected:
  std::unique_ptr<CarbonProvider> provider(bool exogenous, ExogenousPublication publication = {}) {
    CarbonProviderOptions o;
    o.file = write_hourly_csv(dir_, 72);
    o.file_columns.exogenous = exogenous;
    o.exogenous_publication = publication;
    o.clock = clock_;
    return make_carbon_provider("file", o);
  }

  TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(fixture_now());  // 12:20
};

TEST_F(ExogenousFileProviderTest, HistoryCarriesTheDayAheadColumnsNeverTheRealisedOnes) {
  const auto history = provider(true)->history(at("2026-03-01T10:00:00Z"), fixture_now());
  EXPECT_THAT(history.values(), ElementsAre(110, 111, 112));
  ASSERT_EQ(history.exogenous().size(), 1U);
  EXPECT_EQ(history.exogenous()[0].name, "avg_wind_production_forecast");
  EXPECT_THAT(history.exogenous()[0].values, ElementsAre(1010, 1011, 1012));
}

TEST_F(ExogenousFileProviderTest, InputsAheadStopAtThePublicationLead) {
  auto p = provider(true);
  // Now 12:20: published up to 12:20 the next day, so the points 13:00 .. 12:00 (+1 day).
  const auto ahead = p->inputs_ahead(hours(48));
  ASSERT_EQ(ahead.times.size(), 24U);
  EXPECT_EQ(ahead.times.front(), at("2026-03-01T13:00:00Z"));
  EXPECT_EQ(ahead.times.back(), at("2026-03-02T12:00:00Z"));
  ASSERT_EQ(ahead.columns.size(), 1U);
  EXPECT_EQ(ahead.columns[0].name, "avg_wind_production_forecast");
  EXPECT_DOUBLE_EQ(ahead.columns[0].values.front(), 1013);
  EXPECT_DOUBLE_EQ(ahead.columns[0].values.back(), 1036);
  // A shorter horizon asks for less; the perfect forecast of a replay never carries the inputs.
  EXPECT_EQ(p->inputs_ahead(hours(3)).times.size(), 3U);
  EXPECT_TRUE(p->forecast(hours(3)).exogenous().empty());
  // The lead moves with the clock and ends with the file.
  clock_->advance(std::chrono::nanoseconds(std::chrono::hours(48)));
  EXPECT_EQ(p->inputs_ahead(hours(48)).times.size(), 11U);  // 13:00 .. 23:00 on the last day
}

TEST_F(ExogenousFileProviderTest, AShorterLeadOrNoColumnsServeLess) {
  EXPECT_EQ(provider(true, {hours(6), std::nullopt})->inputs_ahead(hours(48)).times.size(), 6U);
  EXPECT_TRUE(provider(false)->inputs_ahead(hours(48)).empty());
  EXPECT_TRUE(
      provider(false)->history(at("2026-03-01T10:00:00Z"), fixture_now()).exogenous().empty());
}

// A day-ahead market's forecast: published once a day (here at 12:00 UTC) for the whole next UTC
// day, so what is out reaches 36 h ahead just after publication and 12 h just before it.
TEST(ExogenousPublicationTest, ADailyPublicationCoversUpToTheEndOfTheNextDay) {
  ExogenousPublication daily;
  daily.daily_at = hours(12);
  EXPECT_EQ(daily.published_until(at("2026-03-01T12:00:00Z")), at("2026-03-03T00:00:00Z"));
  EXPECT_EQ(daily.published_until(at("2026-03-01T23:59:00Z")), at("2026-03-03T00:00:00Z"));
  EXPECT_EQ(daily.published_until(at("2026-03-02T11:59:00Z")), at("2026-03-03T00:00:00Z"));
  EXPECT_EQ(daily.published_until(at("2026-03-02T12:00:00Z")), at("2026-03-04T00:00:00Z"));
  EXPECT_EQ(daily.describe(), "published daily at 12:00 UTC for the next day");
  const ExogenousPublication rolling;  // the default: rolling, a day ahead
  EXPECT_EQ(rolling.published_until(at("2026-03-01T12:20:00Z")), at("2026-03-02T12:20:00Z"));
  EXPECT_EQ(rolling.describe(), "read up to 24 h ahead");
}

TEST_F(ExogenousFileProviderTest, ADailyPublicationServesWhatIsOut) {
  auto p = provider(true, {hours(24), hours(12)});
  // 12:20 on day 1, published at 12:00 up to the end of day 2: 13:00 (day 1) .. 23:00 (day 2).
  EXPECT_EQ(p->inputs_ahead(hours(72)).times.size(), 35U);
  clock_->advance(std::chrono::nanoseconds(hours(23)));  // 11:20 on day 2: still day 1's
  EXPECT_EQ(p->inputs_ahead(hours(72)).times.size(), 12U);
  clock_->advance(std::chrono::nanoseconds(hours(1)));  // 12:20 on day 2: day 3 is out too
  EXPECT_EQ(p->inputs_ahead(hours(72)).times.size(), 35U);
}

TEST(ExogenousProviderOptions, TheConfigFileSetsTheColumnsAndTheLead) {
  TempDir dir;
  const auto path = dir.path() / "providers.json";
  std::ofstream(path) << R"({"file": {"file": "x.csv", "exogenous": true,
                                      "exogenous_lead_hours": 12}})";
  const auto options = load_carbon_provider_options(
      "file", path, [](const std::string&) { return std::optional<std::string>(); });
  EXPECT_TRUE(options.file_columns.exogenous);
  EXPECT_EQ(options.exogenous_publication.lead, hours(12));
  EXPECT_FALSE(options.exogenous_publication.daily_at);
  std::ofstream(path) << R"({"file": {"exogenous": true, "exogenous_published_at": "13:30"}})";
  EXPECT_EQ(load_carbon_provider_options("file", path, {}).exogenous_publication.daily_at,
            std::chrono::minutes(13 * 60 + 30));
  for (const char* bad :
       {R"({"file": {"exogenous": "yes"}})", R"({"file": {"exogenous_lead_hours": 0}})",
        R"({"file": {"exogenous_lead_hours": 1000}})",
        R"({"file": {"exogenous_published_at": "25:00"}})",
        R"({"file": {"exogenous_published_at": 12}})"}) {
    std::ofstream(path) << bad;
    EXPECT_THAT(
        error_message([&] { load_carbon_provider_options("file", path, {}); }, ErrorCode::kParse),
        HasSubstr("exogenous"))
        << bad;
  }
}

// A grid whose intensity is a day-ahead column's linear image plus a daily cycle: knowing the
// column is knowing the intensity; the history alone cannot tell what it will be.
constexpr int kDays = 150;

double wind_at(int i) {
  // A deterministic but unpredictable-from-the-past sequence (an LCG's high bits).
  std::uint64_t state = 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(i + 1);
  state ^= state >> 29;
  state *= 0xBF58476D1CE4E5B9ULL;
  state ^= state >> 32;
  return static_cast<double>(state % 1000) / 1000.0;
}

CarbonSeries windy_grid(bool scramble_after = false, UtcTime after = {}) {
  std::vector<UtcTime> times;
  std::vector<double> values, wind;
  const UtcTime start = at("2026-01-01T00:00:00Z");
  for (int i = 0; i < kDays * 24; ++i) {
    times.push_back(start + hours(i));
    const double w = wind_at(i);
    values.push_back(300 - 200 * w + 20 * std::sin(2 * std::numbers::pi * (i % 24) / 24.0));
    wind.push_back(scramble_after && times.back() >= after ? wind_at(i + 7919) : w);
  }
  return CarbonSeries(std::move(times), std::move(values), hours(1), "windy",
                      {{"avg_wind_production_forecast", std::move(wind)}});
}

struct SignalRun {
  CarbonSeries forecast;
  CarbonSignalStatus status;
};

SignalRun forecast_windy(const CarbonSeries& grid, UtcTime now, bool use_exogenous) {
  auto clock = std::make_shared<ManualClock>(now);
  CarbonSignalOptions options;
  options.clock = clock;
  options.horizon = hours(48);
  options.history_window = hours(140 * 24);
  ForecasterOptions forecaster;
  forecaster.use_exogenous = use_exogenous;
  options.forecaster = make_forecaster("auto", forecaster);
  CarbonSignal signal(make_replay_provider(grid, clock, "windy"), options);
  EXPECT_TRUE(signal.refresh()) << signal.status().stale_reason;
  return {signal.forecast_series(), signal.status()};
}

// Mean absolute percentage error of the forecast over [from, from + count h) against the grid.
double mape_over(const CarbonSeries& forecast, const CarbonSeries& grid, UtcTime from, int count) {
  double sum = 0;
  for (int k = 0; k < count; ++k) {
    const UtcTime t = from + hours(k);
    sum += std::abs(forecast.value_at(t) - grid.value_at(t)) / grid.value_at(t);
  }
  return 100 * sum / count;
}

TEST(CarbonSignalExogenous, TheHoursWithPublishedInputsAreForecastWithThem) {
  const auto grid = windy_grid();
  const UtcTime now = at("2026-05-20T12:00:00Z");
  const auto with = forecast_windy(grid, now, true);
  EXPECT_EQ(with.status.inputs_ahead, hours(24));
  const auto without = forecast_windy(grid, now, false);
  // Without the inputs the model is the same shorter-horizon fit on the history alone.
  const double near_with = mape_over(with.forecast, grid, now, 24);
  const double near_without = mape_over(without.forecast, grid, now, 24);
  EXPECT_LT(near_with, 2.0);
  EXPECT_GT(near_without, 5 * near_with);
  // Past the lead the inputs are not published: both forecasts are the history-only one.
  for (int k = 24; k < 48; ++k) {
    EXPECT_DOUBLE_EQ(with.forecast.value_at(now + hours(k)),
                     without.forecast.value_at(now + hours(k)))
        << k;
  }
}

TEST(CarbonSignalExogenous, InputsBeyondTheLeadCannotChangeTheForecast) {
  const UtcTime now = at("2026-05-20T12:00:00Z");
  const auto honest = forecast_windy(windy_grid(), now, true);
  // The same grid, its day-ahead column rewritten from now + 24 h on: unpublished at `now`.
  const auto rewritten = forecast_windy(windy_grid(true, now + hours(24)), now, true);
  EXPECT_EQ(honest.forecast.values(), rewritten.forecast.values());
  // Rewritten from now + 23 h, the last published hour differs: the test can see a leak.
  const auto inside = forecast_windy(windy_grid(true, now + hours(23)), now, true);
  EXPECT_NE(honest.forecast.values(), inside.forecast.values());
}

// A forecaster double counting its fits: predicts the value `horizon` steps back plus a constant
// fixed at fit time (so a prediction shows which fit and which data made it).
class CountingForecaster final : public Forecaster {
 public:
  std::string_view name() const noexcept override { return "counting"; }
  std::size_t history_needed(std::size_t horizon) const override { return horizon; }
  void fit(const CarbonSeries&, std::size_t, std::size_t, std::size_t horizon) override {
    ++fits;
    offset = 1000.0 * fits;
    horizon_ = horizon;
  }
  std::vector<double> predict(const CarbonSeries& series, std::size_t first, std::size_t last,
                              std::size_t horizon) const override {
    EXPECT_EQ(horizon, horizon_);
    std::vector<double> out;
    for (std::size_t t = first; t < last; ++t) out.push_back(series.values()[t - horizon] + offset);
    return out;
  }
  int fits = 0;
  double offset = 0;

 private:
  std::size_t horizon_ = 0;
};

// With a separate inputs model, the hours with published inputs are predicted from the newest
// data every hour, but the model behind them is refitted only every `inputs_refit_interval`.
// A 48 h signal over ten days of history, with a history-only and an inputs model.
CarbonSignalOptions two_model_options(std::shared_ptr<ManualClock> clock,
                                      std::shared_ptr<Forecaster> history_model,
                                      std::shared_ptr<Forecaster> inputs_model,
                                      std::chrono::hours refit_interval) {
  CarbonSignalOptions options;
  options.clock = std::move(clock);
  options.horizon = hours(48);
  options.history_window = hours(10 * 24);
  options.forecaster = std::move(history_model);
  options.inputs_forecaster = std::move(inputs_model);
  options.inputs_refit_interval = refit_interval;
  return options;
}

TEST(CarbonSignalExogenous, TheInputsModelIsRefittedOnlyEveryRefitInterval) {
  const auto grid = windy_grid();
  auto clock = std::make_shared<ManualClock>(at("2026-05-20T12:00:00Z"));
  auto history_model = std::make_shared<CountingForecaster>();
  auto inputs_model = std::make_shared<CountingForecaster>();
  const auto options = two_model_options(clock, history_model, inputs_model, hours(3));
  CarbonSignal signal(make_replay_provider(grid, clock, "windy"), options);
  for (int hour = 0; hour < 7; ++hour) {
    ASSERT_TRUE(signal.refresh()) << signal.status().stale_reason;
    const UtcTime now = clock->utc_now();
    // The first published hour is `now`, predicted from the value 24 h before it.
    EXPECT_DOUBLE_EQ(signal.forecast_series().value_at(now),
                     grid.value_at(now - hours(24)) + inputs_model->offset)
        << hour;
    clock->advance(std::chrono::nanoseconds(hours(1)));
  }
  EXPECT_EQ(history_model->fits, 7) << "the history-only model: every new hour";
  EXPECT_EQ(inputs_model->fits, 3) << "the inputs model: at hours 0, 3 and 6";
}

// A daily publication reaches less far each hour, then jumps: the inputs model fitted for the
// longer reach serves the shorter ones, and is refitted when the reach grows past its horizon.
TEST(CarbonSignalExogenous, ADailyPublicationRefitsTheInputsModelWhenItsReachGrows) {
  const auto grid = windy_grid();
  auto clock = std::make_shared<ManualClock>(at("2026-05-20T18:00:00Z"));
  auto inputs_model = std::make_shared<CountingForecaster>();
  const auto options =
      two_model_options(clock, std::make_shared<CountingForecaster>(), inputs_model, hours(100));
  ExogenousPublication daily;
  daily.daily_at = hours(12);
  CarbonSignal signal(make_replay_provider(grid, clock, "windy", daily), options);
  for (int hour = 0; hour <= 18; ++hour) {  // 18:00 on the 20th to 12:00 on the 21st
    ASSERT_TRUE(signal.refresh()) << signal.status().stale_reason;
    const UtcTime now = clock->utc_now();
    const UtcTime until = at(hour < 18 ? "2026-05-22T00:00:00Z" : "2026-05-23T00:00:00Z");
    EXPECT_EQ(signal.status().inputs_ahead,
              std::chrono::duration_cast<std::chrono::seconds>(until - now));
    // Predicted from the value as far back as the horizon of the model's last fit.
    const auto fitted = hour < 18 ? hours(30) : hours(36);
    EXPECT_DOUBLE_EQ(signal.forecast_series().value_at(now),
                     grid.value_at(now - fitted) + inputs_model->offset)
        << hour;
    clock->advance(std::chrono::nanoseconds(hours(1)));
  }
  EXPECT_EQ(inputs_model->fits, 2) << "at 18:00 (reach 30 h) and at 12:00 (reach 36 h)";
}

// A provider whose published inputs do not fit its history (renamed columns, or starting an hour
// late): the signal leaves them out and forecasts every point from the history alone.
class MisfitInputsProvider final : public CarbonProvider {
 public:
  MisfitInputsProvider(std::unique_ptr<CarbonProvider> replay, bool rename)
      : replay_(std::move(replay)), rename_(rename) {}
  std::string_view name() const noexcept override { return "misfit"; }
  CarbonPoint latest() override { return replay_->latest(); }
  CarbonSeries history(UtcTime start, UtcTime end) override { return replay_->history(start, end); }
  CarbonSeries forecast(std::chrono::seconds horizon) override {
    return replay_->forecast(horizon);
  }
  ExogenousAhead inputs_ahead(std::chrono::seconds horizon) override {
    auto ahead = replay_->inputs_ahead(horizon);
    if (rename_) {
      for (auto& column : ahead.columns) column.name += "_renamed";
    } else {
      ahead.times.erase(ahead.times.begin());
      for (auto& column : ahead.columns) column.values.erase(column.values.begin());
    }
    return ahead;
  }

 private:
  std::unique_ptr<CarbonProvider> replay_;
  bool rename_;
};

TEST(CarbonSignalExogenous, InputsThatDoNotFitTheHistoryAreLeftOut) {
  const auto grid = windy_grid();
  for (const bool rename : {true, false}) {
    SCOPED_TRACE(rename ? "renamed columns" : "an hour late");
    auto clock = std::make_shared<ManualClock>(at("2026-05-20T12:00:00Z"));
    auto inputs_model = std::make_shared<CountingForecaster>();
    auto history_model = std::make_shared<CountingForecaster>();
    CarbonSignal signal(
        std::make_shared<MisfitInputsProvider>(make_replay_provider(grid, clock, "windy"), rename),
        two_model_options(clock, history_model, inputs_model, hours(6)));
    ASSERT_TRUE(signal.refresh()) << signal.status().stale_reason;
    EXPECT_EQ(signal.status().inputs_ahead, std::chrono::seconds(0));
    EXPECT_EQ(inputs_model->fits, 0);
    EXPECT_EQ(history_model->fits, 1);
  }
}

// A publication that could not happen is refused where it is given, naming the data.
TEST(ExogenousPublicationTest, ANegativeLeadOrATimeOutsideADayIsRefused) {
  const auto grid = windy_grid();
  ExogenousPublication negative;
  negative.lead = -hours(1);
  EXPECT_THAT(error_message([&] { make_replay_provider(grid, nullptr, "windy", negative); },
                            ErrorCode::kInvalidArgument),
              AllOf(HasSubstr("windy"), HasSubstr("must not be negative")));
  ExogenousPublication late;
  late.daily_at = hours(24);
  EXPECT_THAT(error_message([&] { make_replay_provider(grid, nullptr, "windy", late); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("within a day"));
  EXPECT_NO_THROW(ExogenousPublication{}.validate("default"));
}

}  // namespace
}  // namespace chase::testing
