// Carbon Aware SDK WebAPI against recorded responses: bylocation, forecasts/current, 204, 400,
// 501, nulls, empty and unordered lists, wrong units.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "carbon/providers/provider_test_util.h"

namespace chase::testing {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kProvider = "carbon-aware-sdk";
constexpr const char* kByLocation = "/emissions/bylocation";
constexpr const char* kForecast = "/emissions/forecasts/current";

class CarbonAwareSdkTest : public ::testing::Test {
 protected:
  CarbonProviderOptions options() { return test_options(kProvider, server_, clock_, sleeps_); }
  std::unique_ptr<CarbonProvider> provider() { return make_carbon_provider(kProvider, options()); }
  CarbonSeries noon(CarbonProvider& p) {
    return p.history(at("2026-03-01T12:00:00Z"), at("2026-03-01T12:20:00Z"));
  }

  ReplayServer server_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(fixture_now());
  SleepRecorder sleeps_;
};

TEST_F(CarbonAwareSdkTest, HistoryByLocation) {
  server_.route(kByLocation, ok(kProvider, "bylocation.json"));
  const auto series = noon(*provider());
  EXPECT_THAT(series.values(), ElementsAre(360, 365, 370, 375));
  EXPECT_EQ(series.resolution(), minutes(5));
  const auto request = server_.requests().at(0);
  EXPECT_EQ(request.param("location"), "westeurope");
  EXPECT_EQ(request.param("time"), "2026-03-01T12:00:00Z");
  EXPECT_EQ(request.param("toTime"), "2026-03-01T12:20:00Z");
}

TEST_F(CarbonAwareSdkTest, LatestIsTheNewestRating) {
  server_.route(kByLocation, ok(kProvider, "bylocation.json"));
  const auto point = provider()->latest();
  EXPECT_EQ(point.time, at("2026-03-01T12:15:00Z"));
  EXPECT_DOUBLE_EQ(point.g_per_kwh, 375);
}

TEST_F(CarbonAwareSdkTest, CurrentForecast) {
  server_.route(kForecast, ok(kProvider, "forecast.json"));
  const auto series = provider()->forecast(hours(1));
  EXPECT_EQ(series.start(), at("2026-03-01T12:20:00Z"));
  EXPECT_EQ(series.resolution(), minutes(5));  // "duration": 5 (minutes)
  ASSERT_EQ(series.size(), 12U);
  EXPECT_DOUBLE_EQ(series.values().front(), 250);
  EXPECT_DOUBLE_EQ(series.values().back(), 305);
  const auto request = server_.requests().at(0);
  // No window: the SDK refuses one outside its forecast; the horizon is cut here.
  EXPECT_EQ(request.param("location"), "westeurope");
  EXPECT_EQ(request.param("dataStartAt"), "");
  EXPECT_EQ(request.param("dataEndAt"), "");
}

TEST_F(CarbonAwareSdkTest, NoContentIsAnEmptySeriesAndNoLatest) {
  server_.route(kByLocation, status(204));
  server_.route(kForecast, status(204));
  auto p = provider();
  EXPECT_TRUE(noon(*p).empty());
  EXPECT_TRUE(p->forecast(hours(1)).empty());
  EXPECT_THAT(error_message([&] { p->latest(); }, ErrorCode::kUnavailable),
              HasSubstr("no emissions data"));
}

TEST_F(CarbonAwareSdkTest, BadRequestIsAnInvalidArgument) {
  server_.route(kByLocation,
                ReplayResponse{400, fixture(kProvider, "bad_request.json"), {}, false});
  auto p = provider();
  const auto message = error_message([&] { noon(*p); }, ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, HasSubstr("HTTP 400"));
  EXPECT_THAT(message, HasSubstr("location field is required"));
  EXPECT_EQ(server_.count(kByLocation), 1U);  // not retried
}

TEST_F(CarbonAwareSdkTest, NotImplementedForecastIsNotSupported) {
  server_.route(kForecast,
                ReplayResponse{501, fixture(kProvider, "not_implemented.json"), {}, false});
  auto p = provider();
  const auto message = error_message([&] { p->forecast(hours(1)); }, ErrorCode::kNotSupported);
  EXPECT_THAT(message, HasSubstr("HTTP 501"));
  EXPECT_THAT(message, HasSubstr("does not support forecasts"));
}

TEST_F(CarbonAwareSdkTest, NullRatingsAreDroppedAndReported) {
  server_.route(kByLocation, ok(kProvider, "bylocation_null.json"));
  auto p = provider();
  EXPECT_THAT(noon(*p).values(), ElementsAre(360, 370));
  EXPECT_EQ(p->last_notes().nulls_dropped, 1U);
}

TEST_F(CarbonAwareSdkTest, EmptyListIsAnEmptySeries) {
  server_.route(kByLocation, ReplayResponse{200, "[]", {}, false});
  EXPECT_TRUE(noon(*provider()).empty());
}

TEST_F(CarbonAwareSdkTest, UnorderedAndDuplicatedRatingsAreRepaired) {
  server_.route(kByLocation, ok(kProvider, "bylocation_unordered.json"));
  auto p = provider();
  EXPECT_THAT(noon(*p).values(), ElementsAre(360, 366, 370));
  EXPECT_TRUE(p->last_notes().reordered);
  EXPECT_EQ(p->last_notes().duplicates_dropped, 1U);
}

TEST_F(CarbonAwareSdkTest, WrongUnitsAreRejected) {
  server_.route(kByLocation, ok(kProvider, "bylocation_wrong_units.json"));
  auto p = provider();
  EXPECT_THAT(error_message([&] { noon(*p); }, ErrorCode::kParse), HasSubstr("wrong units"));
}

TEST_F(CarbonAwareSdkTest, BadDurationIsAParseError) {
  server_.route(kByLocation, ReplayResponse{200,
                                            R"([{"location":"westeurope","time":)"
                                            R"("2026-03-01T12:00:00Z","rating":300,)"
                                            R"("duration":"five minutes"}])",
                                            {},
                                            false});
  auto p = provider();
  EXPECT_THAT(error_message([&] { noon(*p); }, ErrorCode::kParse), HasSubstr("five minutes"));
}

// Found by fuzz/provider_response_fuzz.cpp: a duration of 9223372036854775807 minutes
// overflowed the count of seconds, and one of 100000000 days overflowed 24 * days in an int
// (undefined behaviour both); each is now a kParse naming the duration.
TEST_F(CarbonAwareSdkTest, AnOutOfRangeDurationIsAParseError) {
  for (const char* duration :
       {"9223372036854775807", "18446744073709551615", "-9223372036854775807",
        "\"100000000.00:00:00\"", "\"36501.00:00:00\""}) {
    server_.route(kByLocation, ReplayResponse{200,
                                              std::string(R"([{"location":"westeurope","time":)"
                                                          R"("2026-03-01T12:00:00Z","rating":300,)"
                                                          R"("duration":)") +
                                                  duration + "}]",
                                              {},
                                              false});
    auto p = provider();
    EXPECT_THAT(error_message([&] { noon(*p); }, ErrorCode::kParse), HasSubstr("duration"))
        << duration;
  }
}

TEST_F(CarbonAwareSdkTest, NeedsABaseUrlAndALocation) {
  auto o = options();
  o.base_url.clear();
  EXPECT_THAT(
      error_message([&] { make_carbon_provider(kProvider, o); }, ErrorCode::kInvalidArgument),
      HasSubstr("CARBON_AWARE_SDK_URL"));
  o = options();
  o.location.clear();
  EXPECT_THAT(
      error_message([&] { make_carbon_provider(kProvider, o); }, ErrorCode::kInvalidArgument),
      HasSubstr("CARBON_AWARE_SDK_LOCATION"));
}

}  // namespace
}  // namespace chase::testing
