// The providers against loopback servers that answer as the real services do, refusals included:
// the Carbon Aware SDK's 400 for a window past its forecast, Electricity Maps' caller-IP fallback
// for coordinates and its plan-limited endpoints, WattTime's subscription-only data, the UK API's
// 48 h forecast limit and its per-point estimates, and a Retry-After given as an HTTP date.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "carbon/providers/provider_test_util.h"

namespace chase::testing {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string messages_of(const CarbonProvider& provider) {
  std::string text;
  for (const auto& message : provider.last_notes().messages) text += message + "\n";
  return text;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

class ServiceFidelityTest : public ::testing::Test {
 protected:
  CarbonProviderOptions options(const std::string& provider) {
    return test_options(provider, server_, clock_, sleeps_);
  }

  ReplayServer server_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(fixture_now());
  SleepRecorder sleeps_;
};

// ---- 8. Carbon Aware SDK: a window past the end of its forecast is a 400 --------------------

// The SDK's forecast (fixture) covers [12:20, 13:20); like the real WebAPI, this fake refuses a
// dataStartAt or dataEndAt outside it.
ReplayResponse sdk_forecast(const RecordedRequest& request) {
  const auto first = at("2026-03-01T12:20:00Z");
  const auto end = at("2026-03-01T13:20:00Z");
  for (const char* bound : {"dataStartAt", "dataEndAt"}) {
    const std::string text = request.param(bound);
    if (text.empty()) continue;
    const auto time = parse_utc_time(text);
    if (!time || *time < first || *time > end) {
      return status(400, {},
                    fmt::format(R"({{"type":"https://tools.ietf.org/html/rfc7231#section-6.5.1",)"
                                R"("title":"ArgumentException","status":400,)"
                                R"("detail":"{} {} is outside the forecast data"}})",
                                bound, text));
    }
  }
  return ok("carbon-aware-sdk", "forecast.json");
}

TEST_F(ServiceFidelityTest, SdkForecastUnderTheDefaultHorizonDoesNotAskPastTheForecastEnd) {
  server_.route("/emissions/forecasts/current", sdk_forecast);
  auto provider = make_carbon_provider("carbon-aware-sdk", options("carbon-aware-sdk"));
  const auto series = provider->forecast(hours(24));
  EXPECT_EQ(series.size(), 12U);
  EXPECT_EQ(series.start(), at("2026-03-01T12:20:00Z"));
  EXPECT_TRUE(series.is_estimated(0));
  EXPECT_EQ(server_.requests().at(0).param("dataEndAt"), "");
  // The forecast is shorter than asked: said so, not hidden.
  EXPECT_THAT(messages_of(*provider),
              AllOf(HasSubstr("ends at 2026-03-01T13:20:00Z"), HasSubstr("no further forecast")));
}

TEST_F(ServiceFidelityTest, SdkForecastIsCutToTheHorizonLocally) {
  server_.route("/emissions/forecasts/current", sdk_forecast);
  auto provider = make_carbon_provider("carbon-aware-sdk", options("carbon-aware-sdk"));
  const auto series = provider->forecast(minutes(15));
  EXPECT_THAT(series.values(), ElementsAre(250, 255, 260));
  EXPECT_TRUE(provider->last_notes().messages.empty());
}

// ---- 9. Electricity Maps by coordinates: no caller-IP fallback; the zone is checked ---------

// Coordinates that fall in no zone (or a client that does not turn the fallback off) get the zone
// of the caller's IP address, as the real API does.
ReplayResponse electricitymaps_latest(const RecordedRequest& request) {
  const std::string body = fixture("electricitymaps", "latest.json");
  if (!request.param("lat").empty() && request.param("shouldUseFallbackCallerLookup") != "false") {
    return ReplayResponse{
        200, replaced(replaced(body, "\"DE\"", "\"US-CAL-CISO\""), "302", "451"), {}, false};
  }
  return ReplayResponse{200, body, {}, false};
}

TEST_F(ServiceFidelityTest, ElectricityMapsCoordinatesTurnTheCallerIpFallbackOff) {
  server_.route("/v3/carbon-intensity/latest", electricitymaps_latest);
  auto o = options("electricitymaps");
  o.location = "52.52,13.405";
  auto provider = make_carbon_provider("electricitymaps", o);
  EXPECT_DOUBLE_EQ(provider->latest().g_per_kwh, 302);  // DE's, not the caller's zone's
  EXPECT_EQ(server_.requests().at(0).param("shouldUseFallbackCallerLookup"), "false");
  EXPECT_THAT(messages_of(*provider), HasSubstr("in zone DE"));
}

TEST_F(ServiceFidelityTest, ElectricityMapsAnswerForAnotherZoneIsAnError) {
  server_.route(
      "/v3/carbon-intensity/latest",
      ReplayResponse{
          200, replaced(fixture("electricitymaps", "latest.json"), "\"DE\"", "\"FR\""), {}, false});
  auto provider = make_carbon_provider("electricitymaps", options("electricitymaps"));
  EXPECT_THAT(error_message([&] { provider->latest(); }, ErrorCode::kInvalidArgument),
              AllOf(HasSubstr("'FR'"), HasSubstr("'DE'"), HasSubstr("another grid")));
}

TEST_F(ServiceFidelityTest, ElectricityMapsCoordinatesMustStayInTheirZone) {
  server_.route("/v3/carbon-intensity/latest", ok("electricitymaps", "latest.json"));
  server_.route(
      "/v3/carbon-intensity/history",
      ReplayResponse{200,
                     replaced(fixture("electricitymaps", "history.json"), "\"DE\"", "\"PL\""),
                     {},
                     false});
  auto o = options("electricitymaps");
  o.location = "52.52,13.405";
  auto provider = make_carbon_provider("electricitymaps", o);
  provider->latest();
  EXPECT_THAT(
      error_message(
          [&] { provider->history(at("2026-03-01T07:00:00Z"), at("2026-03-01T13:00:00Z")); },
          ErrorCode::kInvalidArgument),
      AllOf(HasSubstr("'PL'"), HasSubstr("'DE'"), HasSubstr("52.52,13.405")));
}

// ---- 10. Plan limits -----------------------------------------------------------------------

// A free Electricity Maps key: latest and the last 24 h work; past-range and forecast are refused.
void serve_free_electricitymaps_key(ReplayServer& server) {
  server.route("/v3/carbon-intensity/latest", ok("electricitymaps", "latest.json"));
  server.route("/v3/carbon-intensity/history", ok("electricitymaps", "history.json"));
  const auto refused =
      status(403, {}, R"({"status":"error","message":"Forbidden: not included in your plan"})");
  server.route("/v3/carbon-intensity/past-range", refused);
  server.route("/v3/carbon-intensity/forecast", refused);
}

TEST_F(ServiceFidelityTest, ElectricityMapsFreeKeyForecastRefusalNamesThePlan) {
  serve_free_electricitymaps_key(server_);
  auto provider = make_carbon_provider("electricitymaps", options("electricitymaps"));
  provider->latest();  // the key itself is fine
  EXPECT_THAT(error_message([&] { provider->forecast(hours(24)); }, ErrorCode::kPermissionDenied),
              AllOf(HasSubstr("plan does not include forecasts"), HasSubstr("free keys"),
                    HasSubstr("HTTP 403")));
}

TEST_F(ServiceFidelityTest, ElectricityMapsFreeKeyPastRangeRefusalNamesThePlan) {
  serve_free_electricitymaps_key(server_);
  auto provider = make_carbon_provider("electricitymaps", options("electricitymaps"));
  EXPECT_THAT(
      error_message(
          [&] { provider->history(at("2026-02-01T00:00:00Z"), at("2026-02-02T00:00:00Z")); },
          ErrorCode::kPermissionDenied),
      AllOf(HasSubstr("plan does not include history older than 24 h"), HasSubstr("past-range")));
  // The last 24 h are still served.
  EXPECT_FALSE(provider->history(at("2026-03-01T07:00:00Z"), at("2026-03-01T13:00:00Z")).empty());
}

// A WattTime account without a subscription: the login works, data outside CAISO_NORTH is 403.
void serve_free_watttime_account(ReplayServer& server) {
  server.route("/login", ok("watttime", "login.json"));
  const auto refused = [](const RecordedRequest& request) {
    if (request.param("region") == "CAISO_NORTH") {
      return ok("watttime", request.path == "/v3/forecast" ? "forecast.json" : "historical.json");
    }
    return status(403, {},
                  R"({"error":"Forbidden","message":"Your account does not have access to )"
                  R"(this region"})");
  };
  server.route("/v3/historical", refused);
  server.route("/v3/forecast", refused);
}

