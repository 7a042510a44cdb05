// The factory, the option loaders (environment and config file), redaction of secrets, and the
// HTTP client's own rules (Retry-After, jitter, URLs, connection failures).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "carbon/http_client.h"
#include "carbon/provider_cache.h"
#include "carbon/providers/provider_test_util.h"

namespace chase::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

EnvLookup fake_env(std::map<std::string, std::string> variables) {
  return [variables](const std::string& name) -> std::optional<std::string> {
    const auto it = variables.find(name);
    if (it == variables.end()) return std::nullopt;
    return it->second;
  };
}

std::filesystem::path write_file(const TempDir& dir, const std::string& content) {
  const auto path = dir.path() / "providers.json";
  std::ofstream(path) << content;
  return path;
}

TEST(CarbonProviderFactory, KnowsItsProviders) {
  EXPECT_THAT(carbon_provider_names(),
              ElementsAre("electricitymaps", "watttime", "ukgrid", "carbon-aware-sdk", "file"));
  const auto message =
      error_message([] { make_carbon_provider("carbonsense", {}); }, ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, AllOf(HasSubstr("carbonsense"), HasSubstr("watttime")));
  CarbonProviderOptions o;
  o.base_url = "http://127.0.0.1:9";
  EXPECT_EQ(make_carbon_provider("ukgrid", o)->name(), "ukgrid");
}

TEST(CarbonProviderOptionsTest, CredentialsInTheBaseUrlAreRefusedWithoutEchoingThem) {
  CarbonProviderOptions o;
  o.base_url = std::string("http://admin:") + kPassword + "@127.0.0.1:9/api";
  const auto message =
      error_message([&] { make_carbon_provider("ukgrid", o); }, ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, HasSubstr("credentials"));
  EXPECT_THAT(message, Not(HasSubstr("admin")));
  o.base_url = "http://127.0.0.1:9/path@with-at";  // an @ after the host is fine
  EXPECT_EQ(make_carbon_provider("ukgrid", o)->name(), "ukgrid");
}

TEST(CarbonProviderOptionsTest, SecretsAreRedacted) {
  CarbonProviderOptions o;
  o.credentials.api_key = kApiKey;
  o.credentials.username = kUsername;
  o.credentials.password = kPassword;
  o.location = "DE";
  const std::string text = to_string(o);
  EXPECT_THAT(text, Not(HasSubstr(kApiKey)));
  EXPECT_THAT(text, Not(HasSubstr(kPassword)));
  EXPECT_THAT(text,
              AllOf(HasSubstr("api_key=***"), HasSubstr("password=***"), HasSubstr("location=DE")));
  EXPECT_THAT(to_string(CarbonProviderOptions{}), HasSubstr("api_key=(none)"));
}

TEST(CarbonProviderOptionsTest, FromTheEnvironment) {
  const auto o = load_carbon_provider_options("watttime", {},
                                              fake_env({{"WATTTIME_USERNAME", "u"},
                                                        {"WATTTIME_PASSWORD", "p"},
                                                        {"WATTTIME_REGION", "CAISO_NORTH"},
                                                        {"WATTTIME_URL", "http://127.0.0.1:1"},
                                                        {"CHASE_CARBON_CACHE_DIR", "/tmp/cache"},
                                                        {"ELECTRICITYMAPS_API_KEY", "other"}}));
  EXPECT_EQ(o.credentials.username, "u");
  EXPECT_EQ(o.credentials.password, "p");
  EXPECT_EQ(o.location, "CAISO_NORTH");
  EXPECT_EQ(o.base_url, "http://127.0.0.1:1");
  EXPECT_EQ(o.cache_dir, "/tmp/cache");
  EXPECT_TRUE(o.credentials.api_key.empty());  // another provider's variable
}

TEST(CarbonProviderOptionsTest, FromAConfigFileWithTheEnvironmentWinning) {
  TempDir dir;
  const auto path = write_file(dir, R"({
    "electricitymaps": {"api_key": "from-file", "location": "FR", "timeout_ms": 1500,
                        "connect_timeout_ms": 300, "max_attempts": 2,
                        "emission_factor_type": "direct", "disable_estimations": true},
    "watttime": {"username": "x"}
  })");
  auto o = load_carbon_provider_options("electricitymaps", path, fake_env({}));
  EXPECT_EQ(o.credentials.api_key, "from-file");
  EXPECT_EQ(o.location, "FR");
  EXPECT_EQ(o.timeout, milliseconds(1500));
  EXPECT_EQ(o.connect_timeout, milliseconds(300));
  EXPECT_EQ(o.retry.max_attempts, 2);
  EXPECT_EQ(o.emission_factor_type, "direct");
  EXPECT_TRUE(o.disable_estimations);
  o = load_carbon_provider_options("electricitymaps", path,
                                   fake_env({{"ELECTRICITYMAPS_API_KEY", "from-env"}}));
  EXPECT_EQ(o.credentials.api_key, "from-env");
  EXPECT_EQ(o.location, "FR");
}

