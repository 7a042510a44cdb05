// The failure cases every HTTP provider is tested against (429 with and without Retry-After, 500,
// a server that never answers, truncated JSON, 401), the on-disk cache, and the secrets rule — run
// for each provider on the endpoint named in its case.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>

#include "carbon/provider_cache.h"
#include "carbon/providers/provider_test_util.h"

namespace chase::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

struct ProviderCase {
  std::string provider;
  std::string endpoint;                               // names the test: "history", "latest", ...
  std::string path;                                   // the endpoint `call` uses
  std::function<CarbonSeries(CarbonProvider&)> call;  // one call, one request to `path`
  std::string good;                                   // a valid body for `path`
  std::string truncated;                              // the same, cut short
  std::string credentials_hint;                       // what a 401 message points at
  std::string path_an_hour_later = path;              // where `call` goes one hour later
};

std::ostream& operator<<(std::ostream& out, const ProviderCase& c) {
  return out << c.provider << " " << c.endpoint;
}

// latest() as a one-point series, so every endpoint runs through the same checks.
CarbonSeries latest_as_series(CarbonProvider& p) {
  const CarbonPoint point = p.latest();
  return CarbonSeries({point.time}, {point.g_per_kwh}, point.resolution);
}

CarbonSeries forecast_3h(CarbonProvider& p) { return p.forecast(std::chrono::hours(3)); }

std::vector<ProviderCase> cases() {
  return {
      {"electricitymaps", "history", "/v3/carbon-intensity/history",
       [](CarbonProvider& p) {
         return p.history(at("2026-03-01T07:00:00Z"), at("2026-03-01T13:00:00Z"));
       },
       "history.json", "history_truncated.json", "ELECTRICITYMAPS_API_KEY"},
      {"electricitymaps", "latest", "/v3/carbon-intensity/latest", latest_as_series, "latest.json",
       "latest_truncated.json", "ELECTRICITYMAPS_API_KEY"},
      {"electricitymaps", "forecast", "/v3/carbon-intensity/forecast", forecast_3h, "forecast.json",
       "forecast_truncated.json", "ELECTRICITYMAPS_API_KEY"},
      {"watttime", "forecast", "/v3/forecast",
       [](CarbonProvider& p) { return p.forecast(std::chrono::hours(1)); }, "forecast.json",
       "forecast_truncated.json", "WATTTIME_USERNAME"},
      {"watttime", "latest", "/v3/historical", latest_as_series, "historical.json",
       "historical_truncated.json", "WATTTIME_USERNAME"},
      {"ukgrid", "history", "/intensity/2026-03-01T00:00Z/2026-03-01T04:00Z",
       [](CarbonProvider& p) {
         return p.history(at("2026-03-01T00:00:00Z"), at("2026-03-01T04:00:00Z"));
       },
       "range.json", "range_truncated.json", "HTTP 401"},
      {"ukgrid", "latest", "/intensity", latest_as_series, "intensity.json",
       "intensity_truncated.json", "HTTP 401"},
      {"ukgrid", "forecast", "/intensity/2026-03-01T12:20Z/fw24h", forecast_3h, "fw24h.json",
       "fw24h_truncated.json", "HTTP 401", "/intensity/2026-03-01T13:20Z/fw24h"},
      {"carbon-aware-sdk", "history", "/emissions/bylocation",
       [](CarbonProvider& p) {
         return p.history(at("2026-03-01T12:00:00Z"), at("2026-03-01T12:20:00Z"));
       },
       "bylocation.json", "bylocation_truncated.json", "HTTP 401"},
      {"carbon-aware-sdk", "latest", "/emissions/bylocation", latest_as_series, "bylocation.json",
       "bylocation_truncated.json", "HTTP 401"},
      {"carbon-aware-sdk", "forecast", "/emissions/forecasts/current",
       [](CarbonProvider& p) { return p.forecast(std::chrono::hours(1)); }, "forecast.json",
       "forecast_truncated.json", "HTTP 401"},
  };
}

class ProviderFailureTest : public ::testing::TestWithParam<ProviderCase> {
 protected:
  void SetUp() override {
    if (GetParam().provider == "watttime") {
      server_.route("/login", ok("watttime", "login.json"));
    }
  }
  const ProviderCase& param() const { return GetParam(); }
  CarbonProviderOptions options() {
    return test_options(param().provider, server_, clock_, sleeps_);
  }
  std::unique_ptr<CarbonProvider> provider() {
    return make_carbon_provider(param().provider, options());
  }
  ReplayResponse good() const { return ok(param().provider, param().good); }

  ReplayServer server_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(fixture_now());
  SleepRecorder sleeps_;
};

