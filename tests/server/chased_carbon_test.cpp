// chased --carbon: a background feed keeps the grid's carbon intensity for /metrics. Over the fake
// NVML with the file provider (a CSV around now): the value, chase_carbon_up and the age arrive,
// promtool accepts the exposition; a bad spec is refused at start. The feed alone:
// carbon_feed_test.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <regex>
#include <thread>

#include "chase/error.h"
#include "server/carbon_sample.h"
#include "server/chased_fixture.h"
#include "support/carbon_csv.h"

namespace chase::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::string scrape(int port) {
  httplib::Client client("127.0.0.1", port);
  const auto reply = client.Get("/metrics");
  return reply && reply->status == 200 ? reply->body : std::string();
}

TEST(ChasedCarbon, TheFileProvidersIntensityIsInMetricsWithItsAgeAndUp) {
  FakeNvmlEnvironment scratch(FakeNvmlEnvironment::standard_config(1));  // a temp directory
  const auto csv = scratch.directory() / "grid.csv";
  std::ofstream(csv) << hourly_carbon_csv_around_now(-3, 3, [](int h) { return 300.0 + h; });
  ChasedDaemon daemon(2, {"--carbon", "file:" + csv.string()});
  ASSERT_GT(daemon.metrics_port(), 0);
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!carbon_sample(text, "chase_carbon_intensity_grams_per_kwh") &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    text = scrape(daemon.metrics_port());
  }
  EXPECT_EQ(carbon_sample(text, "chase_carbon_intensity_grams_per_kwh"), 300) << text;
  EXPECT_EQ(carbon_sample(text, "chase_carbon_up"), 1);
  EXPECT_EQ(carbon_sample(text, "chase_carbon_refresh_failures_total"), 0);
  const auto age = carbon_sample(text, "chase_carbon_intensity_age_seconds");
  ASSERT_TRUE(age);
  EXPECT_GE(*age, 0);
  EXPECT_LT(*age, 30);
  EXPECT_THAT(text, HasSubstr("chase_carbon_up{provider=\"file\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("chase_gpu_power_watts{index=\"1\""));  // the rest is still there

  constexpr const char* kPromtool = "/usr/bin/promtool";
  if (!std::filesystem::exists(kPromtool)) return;
  const auto file = daemon.env().directory() / "metrics.txt";
  std::ofstream(file) << text;
  Process promtool({"/bin/sh", "-c", std::string(kPromtool) + " check metrics < " + file.string()});
  const auto result = promtool.wait(30s);
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
}

TEST(ChasedCarbon, ABadProviderSpecStopsTheDaemonAtStart) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  Process chased({CHASED_PATH, "--socket", (env.directory() / "s.sock").string(), "--no-state",
                  "--carbon", "nosuchprovider"});
  const auto result = chased.wait(20s);
  EXPECT_EQ(result.exit_code, 2) << result.out << result.err;
  EXPECT_THAT(result.err, HasSubstr("--carbon nosuchprovider"));
  Process empty_file({CHASED_PATH, "--socket", (env.directory() / "s.sock").string(), "--no-state",
                      "--carbon", "file:"});
  const auto second = empty_file.wait(20s);
  EXPECT_EQ(second.exit_code, 2) << second.out << second.err;
  EXPECT_THAT(second.err, HasSubstr("file:PATH"));
}

}  // namespace
}  // namespace chase::testing
