// CarbonSignal: intensity now, period averages, the refresh schedule, staleness through provider
// outages, an injected Forecaster, thread-safe reads.
#include "chase/carbon_signal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <sstream>
#include <thread>

#include "carbon/providers/provider_test_util.h"

namespace chase::testing {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A provider whose answers and failures the test sets.
class FakeProvider final : public CarbonProvider {
 public:
  std::string_view name() const noexcept override { return "fake"; }
  CarbonPoint latest() override {
    ++latest_calls;
    std::lock_guard lock(mutex);
    if (failing) throw Error(ErrorCode::kUnavailable, "fake: GET /latest answered HTTP 503");
    if (!latest_point) throw Error(ErrorCode::kUnavailable, "fake: no latest value");
    return *latest_point;
  }
  CarbonSeries history(UtcTime start, UtcTime end) override {
    std::lock_guard lock(mutex);
    if (failing) throw Error(ErrorCode::kUnavailable, "fake: GET /history answered HTTP 503");
    history_asked = {start, end};
    return history_series;
  }
  CarbonSeries forecast(std::chrono::seconds) override {
    ++forecast_calls;
    std::lock_guard lock(mutex);
    if (failing) throw Error(ErrorCode::kUnavailable, "fake: GET /forecast answered HTTP 503");
    return forecast_series;
  }

  std::mutex mutex;
  bool failing = false;
  std::optional<CarbonPoint> latest_point;
  CarbonSeries forecast_series;
  CarbonSeries history_series;
  std::pair<UtcTime, UtcTime> history_asked;
  std::atomic<int> forecast_calls{0};
  std::atomic<int> latest_calls{0};
};

// Half-hour forecast from 12:00: 300, 200, 100, 400, 500.
CarbonSeries half_hours() {
  return CarbonSeries(
      {at("2026-03-01T12:00:00Z"), at("2026-03-01T12:30:00Z"), at("2026-03-01T13:00:00Z"),
       at("2026-03-01T13:30:00Z"), at("2026-03-01T14:00:00Z")},
      {300, 200, 100, 400, 500}, minutes(30), "fake");
}

// Captures what spdlog logs while it lives.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() const { return stream_.str(); }
  std::size_t count(const std::string& what) const {
    const std::string text = stream_.str();
    std::size_t n = 0;
    for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
    return n;
  }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::logger> previous_;
};

class CarbonSignalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    provider_->forecast_series = half_hours();
    provider_->latest_point = CarbonPoint{at("2026-03-01T12:00:00Z"), 310, minutes(30), false};
  }
  CarbonSignalOptions options() {
    CarbonSignalOptions o;
    o.clock = clock_;
    o.horizon = hours(3);
    o.refresh_interval = minutes(15);
    return o;
  }
  void advance(std::chrono::seconds dt) { clock_->advance(std::chrono::nanoseconds(dt)); }

  std::shared_ptr<FakeProvider> provider_ = std::make_shared<FakeProvider>();
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(fixture_now());
};

TEST_F(CarbonSignalTest, WithoutDataItSaysSoClearly) {
  CarbonSignal signal(provider_, options());
  EXPECT_THAT(error_message([&] { signal.intensity_now(); }, ErrorCode::kUnavailable),
              HasSubstr("No carbon-intensity data yet"));
  EXPECT_FALSE(signal.status().has_data);
  provider_->failing = true;
  LogCapture log;
  EXPECT_FALSE(signal.refresh());
  const auto message = error_message([&] { signal.forecast(4); }, ErrorCode::kUnavailable);
  EXPECT_THAT(message, HasSubstr("No carbon-intensity data yet"));
  EXPECT_THAT(message, HasSubstr("HTTP 503"));
  EXPECT_THAT(log.text(), HasSubstr("no forecast yet"));
}

TEST_F(CarbonSignalTest, IntensityNowAndHalfHourPeriods) {
  CarbonSignal signal(provider_, options());
  EXPECT_TRUE(signal.refresh());
  EXPECT_DOUBLE_EQ(signal.intensity_now(), 300);  // 12:20 is in the 12:00 interval
  const auto periods = signal.forecast(3);
  ASSERT_EQ(periods.size(), 3U);
  EXPECT_EQ(periods[0].start, at("2026-03-01T12:00:00Z"));
  EXPECT_EQ(periods[0].length, minutes(30));
  EXPECT_DOUBLE_EQ(periods[0].g_per_kwh, 300);
  EXPECT_DOUBLE_EQ(periods[1].g_per_kwh, 200);
  EXPECT_DOUBLE_EQ(periods[2].g_per_kwh, 100);
  EXPECT_FALSE(signal.status().stale);
  EXPECT_EQ(signal.status().forecast_source, "provider");
}