TEST_P(ProviderFailureTest, HappyPathMakesOneRequest) {
  server_.route(param().path, good());
  const auto series = param().call(*provider());
  EXPECT_FALSE(series.empty());
  EXPECT_EQ(server_.count(param().path), 1U);
  EXPECT_TRUE(sleeps_.waits().empty());
}

TEST_P(ProviderFailureTest, RateLimitWithRetryAfterWaitsWhatTheServerSays) {
  server_.route(param().path, {status(429, {{"Retry-After", "7"}}), good()});
  const auto series = param().call(*provider());
  EXPECT_FALSE(series.empty());
  EXPECT_EQ(server_.count(param().path), 2U);
  EXPECT_THAT(sleeps_.waits(), ElementsAre(milliseconds(7000)));
}

TEST_P(ProviderFailureTest, RateLimitWithoutRetryAfterBacksOffExponentially) {
  server_.route(param().path, {status(429), status(429), good()});
  const auto series = param().call(*provider());
  EXPECT_FALSE(series.empty());
  EXPECT_EQ(server_.count(param().path), 3U);
  EXPECT_THAT(sleeps_.waits(), ElementsAre(milliseconds(100), milliseconds(200)));
}

TEST_P(ProviderFailureTest, PersistentRateLimitIsAClearError) {
  server_.route(param().path, status(429, {{"Retry-After", "2"}}));
  auto p = provider();
  const std::string message = error_message([&] { param().call(*p); }, ErrorCode::kUnavailable);
  EXPECT_THAT(message, HasSubstr(param().provider));
  EXPECT_THAT(message, HasSubstr(server_.base_url() + param().path));
  EXPECT_THAT(message, HasSubstr("HTTP 429"));
  EXPECT_THAT(message, HasSubstr("3 attempts"));
  EXPECT_THAT(message, HasSubstr("wait"));
  EXPECT_EQ(server_.count(param().path), 3U);
  EXPECT_THAT(sleeps_.waits(), ElementsAre(milliseconds(2000), milliseconds(2000)));
}

TEST_P(ProviderFailureTest, ServerErrorIsRetried) {
  server_.route(param().path, {status(500, {}, "oops"), good()});
  EXPECT_FALSE(param().call(*provider()).empty());
  EXPECT_EQ(server_.count(param().path), 2U);
  EXPECT_THAT(sleeps_.waits(), ElementsAre(milliseconds(100)));
}

TEST_P(ProviderFailureTest, PersistentServerErrorIsAClearError) {
  server_.route(param().path, status(500, {}, "oops"));
  auto p = provider();
  const std::string message = error_message([&] { param().call(*p); }, ErrorCode::kUnavailable);
  EXPECT_THAT(message, HasSubstr(param().provider));
  EXPECT_THAT(message, HasSubstr("HTTP 500"));
  EXPECT_THAT(message, HasSubstr("try again later"));
  EXPECT_EQ(server_.count(param().path), 3U);
}

TEST_P(ProviderFailureTest, ServerThatNeverAnswersTimesOut) {
  server_.route(param().path, hang());
  auto o = options();
  o.timeout = milliseconds(200);
  o.retry.max_attempts = 2;
  auto p = make_carbon_provider(param().provider, o);
  const auto started = std::chrono::steady_clock::now();
  const std::string message = error_message([&] { param().call(*p); }, ErrorCode::kUnavailable);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_THAT(message, HasSubstr("no answer within 200 ms"));
  EXPECT_THAT(message, HasSubstr(param().provider));
  EXPECT_EQ(server_.count(param().path), 2U);
  EXPECT_THAT(sleeps_.waits(), ElementsAre(milliseconds(100)));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST_P(ProviderFailureTest, TruncatedJsonIsAParseErrorNamingTheEndpoint) {
  server_.route(param().path, ok(param().provider, param().truncated));
  auto p = provider();
  const std::string message = error_message([&] { param().call(*p); }, ErrorCode::kParse);
  EXPECT_THAT(message, HasSubstr(param().provider));
  EXPECT_THAT(message, HasSubstr(param().path));
  EXPECT_THAT(message, HasSubstr("not valid JSON"));
  EXPECT_EQ(server_.count(param().path), 1U);  // a bad body is not retried
}

TEST_P(ProviderFailureTest, WrongShapeIsAParseError) {
  server_.route(param().path, ReplayResponse{200, R"({"unexpected": [1, 2, 3]})", {}, false});
  auto p = provider();
  const std::string message = error_message([&] { param().call(*p); }, ErrorCode::kParse);
  EXPECT_THAT(message, HasSubstr(param().provider));
  EXPECT_THAT(message, HasSubstr("expected shape"));
}

TEST_P(ProviderFailureTest, UnauthorizedIsAPermissionError) {
  // (WattTime logs in again once, then gives up.)
  server_.route(param().path, status(401, {}, R"({"message":"Invalid authentication"})"));
  auto p = provider();
  const std::string message =
      error_message([&] { param().call(*p); }, ErrorCode::kPermissionDenied);
  EXPECT_THAT(message, HasSubstr(param().provider));
  EXPECT_THAT(message, HasSubstr(param().credentials_hint));
  EXPECT_TRUE(sleeps_.waits().empty());  // a 401 is not retried with backoff
}

// Services echo what they were sent. The body goes into the message (it says what was wrong), but
// the caller's secrets are masked and its control bytes cannot reach a terminal.
TEST_P(ProviderFailureTest, AnErrorBodyEchoingTheCredentialsIsRedactedAndEscaped) {
  const std::string echo = std::string(R"({"message":"bad request from key )") + kApiKey +
                           " password " + kPassword + R"( token token-one \u001b[2J done"})";
  server_.route(param().path, status(400, {}, echo));
  // Every provider holds both secrets here: one it does not even use must not leak either.
  auto o = options();
  o.credentials.api_key = kApiKey;
  if (o.credentials.username.empty()) o.credentials.username = kUsername;
  o.credentials.password = kPassword;
  auto p = make_carbon_provider(param().provider, o);
  const std::string message = error_message([&] { param().call(*p); }, ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, HasSubstr("bad request from key *** password *** token"));
  EXPECT_THAT(message, HasSubstr("done"));
  EXPECT_THAT(message, Not(HasSubstr("\x1b")));  // ESC from the JSON string, escaped
  EXPECT_THAT(message, HasSubstr("\\x1b[2J"));
  if (param().provider == "watttime") {
    EXPECT_THAT(message, Not(HasSubstr("token-one")));
  }
}

