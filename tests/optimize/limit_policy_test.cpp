// LimitPolicy on its own: the chase decision, the planner's deadline, early finish and efficient
// limits, and the options it refuses. (TrainingController and simulate_carbon call it; their tests
// cover it inside a run.)
#include "chase/limit_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "chase/carbon_provider.h"
#include "chase/error.h"
#include "support/errors.h"

namespace chase {
namespace {

using testing::error_message;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const UtcTime kStart = *parse_utc_time("2026-01-01T00:00:00Z");

// One work unit: 300 W → 100 s at 200 W (20 kJ), 200 W → 120 s at 150 W (18 kJ, the most
// efficient), 100 W → 200 s at 100 W (20 kJ).
LimitProfile profile() {
  return LimitProfile({{300, 100, 20000}, {200, 120, 18000}, {100, 200, 20000}}, {});
}

// Hourly intensity: `clean` for the first `clean_hours`, then `dirty`, for two days.
std::shared_ptr<CarbonSignal> signal(std::shared_ptr<ManualClock> clock, int clean_hours,
                                     double clean, double dirty) {
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (int h = 0; h < 48; ++h) {
    times.push_back(kStart + std::chrono::hours(h));
    values.push_back(h < clean_hours ? clean : dirty);
  }
  CarbonSignalOptions options;
  options.clock = clock;
  options.horizon = 48h;
  auto result = std::make_shared<CarbonSignal>(
      make_replay_provider(CarbonSeries(times, values, 1h, "test"), clock), options);
  result->refresh();
  return result;
}

JobProgress job(double total, double done = 0) {
  JobProgress progress;
  progress.start = kStart;
  progress.work_total = total;
  progress.work_done = done;
  progress.unit = "epochs";
  return progress;
}

TEST(LimitPolicy, ChasePicksTheSelectorsLimitAndKeepsItWithoutAnIntensity) {
  auto clock = std::make_shared<ManualClock>(kStart);
  LimitPolicyOptions options;
  options.eta = 0.9;
  options.max_carbon_intensity = 800;
  LimitPolicy policy(options, signal(clock, 1, 100, 500));
  const auto dirty = policy.decide(profile(), kStart, 500.0, job(10));
  ASSERT_TRUE(dirty.limit_w);
  EXPECT_EQ(*dirty.limit_w, 200);
  EXPECT_EQ(dirty.candidates.size(), 3u);
  EXPECT_THAT(dirty.reason, HasSubstr("chase(eta=0.9"));
  EXPECT_EQ(*policy.decide(profile(), kStart, 100.0, job(10)).limit_w, 300);
  const auto none = policy.decide(profile(), kStart, std::nullopt, job(10));
  EXPECT_FALSE(none.limit_w);
  EXPECT_THAT(none.reason, HasSubstr("limit kept"));
  EXPECT_EQ(*policy.coming_period_intensity(), 100);
}

TEST(LimitPolicy, PlannerRunsFastThroughCleanHoursRatherThanCrawlingThroughDirtyOnes) {
  // 90 units (2.5 h at 300 W), clean (50) for 2 h, then dirty (800); the budget allows 5 h.
  // Filling the 5 h at the efficient 200 W does 60 units clean and 30 dirty: 135 g. Running 300 W
  // through the clean hours (72 units) and finishing soon after emits 100 g or less.
  auto clock = std::make_shared<ManualClock>(kStart);
  LimitPolicyOptions options;
  options.policy = "planner";
  options.slowdown_budget = 1.0;
  LimitPolicy policy(options, signal(clock, 2, 50, 800));
  const auto decision = policy.decide(profile(), kStart, std::nullopt, job(90));
  ASSERT_TRUE(decision.limit_w);
  EXPECT_EQ(*decision.limit_w, 300);
  EXPECT_THAT(decision.reason, HasSubstr("planned to end in 5"));
}

TEST(LimitPolicy, PlannerNeverPlansSlowerThanTheMostEfficientLimit) {
  auto clock = std::make_shared<ManualClock>(kStart);
  LimitPolicyOptions options;
  options.policy = "planner";
  options.slowdown_budget = 3.0;  // time enough to run everything at 100 W
  LimitPolicy policy(options, signal(clock, 48, 300, 300));
  const auto decision = policy.decide(profile(), kStart, std::nullopt, job(20));
  ASSERT_TRUE(decision.limit_w);
  EXPECT_EQ(*decision.limit_w, 200);  // 18 kJ a unit, against 20 kJ at 100 W
}

TEST(LimitPolicy, PlannerFallsBackToTheFastestLimitAndStopsWhenDone) {
  auto clock = std::make_shared<ManualClock>(kStart);
  LimitPolicyOptions options;
  options.policy = "planner";
  options.slowdown_budget = 0;
  LimitPolicy policy(options, signal(clock, 48, 300, 300));
  // Half the job done but the deadline (10 units × 100 s) already passed.
  const auto late = policy.decide(profile(), kStart + 2000s, std::nullopt, job(10, 5));
  EXPECT_EQ(*late.limit_w, 300);
  EXPECT_THAT(late.reason, HasSubstr("5 epochs left cannot be done by the deadline"));
  const auto done = policy.decide(profile(), kStart, std::nullopt, job(10, 10));
  EXPECT_FALSE(done.limit_w);
  EXPECT_THAT(done.reason, HasSubstr("done"));
}

TEST(LimitPolicy, BadOptionsAreRefused) {
  auto clock = std::make_shared<ManualClock>(kStart);
  LimitPolicyOptions options;
  options.policy = "static";
  EXPECT_THAT(error_message([&] { LimitPolicy(options, signal(clock, 1, 1, 1)); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("unknown limit policy"));
  options.policy = "chase";
  EXPECT_THAT(error_message([&] { LimitPolicy(options, nullptr); }, ErrorCode::kInvalidArgument),
              HasSubstr("needs a carbon signal"));
  options.period = 0s;
  EXPECT_THAT(error_message([&] { LimitPolicy(options, signal(clock, 1, 1, 1)); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("period"));
  options.period = 30min;
  options.slowdown_budget = -1;
  EXPECT_THAT(error_message([&] { LimitPolicy(options, signal(clock, 1, 1, 1)); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("slowdown budget"));
}

TEST(LimitPolicy, CiMaxIsTheHighestIntensityOfTheDayBeforeTheStart) {
  // 200 g/kWh, but 950 28 h before the start, 900 20 h before it and 1000 after it.
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (int h = 0; h < 48; ++h) {
    times.push_back(kStart + std::chrono::hours(h));
    values.push_back(h == 2 ? 950 : h == 10 ? 900 : h == 40 ? 1000 : 200);
  }
  auto clock = std::make_shared<ManualClock>(kStart + 30h);
  CarbonSignalOptions signal_options;
  signal_options.clock = clock;
  signal_options.forecaster = make_forecaster("persistence");  // the signal then holds its past
  signal_options.history_window = 30h;
  auto carbon = std::make_shared<CarbonSignal>(
      make_replay_provider(CarbonSeries(times, values, 1h, "test"), clock), signal_options);
  carbon->refresh();
  LimitPolicy policy({}, carbon);
  policy.begin(clock->utc_now());
  const auto decision = policy.decide(profile(), clock->utc_now(), 200.0, job(10));
  EXPECT_THAT(decision.reason, HasSubstr("ci_max=900"));
}

TEST(LimitPolicy, PeriodsEndAtUtcMultiplesOfThePeriod) {
  EXPECT_EQ(period_end_after(kStart + 10min, 30min), kStart + 30min);
  EXPECT_EQ(period_end_after(kStart + 30min, 30min), kStart + 60min);
}

}  // namespace
}  // namespace chase