TEST_F(CarbonSignalTest, LongerPeriodsAverageTheSeriesAndStopWhereItEnds) {
  CarbonSignal signal(provider_, options());
  signal.refresh();
  const auto periods = signal.forecast(5, hours(1));
  std::vector<double> values;
  for (const auto& p : periods) values.push_back(p.g_per_kwh);
  // 12-13: (300+200)/2, 13-14: (100+400)/2, 14-15: only 14:00-14:30 is covered.
  EXPECT_THAT(values, ElementsAre(250, 250, 500));
}

TEST_F(CarbonSignalTest, NowOutsideTheForecastFallsBackToLatest) {
  provider_->forecast_series = CarbonSeries({at("2026-03-01T13:00:00Z")}, {100}, minutes(30));
  CarbonSignal signal(provider_, options());
  signal.refresh();
  EXPECT_DOUBLE_EQ(signal.intensity_now(), 310);
}

TEST_F(CarbonSignalTest, AnOutageKeepsTheLastGoodForecastAndSaysItIsStale) {
  CarbonSignal signal(provider_, options());
  ASSERT_TRUE(signal.refresh());
  provider_->failing = true;
  LogCapture log;
  advance(minutes(20));
  EXPECT_FALSE(signal.refresh());
  advance(minutes(20));
  EXPECT_FALSE(signal.refresh());
  const auto status = signal.status();
  EXPECT_TRUE(status.has_data);
  EXPECT_TRUE(status.stale);
  EXPECT_THAT(status.stale_reason, HasSubstr("HTTP 503"));
  EXPECT_EQ(status.age, minutes(40));
  EXPECT_EQ(status.refreshed_at, fixture_now());
  // Still served: 13:00 is now, in the 13:00 interval of the old forecast.
  EXPECT_DOUBLE_EQ(signal.intensity_now(), 100);
  EXPECT_EQ(signal.forecast(2).size(), 2U);
  // One warning for the whole outage.
  EXPECT_EQ(log.count("stale"), 1U) << log.text();
  EXPECT_THAT(log.text(), HasSubstr("20 min ago"));

  provider_->failing = false;
  EXPECT_TRUE(signal.refresh());
  EXPECT_FALSE(signal.status().stale);
  EXPECT_TRUE(signal.status().stale_reason.empty());
  EXPECT_EQ(signal.status().age, std::chrono::seconds(0));
  provider_->failing = true;
  EXPECT_FALSE(signal.refresh());
  EXPECT_EQ(log.count("stale"), 2U) << "a new outage warns again";
}

TEST_F(CarbonSignalTest, RefreshIfDueFollowsTheClock) {
  CarbonSignal signal(provider_, options());
  EXPECT_TRUE(signal.refresh_if_due());
  EXPECT_FALSE(signal.refresh_if_due());
  advance(minutes(14));
  EXPECT_FALSE(signal.refresh_if_due());
  advance(minutes(1));
  EXPECT_TRUE(signal.refresh_if_due());
  EXPECT_EQ(provider_->forecast_calls.load(), 2);
}

TEST_F(CarbonSignalTest, ABackgroundThreadRefreshesAndReadsAreThreadSafe) {
  CarbonSignal signal(provider_, options());
  signal.start(std::chrono::milliseconds(1));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!signal.status().has_data && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(signal.status().has_data);
  std::atomic<bool> wrong{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (signal.intensity_now() != 300 || signal.forecast(3).size() != 3) wrong = true;
        signal.refresh();
      }
    });
  }
  for (auto& reader : readers) reader.join();
  signal.stop();
  EXPECT_FALSE(wrong);
  EXPECT_GE(provider_->forecast_calls.load(), 800);
}

// A forecaster double: predicts the value `horizon` steps back, plus one.
class ShiftForecaster final : public Forecaster {
 public:
  std::string_view name() const noexcept override { return "shift"; }
  std::size_t history_needed(std::size_t horizon) const override { return horizon; }
  void fit(const CarbonSeries& series, std::size_t begin, std::size_t end,
           std::size_t horizon) override {
    fitted = {begin, end, horizon};
    fitted_size = series.size();
    ++fits;
  }
  std::vector<double> predict(const CarbonSeries& series, std::size_t first, std::size_t last,
                              std::size_t horizon) const override {
    std::vector<double> out;
    for (std::size_t t = first; t < last; ++t) out.push_back(series.values()[t - horizon] + 1);
    return out;
  }
  std::tuple<std::size_t, std::size_t, std::size_t> fitted{};
  std::size_t fitted_size = 0;
  int fits = 0;
};

