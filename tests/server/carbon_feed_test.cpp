// The carbon feed behind chased --carbon (server/carbon_feed.h), alone: a failing provider keeps
// the last value and says it is down, a hung one never holds a scrape. Also run under
// ThreadSanitizer (chase_tsan_tests): the feed's thread refreshes while scrapes read.
#include "server/carbon_feed.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <thread>

#include "chase/carbon_provider.h"
#include "chase/error.h"
#include "server/carbon_sample.h"

namespace chase::testing {
namespace {

using namespace std::chrono_literals;

// A provider whose latest() does what the test says (throw, wait, answer), counting its calls.
class ScriptedProvider final : public CarbonProvider {
 public:
  explicit ScriptedProvider(std::function<CarbonPoint()> answer) : answer_(std::move(answer)) {}
  std::string_view name() const noexcept override { return "scripted"; }
  CarbonPoint latest() override {
    ++calls;
    return answer_();
  }
  CarbonSeries history(UtcTime, UtcTime) override {
    throw Error(ErrorCode::kNotSupported, "not scripted");
  }
  CarbonSeries forecast(std::chrono::seconds) override {
    throw Error(ErrorCode::kNotSupported, "not scripted");
  }
  std::atomic<int> calls{0};

 private:
  std::function<CarbonPoint()> answer_;
};

TEST(CarbonFeed, AFailingProviderKeepsTheLastValueAndSaysItIsDown) {
  std::atomic<bool> fail{false};
  auto provider = std::make_unique<ScriptedProvider>([&fail] {
    if (fail) throw Error(ErrorCode::kUnavailable, "the service is down");
    return CarbonPoint{UtcTime{}, 250, std::chrono::seconds(3600), false};
  });
  auto* scripted = provider.get();
  server::CarbonFeed feed(std::move(provider), 20ms);
  ASSERT_TRUE(feed.wait_for_first_refresh(5s));
  EXPECT_EQ(carbon_sample("\n" + feed.metrics(), "chase_carbon_intensity_grams_per_kwh"), 250);
  fail = true;
  const int calls = scripted->calls;
  while (scripted->calls < calls + 3) std::this_thread::sleep_for(5ms);
  const std::string text = "\n" + feed.metrics();
  EXPECT_EQ(carbon_sample(text, "chase_carbon_intensity_grams_per_kwh"), 250);  // kept
  EXPECT_EQ(carbon_sample(text, "chase_carbon_up"), 0);
  EXPECT_GE(*carbon_sample(text, "chase_carbon_refresh_failures_total"), 2);
}

TEST(CarbonFeed, AProviderThatNeverAnsweredHasNoValueAndIsDown) {
  server::CarbonFeed feed(std::make_unique<ScriptedProvider>([]() -> CarbonPoint {
                            throw Error(ErrorCode::kUnavailable, "no data");
                          }),
                          1h);
  ASSERT_TRUE(feed.wait_for_first_refresh(5s));
  const std::string text = "\n" + feed.metrics();
  EXPECT_FALSE(carbon_sample(text, "chase_carbon_intensity_grams_per_kwh"));
  EXPECT_FALSE(carbon_sample(text, "chase_carbon_intensity_age_seconds"));
  EXPECT_EQ(carbon_sample(text, "chase_carbon_up"), 0);
  EXPECT_EQ(carbon_sample(text, "chase_carbon_refresh_failures_total"), 1);
}

TEST(CarbonFeed, AHungProviderNeverHoldsAScrape) {
  std::atomic<bool> release{false};
  server::CarbonFeed feed(std::make_unique<ScriptedProvider>([&release] {
                            while (!release) std::this_thread::sleep_for(5ms);
                            return CarbonPoint{UtcTime{}, 100, std::chrono::seconds(3600), false};
                          }),
                          1h);
  const auto start = std::chrono::steady_clock::now();
  const std::string text = "\n" + feed.metrics();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_EQ(carbon_sample(text, "chase_carbon_up"), 0);
  release = true;  // lets the destructor join the thread
}

}  // namespace
}  // namespace chase::testing
