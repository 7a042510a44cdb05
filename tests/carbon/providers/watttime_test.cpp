// WattTime v3 against recorded responses: login and token reuse, re-login on 401/403, unit
// conversion, every endpoint, nulls, empty and unordered lists, wrong units.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "carbon/providers/provider_test_util.h"

namespace chase::testing {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pointwise;

constexpr const char* kProvider = "watttime";
constexpr double kLbsToG = 0.45359237;

class WattTimeTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.route("/login", ok(kProvider, "login.json")); }
  CarbonProviderOptions options() { return test_options(kProvider, server_, clock_, sleeps_); }
  std::unique_ptr<CarbonProvider> provider() { return make_carbon_provider(kProvider, options()); }
  void advance(std::chrono::seconds dt) { clock_->advance(std::chrono::nanoseconds(dt)); }

  ReplayServer server_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(fixture_now());
  SleepRecorder sleeps_;
};

std::vector<double> converted(std::vector<double> lbs) {
  for (double& v : lbs) v *= kLbsToG;
  return lbs;
}

TEST_F(WattTimeTest, LogsInWithBasicAuthAndSendsTheBearerToken) {
  server_.route("/v3/forecast", ok(kProvider, "forecast.json"));
  const auto series = provider()->forecast(hours(1));
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(requests[0].path, "/login");
  // "wt-user:wt-secret-pass-93b2" in base64.
  EXPECT_EQ(requests[0].header("authorization"), "Basic d3QtdXNlcjp3dC1zZWNyZXQtcGFzcy05M2Iy");
  EXPECT_EQ(requests[1].header("authorization"), "Bearer token-one");
  EXPECT_EQ(requests[1].param("region"), "CAISO_NORTH");
  EXPECT_EQ(requests[1].param("signal_type"), "co2_moer");
  EXPECT_EQ(requests[1].param("horizon_hours"), "1");
}

TEST_F(WattTimeTest, ForecastIsConvertedFromLbsPerMwhToGramsPerKwh) {
  server_.route("/v3/forecast", ok(kProvider, "forecast.json"));
  const auto series = provider()->forecast(hours(1));
  EXPECT_EQ(series.resolution(), minutes(5));
  EXPECT_EQ(series.start(), at("2026-03-01T12:20:00Z"));
  ASSERT_EQ(series.size(), 12U);  // 12:20 .. 13:15
  EXPECT_NEAR(series.values()[0], 1000 * kLbsToG, 1e-9);
  EXPECT_NEAR(series.values()[11], (1000 - 2 * 55) * kLbsToG, 1e-9);
}

TEST_F(WattTimeTest, TheTokenIsReusedForThirtyMinutes) {
  server_.route("/v3/forecast", ok(kProvider, "forecast.json"));
  auto p = provider();
  p->forecast(hours(1));
  advance(minutes(20));
  p->forecast(hours(1));
  EXPECT_EQ(server_.count("/login"), 1U);
  advance(minutes(11));  // 31 min after the login
  p->forecast(hours(1));
  EXPECT_EQ(server_.count("/login"), 2U);
}

TEST_F(WattTimeTest, A401LogsInAgainOnceAndSucceeds) {
  server_.route("/login", {ok(kProvider, "login.json"), ok(kProvider, "login_second.json")});
  server_.route("/v3/forecast", {status(401), ok(kProvider, "forecast.json")});
  const auto series = provider()->forecast(hours(1));
  EXPECT_EQ(series.size(), 12U);
  EXPECT_EQ(server_.count("/login"), 2U);
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 4U);
  EXPECT_EQ(requests[1].header("authorization"), "Bearer token-one");
  EXPECT_EQ(requests[3].header("authorization"), "Bearer token-two");
  EXPECT_TRUE(sleeps_.waits().empty());
}

TEST_F(WattTimeTest, A403AlsoLogsInAgain) {
  server_.route("/v3/forecast", {status(403), ok(kProvider, "forecast.json")});
  EXPECT_EQ(provider()->forecast(hours(1)).size(), 12U);
  EXPECT_EQ(server_.count("/login"), 2U);
}

TEST_F(WattTimeTest, ARefusedLoginNamesTheSettingsNotThePassword) {
  server_.route("/login", status(401, {}, R"({"error":"invalid credentials"})"));
  server_.route("/v3/forecast", ok(kProvider, "forecast.json"));
  auto p = provider();
  const auto message = error_message([&] { p->forecast(hours(1)); }, ErrorCode::kPermissionDenied);
  EXPECT_THAT(message, HasSubstr("login"));
  EXPECT_THAT(message, HasSubstr("WATTTIME_PASSWORD"));
  EXPECT_EQ(server_.count("/v3/forecast"), 0U);
}

