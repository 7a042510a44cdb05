// Electricity Maps v3 against recorded responses: every endpoint, nulls, empty and unordered lists,
// wrong units. (Retries, timeouts, truncated JSON, 401 and the cache: provider_failures_test.cpp.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "carbon/providers/provider_test_util.h"

namespace chase::testing {
namespace {

using std::chrono::hours;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kProvider = "electricitymaps";
constexpr const char* kHistory = "/v3/carbon-intensity/history";

class ElectricityMapsTest : public ::testing::Test {
 protected:
  std::unique_ptr<CarbonProvider> provider(CarbonProviderOptions o) {
    return make_carbon_provider(kProvider, std::move(o));
  }
  std::unique_ptr<CarbonProvider> provider() { return provider(options()); }
  CarbonProviderOptions options() { return test_options(kProvider, server_, clock_, sleeps_); }
  CarbonSeries last_six_hours(CarbonProvider& p) {
    return p.history(at("2026-03-01T07:00:00Z"), at("2026-03-01T13:00:00Z"));
  }

  ReplayServer server_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(fixture_now());
  SleepRecorder sleeps_;
};

TEST_F(ElectricityMapsTest, LatestSendsTheKeyAndZoneAndReadsThePoint) {
  server_.route("/v3/carbon-intensity/latest", ok(kProvider, "latest.json"));
  auto o = options();
  o.emission_factor_type = "direct";
  o.disable_estimations = true;
  const CarbonPoint point = provider(o)->latest();
  EXPECT_EQ(point.time, at("2026-03-01T12:00:00Z"));
  EXPECT_DOUBLE_EQ(point.g_per_kwh, 302);
  EXPECT_EQ(point.resolution, hours(1));
  EXPECT_TRUE(point.estimated);
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_EQ(requests[0].header("auth-token"), kApiKey);
  EXPECT_EQ(requests[0].param("zone"), "DE");
  EXPECT_EQ(requests[0].param("emissionFactorType"), "direct");
  EXPECT_EQ(requests[0].param("disableEstimations"), "true");
}

TEST_F(ElectricityMapsTest, ALocationCanBeCoordinates) {
  server_.route("/v3/carbon-intensity/latest", ok(kProvider, "latest.json"));
  auto o = options();
  o.location = "52.52,13.405";
  provider(o)->latest();
  const auto request = server_.requests().at(0);
  EXPECT_EQ(request.param("lat"), "52.52");
  EXPECT_EQ(request.param("lon"), "13.405");
  EXPECT_EQ(request.param("zone"), "");
  o.location = "95,13";
  EXPECT_THAT(error_message([&] { provider(o); }, ErrorCode::kInvalidArgument), HasSubstr("95,13"));
}

TEST_F(ElectricityMapsTest, LatestNullIsUnavailableNotZero) {
  server_.route("/v3/carbon-intensity/latest", ok(kProvider, "latest_null.json"));
  auto p = provider();
  const auto message = error_message([&] { p->latest(); }, ErrorCode::kUnavailable);
  EXPECT_THAT(message, HasSubstr("null"));
  EXPECT_THAT(message, HasSubstr("DE"));
}

TEST_F(ElectricityMapsTest, LatestInWrongUnitsIsRejected) {
  server_.route("/v3/carbon-intensity/latest", ok(kProvider, "latest_wrong_units.json"));
  auto p = provider();
  const auto message = error_message([&] { p->latest(); }, ErrorCode::kParse);
  EXPECT_THAT(message, HasSubstr("lbsCO2eq/MWh"));
  EXPECT_THAT(message, HasSubstr("wrong units"));
}

TEST_F(ElectricityMapsTest, RecentHistoryUsesTheHistoryEndpoint) {
  server_.route(kHistory, ok(kProvider, "history.json"));
  auto p = provider();
  const auto series = last_six_hours(*p);
  EXPECT_THAT(series.values(), ElementsAre(410, 395, 380, 350, 320, 305));
  EXPECT_EQ(series.start(), at("2026-03-01T07:00:00Z"));
  EXPECT_EQ(series.resolution(), hours(1));
  const auto notes = p->last_notes();
  EXPECT_EQ(notes.nulls_dropped, 0U);
  EXPECT_FALSE(notes.reordered);
  EXPECT_FALSE(notes.from_cache);
}

TEST_F(ElectricityMapsTest, HistoryKeepsOnlyTheAskedWindow) {
  server_.route(kHistory, ok(kProvider, "history.json"));
  const auto series = provider()->history(at("2026-03-01T09:00:00Z"), at("2026-03-01T11:00:00Z"));
  EXPECT_THAT(series.values(), ElementsAre(380, 350));
}

TEST_F(ElectricityMapsTest, NullValuesAreDroppedAndReportedNeverZero) {
  server_.route(kHistory, ok(kProvider, "history_null.json"));
  auto p = provider();
  const auto series = last_six_hours(*p);
  EXPECT_THAT(series.values(), ElementsAre(410, 380, 320, 305));
  EXPECT_EQ(series.times()[1], at("2026-03-01T09:00:00Z"));
  EXPECT_EQ(p->last_notes().nulls_dropped, 2U);
  EXPECT_THROW(series.value_at(at("2026-03-01T08:30:00Z")), Error);  // a gap, not a 0
}

TEST_F(ElectricityMapsTest, EmptyHistoryIsAnEmptySeries) {
  server_.route(kHistory, ok(kProvider, "history_empty.json"));
  EXPECT_TRUE(last_six_hours(*provider()).empty());
}

TEST_F(ElectricityMapsTest, UnorderedAndDuplicatedPointsAreSortedAndDeduplicated) {
  server_.route(kHistory, ok(kProvider, "history_unordered.json"));
  auto p = provider();
  const auto series = last_six_hours(*p);
  EXPECT_THAT(series.values(), ElementsAre(410, 395, 381, 350, 320, 305));  // 09:00: last wins
  const auto notes = p->last_notes();
  EXPECT_TRUE(notes.reordered);
  EXPECT_EQ(notes.duplicates_dropped, 1U);
}

TEST_F(ElectricityMapsTest, OlderHistoryUsesPastRangeWithStartAndEnd) {
  server_.route("/v3/carbon-intensity/past-range", ok(kProvider, "past_range.json"));
  const auto series = provider()->history(at("2026-02-01T00:00:00Z"), at("2026-02-01T04:00:00Z"));
  EXPECT_THAT(series.values(), ElementsAre(250, 240, 260, 270));
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_EQ(requests[0].path, "/v3/carbon-intensity/past-range");
  EXPECT_EQ(requests[0].param("start"), "2026-02-01T00:00:00Z");
  EXPECT_EQ(requests[0].param("end"), "2026-02-01T04:00:00Z");
  EXPECT_EQ(requests[0].param("zone"), "DE");
}

TEST_F(ElectricityMapsTest, LongPastRangesAreSplitIntoChunks) {
  server_.route("/v3/carbon-intensity/past-range", ok(kProvider, "past_range.json"));
  provider()->history(at("2026-01-01T00:00:00Z"), at("2026-01-25T00:00:00Z"));
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 3U);  // 10 + 10 + 4 days
  EXPECT_EQ(requests[1].param("start"), "2026-01-11T00:00:00Z");
  EXPECT_EQ(requests[2].param("end"), "2026-01-25T00:00:00Z");
}

TEST_F(ElectricityMapsTest, ForecastFromTheIntervalHoldingNowToTheHorizon) {
  server_.route("/v3/carbon-intensity/forecast", ok(kProvider, "forecast.json"));
  const auto series = provider()->forecast(hours(3));
  EXPECT_EQ(series.start(), at("2026-03-01T12:00:00Z"));          // holds now (12:20)
  EXPECT_THAT(series.values(), ElementsAre(300, 290, 280, 270));  // up to 15:00 < 15:20
  EXPECT_DOUBLE_EQ(series.value_at(fixture_now()), 300);
}

TEST_F(ElectricityMapsTest, MissingKeyOrZoneIsAClearError) {
  auto o = options();
  o.credentials.api_key.clear();
  EXPECT_THAT(error_message([&] { provider(o); }, ErrorCode::kInvalidArgument),
              HasSubstr("ELECTRICITYMAPS_API_KEY"));
  o = options();
  o.location.clear();
  EXPECT_THAT(error_message([&] { provider(o); }, ErrorCode::kInvalidArgument),
              HasSubstr("ELECTRICITYMAPS_ZONE"));
}

}  // namespace
}  // namespace chase::testing