TEST(CarbonProviderOptionsTest, BadConfigFilesAreClearErrorsWithoutSecrets) {
  TempDir dir;
  EXPECT_THAT(
      error_message(
          [&] { load_carbon_provider_options("ukgrid", dir.path() / "none.json", fake_env({})); },
          ErrorCode::kNotFound),
      HasSubstr("none.json"));
  auto path = write_file(dir, std::string(R"({"watttime": {"password": ")") + kPassword);
  EXPECT_THAT(error_message([&] { load_carbon_provider_options("watttime", path, fake_env({})); },
                            ErrorCode::kParse),
              HasSubstr("not valid JSON"));
  path = write_file(dir, R"({"watttime": {"pasword": "x"}})");
  EXPECT_THAT(error_message([&] { load_carbon_provider_options("watttime", path, fake_env({})); },
                            ErrorCode::kParse),
              AllOf(HasSubstr("pasword"), HasSubstr("providers.json")));
  // An unknown key is quoted in the message, escaped: it comes from the file.
  path = write_file(dir, R"({"watttime": {"pass\u001b[2Jword": "x"}})");
  EXPECT_THAT(error_message([&] { load_carbon_provider_options("watttime", path, fake_env({})); },
                            ErrorCode::kParse),
              AllOf(HasSubstr("\"pass\\x1b[2Jword\""), Not(HasSubstr("\x1b"))));
  path = write_file(dir, R"({"watttime": {"timeout_ms": -5}})");
  EXPECT_THAT(error_message([&] { load_carbon_provider_options("watttime", path, fake_env({})); },
                            ErrorCode::kParse),
              HasSubstr("timeout_ms"));
  path = write_file(dir, R"([1, 2])");
  EXPECT_THAT(error_message([&] { load_carbon_provider_options("watttime", path, fake_env({})); },
                            ErrorCode::kParse),
              HasSubstr("JSON object"));
}

TEST(HttpClientTest, RetryAfterIsSecondsOrAnHttpDate) {
  EXPECT_EQ(detail::parse_retry_after("7"), std::chrono::seconds(7));
  EXPECT_EQ(detail::parse_retry_after(" 120 "), std::chrono::seconds(120));
  const auto now = parse_utc_time("2015-10-21T07:27:00Z").value();
  EXPECT_EQ(detail::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            std::chrono::seconds(60));
  // A date already past is no wait; a fraction of a second still to go is a whole second.
  EXPECT_EQ(detail::parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            std::chrono::seconds(0));
  EXPECT_EQ(detail::parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT",
                                      now - std::chrono::milliseconds(300)),
            std::chrono::seconds(1));
  // Not IMF-fixdate: another zone, a bad month or day, trailing text.
  EXPECT_FALSE(detail::parse_retry_after("Wed, 21 Oct 2015 07:28:00 CET", now));
  EXPECT_FALSE(detail::parse_retry_after("Wed, 21 Foo 2015 07:28:00 GMT", now));
  EXPECT_FALSE(detail::parse_retry_after("Wed, 31 Feb 2015 07:28:00 GMT", now));
  // A year past the clock's range (found by fuzzing: it overflowed) is malformed, not a wait.
  EXPECT_FALSE(detail::parse_retry_after("Mon, 02 Jul 4042 13:00:00 GMT", now));
  EXPECT_FALSE(detail::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT x", now));
  EXPECT_FALSE(detail::parse_retry_after("-3"));
  EXPECT_FALSE(detail::parse_retry_after(""));
}

TEST(HttpClientTest, UrlsEncodeTheirParameters) {
  EXPECT_EQ(
      detail::make_url("http://h/", "/p", {{"a", "x y"}, {"b", ""}, {"c", "2026-03-01T00:00:00Z"}}),
      "http://h/p?a=x%20y&c=2026-03-01T00%3A00%3A00Z");
}

TEST(HttpClientTest, JitterWaitsBetweenHalfAndAllOfTheBackoff) {
  ReplayServer server;
  server.route("/x", status(503));
  SleepRecorder sleeps;
  detail::HttpOptions options;
  options.retry.max_attempts = 6;
  options.retry.base_backoff = milliseconds(100);
  options.retry.max_backoff = milliseconds(400);
  options.sleep = sleeps.function();
  const detail::HttpClient client("test", options);
  EXPECT_THROW(client.get({server.base_url() + "/x", {}, std::nullopt}), Error);
  const auto waits = sleeps.waits();
  ASSERT_EQ(waits.size(), 5U);
  const std::vector<long> caps = {100, 200, 400, 400, 400};
  for (std::size_t i = 0; i < waits.size(); ++i) {
    EXPECT_GE(waits[i].count(), caps[i] / 2) << i;
    EXPECT_LE(waits[i].count(), caps[i]) << i;
  }
}

TEST(HttpClientTest, RetryAfterIsCappedByMaxBackoff) {
  ReplayServer server;
  server.route("/x", {status(429, {{"Retry-After", "3600"}}), status(200, {}, "{}")});
  SleepRecorder sleeps;
  detail::HttpOptions options;
  options.retry.max_backoff = milliseconds(30'000);
  options.sleep = sleeps.function();
  const auto response =
      detail::HttpClient("test", options).get({server.base_url() + "/x", {}, std::nullopt});
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(sleeps.waits(), ElementsAre(milliseconds(30'000)));
}

TEST(HttpClientTest, ResponseHeadersAndBodyComeBack) {
  ReplayServer server;
  server.route("/x", status(200, {{"X-Thing", "42"}}, R"({"a":1})"));
  const auto response = detail::HttpClient("test", {})
                            .get({server.base_url() + "/x", {{"X-Asked", "yes"}}, std::nullopt});
  EXPECT_EQ(response.body, R"({"a":1})");
  EXPECT_EQ(response.headers.at("x-thing"), "42");
  EXPECT_EQ(server.requests().at(0).header("x-asked"), "yes");
}

TEST(HttpClientTest, ARefusedConnectionIsRetriedThenAClearError) {
  std::string url;
  {
    ReplayServer server;  // a port that was free a moment ago and is closed now
    url = server.base_url() + "/x";
  }
  SleepRecorder sleeps;
  detail::HttpOptions options;
  options.retry.max_attempts = 2;
  options.sleep = sleeps.function();
  const auto message = error_message(
      [&] {
        detail::HttpClient("ukgrid", options).get({url, {}, std::nullopt});
      },
      ErrorCode::kUnavailable);
  EXPECT_THAT(message, AllOf(HasSubstr("ukgrid"), HasSubstr(url), HasSubstr("2 attempts"),
                             HasSubstr("check the network")));
  EXPECT_EQ(sleeps.waits().size(), 1U);
}

TEST(ProviderCacheTest, EntriesAreKeyedAndExpire) {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(fixture_now());
  const detail::ProviderCache cache(dir.path(), "ukgrid", clock);
  EXPECT_FALSE(cache.get("a", std::chrono::seconds(60)));
  cache.put("a", "body of a", std::chrono::seconds(60));
  cache.put("b", "body of b", std::chrono::seconds(3600));
  EXPECT_EQ(cache.get("a", std::chrono::seconds(60)), "body of a");
  EXPECT_EQ(cache.get("b", std::chrono::seconds(60)), "body of b");
  clock->advance(std::chrono::nanoseconds(std::chrono::seconds(61)));
  EXPECT_FALSE(cache.get("a", std::chrono::seconds(60)));
  EXPECT_EQ(cache.get("a", std::chrono::seconds(3600)), "body of a");  // the reader's TTL decides
  // A second cache object over the same directory (a restarted process) sees the entries.
  const detail::ProviderCache again(dir.path(), "ukgrid", clock);
  EXPECT_EQ(again.get("b", std::chrono::seconds(3600)), "body of b");
  // No temporary file is left behind.
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_THAT(entry.path().filename().string(), Not(HasSubstr("tmp")));
    ++files;
  }
  EXPECT_EQ(files, 1U);  // creating `again` removed "a", whose own TTL (60 s) had passed
}

TEST(ProviderCacheTest, ExpiredEntriesAreRemovedWhenACacheIsCreated) {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(fixture_now());
  const detail::ProviderCache cache(dir.path(), "ukgrid", clock);
  cache.put("short", "x", std::chrono::seconds(60));
  cache.put("long", "y", std::chrono::seconds(3600));
  const detail::ProviderCache other(dir.path(), "watttime", clock);
  other.put("short", "z", std::chrono::seconds(60));
  std::ofstream(dir.path() / "ukgrid-corrupt.json") << "{";
  clock->advance(std::chrono::nanoseconds(std::chrono::seconds(120)));
  const detail::ProviderCache restarted(dir.path(), "ukgrid", clock);
  EXPECT_FALSE(std::filesystem::exists(cache.path_for("short")));
  EXPECT_TRUE(std::filesystem::exists(cache.path_for("long")));
  EXPECT_TRUE(std::filesystem::exists(other.path_for("short")));  // another provider's
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "ukgrid-corrupt.json"));
  EXPECT_EQ(restarted.get("long", std::chrono::seconds(3600)), "y");
}

TEST(ProviderCacheTest, ADisabledCacheStoresNothing) {
  const detail::ProviderCache cache({}, "ukgrid", nullptr);
  cache.put("a", "x", std::chrono::seconds(60));
  EXPECT_FALSE(cache.get("a", std::chrono::seconds(60)));
}

}  // namespace
}  // namespace chase::testing
