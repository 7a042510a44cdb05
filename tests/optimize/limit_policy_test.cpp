// LimitPolicy on its own: the chase decision, the planner's deadline, early finish and efficient
// limits, and the options it refuses. (TrainingController and simulate_carbon call it; their tests
// cover it inside a run.)
#include "chase/limit_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

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

// What the period driver hands a policy: the profile above, at `now`.
LimitDecision decide(LimitPolicy& policy, UtcTime now, const JobProgress& progress) {
  static const auto kProfile = profile();
  return policy.decide({now, &kProfile, 300, progress});
}

// A provider that is always down.
class DownProvider final : public CarbonProvider {
 public:
  std::string_view name() const noexcept override { return "down"; }
  CarbonPoint latest() override { throw Error(ErrorCode::kUnavailable, "down"); }
  CarbonSeries history(UtcTime, UtcTime) override { return latest(), CarbonSeries{}; }
  CarbonSeries forecast(std::chrono::seconds) override { return latest(), CarbonSeries{}; }
};

TEST(LimitPolicy, ChasePicksTheSelectorsLimitAndKeepsItWithoutAnIntensity) {
  auto clock = std::make_shared<ManualClock>(kStart);
  auto policy = make_limit_policy(ChaseOptions{.eta = 0.9, .max_carbon_intensity = 800}, 30min,
                                  signal(clock, 1, 100, 500));
  EXPECT_EQ(*policy->enter_period(kStart), 100);
  EXPECT_EQ(*decide(*policy, kStart, job(10)).limit_w, 300);
  clock->advance(std::chrono::nanoseconds(1h));
  EXPECT_EQ(*policy->enter_period(kStart + 1h), 500);
  const auto dirty = decide(*policy, kStart + 1h, job(10));
  ASSERT_TRUE(dirty.limit_w);
  EXPECT_EQ(*dirty.limit_w, 200);
  EXPECT_EQ(dirty.candidates.size(), 3u);
  EXPECT_THAT(dirty.reason, HasSubstr("chase(eta=0.9"));

  CarbonSignalOptions down_options;
  down_options.clock = clock;
  auto blind = make_limit_policy(
      ChaseOptions{.eta = 0.9, .max_carbon_intensity = 800}, 30min,
      std::make_shared<CarbonSignal>(std::make_shared<DownProvider>(), down_options));
  EXPECT_FALSE(blind->enter_period(kStart + 1h));
  const auto none = decide(*blind, kStart + 1h, job(10));
  EXPECT_FALSE(none.limit_w);
  EXPECT_THAT(none.reason, HasSubstr("limit kept"));
}

TEST(LimitPolicy, PlannerRunsFastThroughCleanHoursRatherThanCrawlingThroughDirtyOnes) {
  // 90 units (2.5 h at 300 W), clean (50) for 2 h, then dirty (800); the budget allows 5 h.
  // Filling the 5 h at the efficient 200 W does 60 units clean and 30 dirty: 135 g. Running 300 W
  // through the clean hours (72 units) and finishing soon after emits 100 g or less.
  auto clock = std::make_shared<ManualClock>(kStart);
  auto policy =
      make_limit_policy(PlannerOptions{.slowdown_budget = 1.0}, 30min, signal(clock, 2, 50, 800));
  const auto decision = decide(*policy, kStart, job(90));
  ASSERT_TRUE(decision.limit_w);
  EXPECT_EQ(*decision.limit_w, 300);
  EXPECT_THAT(decision.reason, HasSubstr("planned to end in 5"));
}

TEST(LimitPolicy, PlannerNeverPlansSlowerThanTheMostEfficientLimit) {
  auto clock = std::make_shared<ManualClock>(kStart);
  // Time enough to run everything at 100 W.
  auto policy =
      make_limit_policy(PlannerOptions{.slowdown_budget = 3.0}, 30min, signal(clock, 48, 300, 300));
  const auto decision = decide(*policy, kStart, job(20));
  ASSERT_TRUE(decision.limit_w);
  EXPECT_EQ(*decision.limit_w, 200);  // 18 kJ a unit, against 20 kJ at 100 W
}

TEST(LimitPolicy, PlannerFallsBackToTheFastestLimitAndStopsWhenDone) {
  auto clock = std::make_shared<ManualClock>(kStart);
  auto policy =
      make_limit_policy(PlannerOptions{.slowdown_budget = 0}, 30min, signal(clock, 48, 300, 300));
  // Half the job done but the deadline (10 units × 100 s) already passed.
  const auto late = decide(*policy, kStart + 2000s, job(10, 5));
  EXPECT_EQ(*late.limit_w, 300);
  EXPECT_THAT(late.reason, HasSubstr("5 epochs left cannot be done by the deadline"));
  const auto done = decide(*policy, kStart, job(10, 10));
  EXPECT_FALSE(done.limit_w);
  EXPECT_THAT(done.reason, HasSubstr("done"));
}