TEST_F(WattTimeTest, HistoryAsksWithExplicitTimeZones) {
  server_.route("/v3/historical", ok(kProvider, "historical.json"));
  const auto series = provider()->history(at("2026-03-01T11:30:00Z"), at("2026-03-01T12:00:00Z"));
  EXPECT_THAT(series.values(),
              Pointwise(DoubleNear(1e-9), converted({830, 835, 840, 845, 850, 855})));
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(requests[1].param("start"), "2026-03-01T11:30:00Z");
  EXPECT_EQ(requests[1].param("end"), "2026-03-01T12:00:00Z");
  EXPECT_EQ(requests[1].param("signal_type"), "co2_moer");
}

TEST_F(WattTimeTest, HistoryOverThirtyDaysIsSplit) {
  server_.route("/v3/historical", ok(kProvider, "historical_empty.json"));
  provider()->history(at("2026-01-01T00:00:00Z"), at("2026-02-15T00:00:00Z"));
  EXPECT_EQ(server_.count("/v3/historical"), 2U);
}

TEST_F(WattTimeTest, LatestIsTheLastHistoricalPoint) {
  server_.route("/v3/historical", ok(kProvider, "historical.json"));
  const auto point = provider()->latest();
  EXPECT_EQ(point.time, at("2026-03-01T12:15:00Z"));
  EXPECT_NEAR(point.g_per_kwh, 875 * kLbsToG, 1e-9);
  EXPECT_EQ(point.resolution, minutes(5));
}

TEST_F(WattTimeTest, NullValuesAreDroppedAndReported) {
  server_.route("/v3/historical", ok(kProvider, "historical_null.json"));
  auto p = provider();
  const auto series = p->history(at("2026-03-01T11:00:00Z"), at("2026-03-01T12:00:00Z"));
  EXPECT_THAT(series.values(), Pointwise(DoubleNear(1e-9), converted({800, 900})));
  EXPECT_EQ(p->last_notes().nulls_dropped, 1U);
}

TEST_F(WattTimeTest, EmptyDataIsAnEmptySeriesAndNoLatest) {
  server_.route("/v3/historical", ok(kProvider, "historical_empty.json"));
  auto p = provider();
  EXPECT_TRUE(p->history(at("2026-03-01T11:00:00Z"), at("2026-03-01T12:00:00Z")).empty());
  EXPECT_THAT(error_message([&] { p->latest(); }, ErrorCode::kUnavailable), HasSubstr("no value"));
}

TEST_F(WattTimeTest, UnorderedAndDuplicatedPointsAreRepaired) {
  server_.route("/v3/historical", ok(kProvider, "historical_unordered.json"));
  auto p = provider();
  const auto series = p->history(at("2026-03-01T11:00:00Z"), at("2026-03-01T12:00:00Z"));
  EXPECT_THAT(series.values(), Pointwise(DoubleNear(1e-9), converted({800, 860, 900})));
  EXPECT_TRUE(p->last_notes().reordered);
  EXPECT_EQ(p->last_notes().duplicates_dropped, 1U);
}

TEST_F(WattTimeTest, UnknownUnitsAreRejected) {
  server_.route("/v3/forecast", ok(kProvider, "signal_index.json"));
  auto p = provider();
  const auto message = error_message([&] { p->forecast(hours(1)); }, ErrorCode::kParse);
  EXPECT_THAT(message, HasSubstr("percentile"));
  EXPECT_THAT(message, HasSubstr("wrong units"));
}

// Found by fuzz/provider_response_fuzz.cpp: a data_point_period_seconds of 1e300 was converted
// to an int64 (undefined behaviour); any period that is not a positive number of seconds up to
// a century is now a kParse naming it.
TEST_F(WattTimeTest, AnOutOfRangePeriodIsAParseError) {
  for (const char* period : {"1e300", "-1e300", "0", "-5", "\"300\"", "null", "4e9"}) {
    server_.route("/v3/forecast",
                  ReplayResponse{200,
                                 std::string(R"({"meta":{"units":"lbs_co2_per_mwh",)"
                                             R"("data_point_period_seconds":)") +
                                     period + R"(},"data":[]})",
                                 {},
                                 false});
    auto p = provider();
    EXPECT_THAT(error_message([&] { p->forecast(hours(1)); }, ErrorCode::kParse),
                HasSubstr("data_point_period_seconds"))
        << period;
  }
}

// Found by fuzz/provider_watttime: a number past a double's range ("2e310") made nlohmann throw
// out_of_range, which escaped every provider as a bare exception instead of kParse.
TEST_F(WattTimeTest, ANumberPastADoublesRangeIsAParseError) {
  server_.route(
      "/v3/forecast",
      ReplayResponse{200, R"({"meta":{"units":"lbs_co2_per_mwh"},"data":[2e310]})", {}, false});
  auto p = provider();
  EXPECT_THAT(error_message([&] { p->forecast(hours(1)); }, ErrorCode::kParse), HasSubstr("2e310"));
}

TEST_F(WattTimeTest, MissingCredentialsAreAClearError) {
  auto o = options();
  o.credentials.password.clear();
  EXPECT_THAT(
      error_message([&] { make_carbon_provider(kProvider, o); }, ErrorCode::kInvalidArgument),
      HasSubstr("WATTTIME_PASSWORD"));
}

}  // namespace
}  // namespace chase::testing