TEST_F(ServiceFidelityTest, WattTimeDataOutsideTheFreeRegionNamesThePlan) {
  serve_free_watttime_account(server_);
  auto o = options("watttime");
  o.location = "PJM_DC";
  auto provider = make_carbon_provider("watttime", o);
  EXPECT_THAT(
      error_message(
          [&] { provider->history(at("2026-03-01T00:00:00Z"), at("2026-03-01T01:00:00Z")); },
          ErrorCode::kPermissionDenied),
      AllOf(HasSubstr("plan does not include historical data for region PJM_DC"),
            HasSubstr("CAISO_NORTH"), HasSubstr("subscription")));
  EXPECT_THAT(error_message([&] { provider->forecast(hours(1)); }, ErrorCode::kPermissionDenied),
              HasSubstr("plan does not include forecast data"));
}

TEST_F(ServiceFidelityTest, WattTimeRefusedLoginIsStillAboutTheCredentials) {
  server_.route("/login", status(401));
  auto o = options("watttime");
  o.location = "PJM_DC";
  auto provider = make_carbon_provider("watttime", o);
  EXPECT_THAT(error_message([&] { provider->forecast(hours(1)); }, ErrorCode::kPermissionDenied),
              AllOf(HasSubstr("WATTTIME_USERNAME"), Not(HasSubstr("plan"))));
}