TEST(LimitPolicy, BadOptionsAreRefused) {
  auto clock = std::make_shared<ManualClock>(kStart);
  EXPECT_THAT(error_message([&] { parse_policy("greedy"); }, ErrorCode::kInvalidArgument),
              HasSubstr("unknown policy"));
  EXPECT_THAT(error_message([&] { make_limit_policy(ChaseOptions{}, 30min, nullptr); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("needs a carbon signal"));
  EXPECT_THAT(error_message([&] { make_limit_policy(ChaseOptions{}, 0s, signal(clock, 1, 1, 1)); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("period"));
  EXPECT_THAT(error_message(
                  [&] {
                    make_limit_policy(PlannerOptions{.slowdown_budget = -1}, 30min,
                                      signal(clock, 1, 1, 1));
                  },
                  ErrorCode::kInvalidArgument),
              HasSubstr("slowdown budget"));
  EXPECT_THAT(error_message(
                  [&] { make_limit_policy(ChaseOptions{.eta = 2}, 30min, signal(clock, 1, 1, 1)); },
                  ErrorCode::kInvalidArgument),
              HasSubstr("eta"));
  EXPECT_THAT(error_message([&] { make_limit_policy(OracleOptions{}, 30min, nullptr); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("oracle policy needs a carbon signal"));
}

// CI_max 0 means "chosen by begin()"; anything else that is not a positive intensity is a mistake
// to refuse, not a request for the default (it used to be replaced silently).
TEST(LimitPolicy, ACiMaxThatIsNotAPositiveIntensityIsRefused) {
  auto clock = std::make_shared<ManualClock>(kStart);
  for (const double bad : {-5.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(error_message(
                    [&] {
                      make_limit_policy(ChaseOptions{.eta = 0.5, .max_carbon_intensity = bad},
                                        30min, signal(clock, 1, 1, 1));
                    },
                    ErrorCode::kInvalidArgument),
                HasSubstr("CI_max"));
  }
  EXPECT_NO_THROW(make_limit_policy(ChaseOptions{.eta = 0.5, .max_carbon_intensity = 0}, 30min,
                                    signal(clock, 1, 1, 1)));
}

TEST(LimitPolicy, NamesAreParsedOnceAndPrintedBack) {
  for (const auto kind : {PolicyKind::kDefault, PolicyKind::kStatic, PolicyKind::kChase,
                          PolicyKind::kPlanner, PolicyKind::kOracle}) {
    EXPECT_EQ(parse_policy_kind(to_string(kind)), kind);
    EXPECT_EQ(kind_of(make_policy_options(kind, {})), kind);
  }
  EXPECT_EQ(parse_policy_kind("zeus"), PolicyKind::kStatic);
  EXPECT_EQ(policy_label(parse_policy("zeus", {.eta = 0.3})), "zeus");
  EXPECT_EQ(policy_label(StaticOptions{make_energy_selector()}), "energy");
  EXPECT_EQ(policy_label(StaticOptions{}), "zeus");
  EXPECT_EQ(policy_label(PlannerOptions{}), "planner");
  const auto chase = parse_policy("chase", {.eta = 0.7, .max_carbon_intensity = 600});
  EXPECT_EQ(std::get<ChaseOptions>(chase).eta, 0.7);
  EXPECT_EQ(std::get<ChaseOptions>(chase).max_carbon_intensity, 600);
  EXPECT_EQ(
      std::get<OracleOptions>(parse_policy("oracle", {.slowdown_budget = 0.3})).slowdown_budget,
      0.3);
  EXPECT_THAT(error_message([&] { parse_policy_kind("Chase"); }, ErrorCode::kInvalidArgument),
              HasSubstr("use default, static, zeus, chase, planner or oracle"));
}

TEST(LimitPolicy, DefaultRunsTheHighestOrTheGivenLimitWithoutAProfile) {
  auto highest = make_limit_policy(FixedLimitOptions{}, 30min, nullptr);
  EXPECT_FALSE(highest->needs_profile());
  const auto first = highest->decide({kStart, nullptr, 300, job(10)});
  EXPECT_EQ(*first.limit_w, 300);
  EXPECT_FALSE(first.repeat);
  const auto later = highest->decide({kStart + 30min, nullptr, 300, job(10)});
  EXPECT_TRUE(later.repeat);
  EXPECT_EQ(*later.limit_w, 300) << "set again, in case the change failed";
  auto fixed = make_limit_policy(FixedLimitOptions{.limit_w = 175}, 30min, nullptr);
  EXPECT_EQ(*fixed->decide({kStart, nullptr, 300, job(10)}).limit_w, 175);
  EXPECT_FALSE(fixed->enter_period(kStart)) << "no signal, no intensity";
}

TEST(LimitPolicy, StaticChoosesOnceWithItsSelector) {
  auto policy = make_limit_policy(StaticOptions{make_energy_selector()}, 30min, nullptr);
  const auto first = decide(*policy, kStart, job(10));
  EXPECT_EQ(*first.limit_w, 200);  // the least energy per unit
  EXPECT_THAT(first.reason, HasSubstr("static: energy chose 200 W"));
  const auto later = decide(*policy, kStart + 30min, job(10));
  EXPECT_TRUE(later.repeat);
  EXPECT_EQ(*later.limit_w, 200);
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
  auto policy = make_limit_policy(ChaseOptions{}, 30min, carbon);
  policy->begin(clock->utc_now());
  policy->enter_period(clock->utc_now());
  const auto decision = decide(*policy, clock->utc_now(), job(10));
  EXPECT_THAT(decision.reason, HasSubstr("ci_max=900"));
}

TEST(LimitPolicy, PeriodsEndAtUtcMultiplesOfThePeriod) {
  EXPECT_EQ(period_end_after(kStart + 10min, 30min), kStart + 30min);
  EXPECT_EQ(period_end_after(kStart + 30min, 30min), kStart + 60min);
}

}  // namespace
}  // namespace chase