TEST_F(CarbonSignalTest, AnInjectedForecasterPredictsFromRegularisedHistory) {
  // Hourly history 06:00 .. 12:00 with a gap at 09:00 (filled with 08:00's value).
  provider_->history_series = CarbonSeries(
      {at("2026-03-01T06:00:00Z"), at("2026-03-01T07:00:00Z"), at("2026-03-01T08:00:00Z"),
       at("2026-03-01T10:00:00Z"), at("2026-03-01T11:00:00Z"), at("2026-03-01T12:00:00Z")},
      {10, 20, 30, 50, 60, 70}, hours(1));
  auto forecaster = std::make_shared<ShiftForecaster>();
  auto o = options();
  o.forecaster = forecaster;
  o.history_window = hours(6);
  CarbonSignal signal(provider_, o);
  ASSERT_TRUE(signal.refresh());
  EXPECT_EQ(provider_->history_asked.first, at("2026-03-01T06:20:00Z"));
  EXPECT_EQ(provider_->history_asked.second, fixture_now());
  // 7 regular points + 3 future steps (3 h horizon); fit on targets [3, 7) with horizon 3.
  EXPECT_EQ(forecaster->fitted, std::make_tuple(std::size_t{3}, std::size_t{7}, std::size_t{3}));
  EXPECT_EQ(forecaster->fitted_size, 10U);
  const auto series = signal.forecast_series();
  EXPECT_THAT(series.values(), ElementsAre(10, 20, 30, 30, 50, 60, 70, 51, 61, 71));
  EXPECT_EQ(series.times().back(), at("2026-03-01T15:00:00Z"));
  EXPECT_DOUBLE_EQ(signal.intensity_now(), 70);
  EXPECT_EQ(signal.status().forecast_source, "shift");
  const auto periods = signal.forecast(3, hours(1));
  ASSERT_EQ(periods.size(), 3U);
  EXPECT_DOUBLE_EQ(periods[1].g_per_kwh, 51);
}

// Hourly data refreshed every 15 min: three refreshes in four see the same history, and reuse the
// forecast made from it instead of fitting again; a changed value is a new fit.
TEST_F(CarbonSignalTest, UnchangedHistoryReusesTheForecastAChangedOneRefits) {
  provider_->history_series = CarbonSeries({at("2026-03-01T09:00:00Z"), at("2026-03-01T10:00:00Z"),
                                            at("2026-03-01T11:00:00Z"), at("2026-03-01T12:00:00Z")},
                                           {10, 20, 30, 40}, hours(1));
  auto forecaster = std::make_shared<ShiftForecaster>();
  auto o = options();
  o.forecaster = forecaster;
  o.horizon = hours(2);
  CarbonSignal signal(provider_, o);
  ASSERT_TRUE(signal.refresh());
  ASSERT_TRUE(signal.refresh());
  EXPECT_EQ(forecaster->fits, 1);
  EXPECT_THAT(signal.forecast_series().values(), ElementsAre(10, 20, 30, 40, 31, 41));
  provider_->history_series = CarbonSeries({at("2026-03-01T09:00:00Z"), at("2026-03-01T10:00:00Z"),
                                            at("2026-03-01T11:00:00Z"), at("2026-03-01T12:00:00Z")},
                                           {10, 20, 35, 40}, hours(1));  // a revised value
  ASSERT_TRUE(signal.refresh());
  EXPECT_EQ(forecaster->fits, 2);
  EXPECT_THAT(signal.forecast_series().values(), ElementsAre(10, 20, 35, 40, 36, 41));
}

TEST_F(CarbonSignalTest, TooLittleHistoryForTheForecasterIsStaleNotACrash) {
  provider_->history_series = CarbonSeries({at("2026-03-01T12:00:00Z")}, {70}, hours(1));
  auto o = options();
  o.forecaster = std::make_shared<ShiftForecaster>();
  CarbonSignal signal(provider_, o);
  EXPECT_FALSE(signal.refresh());
  EXPECT_THAT(signal.status().stale_reason, HasSubstr("Lengthen the history window"));
}

TEST_F(CarbonSignalTest, WorksOverARealProvider) {
  CarbonProviderOptions po;
  po.file = fixture_path("file", "replay.csv");
  po.clock = clock_;
  CarbonSignal signal(make_carbon_provider("file", po), options());
  ASSERT_TRUE(signal.refresh());
  EXPECT_DOUBLE_EQ(signal.intensity_now(), 240);
  const auto periods = signal.forecast(3);
  ASSERT_EQ(periods.size(), 3U);
  EXPECT_DOUBLE_EQ(periods[2].g_per_kwh, 260);
}

}  // namespace
}  // namespace chase::testing