TEST_P(ProviderFailureTest, ASecondInstanceReadsTheCacheInsteadOfTheNetwork) {
  TempDir cache;
  server_.route(param().path, good());
  auto o = options();
  o.cache_dir = cache.path();
  const auto first = param().call(*make_carbon_provider(param().provider, o));
  const std::size_t requests = server_.requests().size();
  EXPECT_EQ(server_.count(param().path), 1U);

  // A "restarted process": a new provider, same cache directory.
  auto second_provider = make_carbon_provider(param().provider, o);
  const auto second = param().call(*second_provider);
  EXPECT_EQ(server_.requests().size(), requests) << "the second instance went to the network";
  EXPECT_TRUE(second_provider->last_notes().from_cache);
  EXPECT_EQ(second.times(), first.times());
  EXPECT_EQ(second.values(), first.values());
  for (const auto& entry : std::filesystem::directory_iterator(cache.path())) {
    std::ifstream in(entry.path());
    const std::string content((std::istreambuf_iterator<char>(in)), {});
    EXPECT_THAT(content, Not(HasSubstr(kApiKey)));
    EXPECT_THAT(content, Not(HasSubstr(kPassword)));
    EXPECT_THAT(entry.path().filename().string(), Not(HasSubstr(".tmp")));
  }
}

TEST_P(ProviderFailureTest, AStaleCacheEntryIsFetchedAgain) {
  TempDir cache;
  server_.route(param().path, good());
  auto o = options();
  o.cache_dir = cache.path();
  param().call(*make_carbon_provider(param().provider, o));
  // An hour later: past every TTL of a window this recent.
  clock_->advance(std::chrono::nanoseconds(std::chrono::hours(1)));
  server_.route(param().path_an_hour_later, good());
  auto again = make_carbon_provider(param().provider, o);
  param().call(*again);
  const bool moved = param().path_an_hour_later != param().path;
  EXPECT_EQ(server_.count(param().path), moved ? 1U : 2U);
  EXPECT_EQ(server_.count(param().path_an_hour_later), moved ? 1U : 2U);
  EXPECT_FALSE(again->last_notes().from_cache);
}

TEST_P(ProviderFailureTest, ACorruptCacheEntryIsIgnored) {
  TempDir cache;
  server_.route(param().path, good());
  auto o = options();
  o.cache_dir = cache.path();
  param().call(*make_carbon_provider(param().provider, o));
  for (const auto& entry : std::filesystem::directory_iterator(cache.path())) {
    std::ofstream(entry.path(), std::ios::trunc) << "{\"key\": \"half a";
  }
  auto again = make_carbon_provider(param().provider, o);
  EXPECT_FALSE(param().call(*again).empty());
  EXPECT_EQ(server_.count(param().path), 2U);
}

INSTANTIATE_TEST_SUITE_P(Http, ProviderFailureTest, ::testing::ValuesIn(cases()),
                         [](const auto& test) {
                           std::string name = test.param.provider + "_" + test.param.endpoint;
                           std::erase(name, '-');
                           return name;
                         });

}  // namespace
}  // namespace chase::testing