TEST_F(ServiceFidelityTest, WattTimeFreeRegionIsServed) {
  serve_free_watttime_account(server_);
  auto provider = make_carbon_provider("watttime", options("watttime"));
  EXPECT_FALSE(provider->forecast(hours(1)).empty());
}

TEST_F(ServiceFidelityTest, WattTimeHorizonIsClampedTo72HoursWithANote) {
  server_.route("/login", ok("watttime", "login.json"));
  server_.route("/v3/forecast", ok("watttime", "forecast.json"));
  auto provider = make_carbon_provider("watttime", options("watttime"));
  provider->forecast(hours(100));
  EXPECT_EQ(server_.requests().back().param("horizon_hours"), "72");
  EXPECT_THAT(messages_of(*provider), AllOf(HasSubstr("at most 72 h"), HasSubstr("100 h")));
}

TEST_F(ServiceFidelityTest, WattTimeForecastPeriodComesFromMeta) {
  server_.route("/login", ok("watttime", "login.json"));
  server_.route("/v3/forecast", ReplayResponse{200,
                                               replaced(fixture("watttime", "forecast.json"),
                                                        "\"data_point_period_seconds\": 300",
                                                        "\"data_point_period_seconds\": 900"),
                                               {},
                                               false});
  auto provider = make_carbon_provider("watttime", options("watttime"));
  EXPECT_EQ(provider->forecast(hours(1)).resolution(), minutes(15));
}

TEST_F(ServiceFidelityTest, UkForecastBeyond48HoursIsClampedWithANote) {
  server_.route("/intensity/2026-03-01T12:20Z/fw48h", ok("ukgrid", "fw24h.json"));
  auto o = options("ukgrid");
  auto provider = make_carbon_provider("ukgrid", o);
  const auto series = provider->forecast(hours(72));
  EXPECT_FALSE(series.empty());
  EXPECT_EQ(server_.requests().at(0).path, "/intensity/2026-03-01T12:20Z/fw48h");
  EXPECT_THAT(messages_of(*provider), AllOf(HasSubstr("at most 48 h"), HasSubstr("72 h")));
}

// ---- 11. UK history estimates, regions, Retry-After dates ------------------------------------

TEST_F(ServiceFidelityTest, UkHistoryKeepsWhichPointsAreForecastValues) {
  server_.route("/intensity/2026-03-01T00:00Z/2026-03-01T04:00Z", ok("ukgrid", "range_null.json"));
  auto provider = make_carbon_provider("ukgrid", options("ukgrid"));
  const auto series = provider->history(at("2026-03-01T00:00:00Z"), at("2026-03-01T04:00:00Z"));
  ASSERT_THAT(series.values(), ElementsAre(190, 210));
  EXPECT_FALSE(series.is_estimated(0));  // an actual value
  EXPECT_TRUE(series.is_estimated(1));   // actual null: the forecast stands in
}

TEST_F(ServiceFidelityTest, UkRegion18IsGreatBritain) {
  server_.route("/regional/regionid/18", ok("ukgrid", "regional_regionid.json"));
  auto o = options("ukgrid");
  o.location = "regionid:18";
  EXPECT_DOUBLE_EQ(make_carbon_provider("ukgrid", o)->latest().g_per_kwh, 120);
  o.location = "regionid:19";
  EXPECT_THAT(
      error_message([&] { make_carbon_provider("ukgrid", o); }, ErrorCode::kInvalidArgument),
      HasSubstr("1 to 18"));
}

TEST_F(ServiceFidelityTest, RetryAfterAsAnHttpDateIsWaitedFor) {
  // now = 2026-03-01T12:20:00Z (a Sunday); the service asks to come back 45 s later.
  server_.route("/intensity", std::vector<ReplayResponse>{
                                  status(429, {{"Retry-After", "Sun, 01 Mar 2026 12:20:45 GMT"}}),
                                  ok("ukgrid", "intensity.json")});
  auto provider = make_carbon_provider("ukgrid", options("ukgrid"));
  provider->latest();
  EXPECT_THAT(sleeps_.waits(), ElementsAre(milliseconds(45'000)));
}

TEST_F(ServiceFidelityTest, RetryAfterDateInThePastIsNoWait) {
  server_.route("/intensity", std::vector<ReplayResponse>{
                                  status(503, {{"Retry-After", "Sun, 01 Mar 2026 12:00:00 GMT"}}),
                                  ok("ukgrid", "intensity.json")});
  auto provider = make_carbon_provider("ukgrid", options("ukgrid"));
  provider->latest();
  EXPECT_THAT(sleeps_.waits(), ElementsAre(milliseconds(0)));
}

}  // namespace
}  // namespace chase::testing
