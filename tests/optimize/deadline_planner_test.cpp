// Deadline mode's planner (plan_with_pauses): it pauses through dirty periods when that pays, never
// when a resume costs more than it saves, always meets the work when it can (else the fastest limit
// everywhere), ends early when the tail costs nothing, and refuses bad pause options; the planner
// policy carries a pause and its resume time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "chase/carbon_provider.h"
#include "chase/error.h"
#include "chase/limit_policy.h"
#include "chase/planner.h"
#include "support/errors.h"

namespace chase {
namespace {

using testing::error_message;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Work unit = one window. 300 W: 10 s at 200 W (X 0.1, P 200); 200 W: 12 s at 150 W; 100 W: 20 s
// at 100 W (the most energy per unit: 2000 J against 1800 J at 200 W).
LimitProfile profile() {
  return LimitProfile({{300, 10, 2000}, {200, 12, 1800}, {100, 20, 2000}}, {});
}

std::vector<PlanPeriod> hours(const std::vector<double>& intensities) {
  std::vector<PlanPeriod> out;
  for (const double ci : intensities) out.push_back({3600, ci});
  return out;
}

PauseOptions pause(PauseMode mode, double resume_s = 0) {
  PauseOptions options;
  options.mode = mode;
  options.idle_power_w = 30;
  options.resume_s = resume_s;
  return options;
}

TEST(DeadlinePlanner, ReleasesThroughTheDirtyHoursAndStillDoesTheWork) {
  // Three hours of work at full speed (1080 units), six hours to do it, the middle three dirty.
  const auto periods = hours({100, 900, 900, 900, 100, 100});
  const double work = 3 * 360;
  const auto plan = plan_with_pauses(profile(), periods, work, pause(PauseMode::kRelease), false);
  ASSERT_TRUE(plan.feasible);
  EXPECT_GE(plan.work, work * (1 - 1e-9));
  EXPECT_FALSE(plan.periods[0].paused);
  for (std::size_t t = 1; t <= 3; ++t) EXPECT_TRUE(plan.periods[t].paused) << t;
  EXPECT_FALSE(plan.periods[4].paused);
  EXPECT_TRUE(plan.periods[4].resumes);
  EXPECT_EQ(plan.periods[4].energy_j, 200 * 3600);  // no resume cost: the full hour at 300 W
  // Limits only must run through the dirty hours: pausing emits far less.
  const auto limits_only = plan_power_limits(profile(), periods, work);
  EXPECT_LT(plan.carbon_g, 0.5 * limits_only.carbon_g);
}

TEST(DeadlinePlanner, IdlePausesCostTheIdlePowerAndEndingEarlyCostsNothing) {
  const auto periods = hours({100, 900, 100, 100, 900, 900});
  const double work = 2 * 360;  // two hours at full speed
  const auto plan = plan_with_pauses(profile(), periods, work, pause(PauseMode::kIdle), false);
  ASSERT_TRUE(plan.feasible);
  EXPECT_TRUE(plan.periods[1].paused);
  EXPECT_DOUBLE_EQ(plan.periods[1].energy_j, 30 * 3600);  // held at the idle power
  // The work is done by hour 4: the dirty tail is not idled through, the job has ended.
  EXPECT_TRUE(plan.periods[4].paused);
  EXPECT_EQ(plan.periods[4].energy_j, 0);
  EXPECT_EQ(plan.periods[5].energy_j, 0);
}

TEST(DeadlinePlanner, AResumeCostingMoreThanThePauseSavesKeepsTheJobRunning) {
  const auto periods = hours({300, 330, 300, 300});
  const double work = 2.5 * 360;
  const auto cheap = plan_with_pauses(profile(), periods, work, pause(PauseMode::kRelease), false);
  bool paused = false;
  for (const auto& p : cheap.periods) paused |= p.paused;
  EXPECT_TRUE(paused) << "a free resume makes the slightly dirtier hour worth skipping";
  auto costly = pause(PauseMode::kRelease, 600);
  costly.resume_energy_j = 5e6;  // more than the dirtier hour could save
  const auto plan = plan_with_pauses(profile(), periods, work, costly, false);
  ASSERT_TRUE(plan.feasible);
  int resumes = 0;
  for (std::size_t t = 0; t + 1 < plan.periods.size(); ++t) {
    // Only the end may be "paused" (the job is done then).
    if (plan.periods[t].paused) {
      EXPECT_TRUE(plan.periods[t + 1].paused) << t;
    }
    resumes += plan.periods[t].resumes ? 1 : 0;
  }
  EXPECT_EQ(resumes, 0);
}

TEST(DeadlinePlanner, APausedJobPaysItsResumeBeforeItsFirstWork) {
  const auto periods = hours({100, 100, 100});
  const double work = 2 * 360;
  const auto plan = plan_with_pauses(profile(), periods, work, pause(PauseMode::kRelease, 600),
                                     /*paused_now=*/true);
  ASSERT_TRUE(plan.feasible);
  std::size_t first_run = 0;
  while (plan.periods[first_run].paused) ++first_run;
  EXPECT_TRUE(plan.periods[first_run].resumes);
  EXPECT_LE(plan.periods[first_run].work, 0.1 * (3600 - 600) + 1e-9);
}

TEST(DeadlinePlanner, WhenTheWorkCannotBeDoneEveryPeriodRunsAtTheFastestLimit) {
  const auto plan =
      plan_with_pauses(profile(), hours({100, 900}), 2 * 360 + 1, pause(PauseMode::kIdle), false);
  EXPECT_FALSE(plan.feasible);
  for (const auto& p : plan.periods) {
    EXPECT_FALSE(p.paused);
    EXPECT_EQ(p.power_limit_w, 300);
  }
  // Paused now, the resume's time counts: exactly two hours of work no longer fit.
  EXPECT_FALSE(
      plan_with_pauses(profile(), hours({100, 100}), 2 * 360, pause(PauseMode::kRelease, 60), true)
          .feasible);
}

TEST(DeadlinePlanner, TheWorkIsMetAcrossManyRandomisedPlans) {
  // Distinct intensities: where many periods tie (a periodic series), the multiplier flips them
  // all at once and the plan overshoots by the tied periods (docs/ALGORITHMS.md §3.7).
  std::mt19937 random(16);
  std::uniform_real_distribution<double> noise(-40, 40);
  std::vector<double> intensities;
  for (int i = 0; i < 96; ++i) intensities.push_back(300 + 220 * std::sin(i * 0.7) + noise(random));
  const auto periods = hours(intensities);
  for (const double fraction : {0.1, 0.3, 0.5, 0.8, 0.99}) {
    for (const auto mode : {PauseMode::kIdle, PauseMode::kRelease}) {
      const double work = fraction * 96 * 360;
      const auto plan = plan_with_pauses(profile(), periods, work, pause(mode, 120), false);
      SCOPED_TRACE(std::to_string(fraction) + " " + std::string(to_string(mode)));
      ASSERT_TRUE(plan.feasible);
      EXPECT_GE(plan.work, work * (1 - 1e-9));
      // The plan may overshoot the work by part of a period (the relaxation's gap), but for the
      // work it does no plan with limits only emits less.
      EXPECT_LE(plan.carbon_g,
                plan_power_limits(profile(), periods, plan.work).carbon_g * (1 + 1e-9));
      EXPECT_LE(plan.work, work + 360) << "overshoots by less than an hour at full speed";
    }
  }
}

TEST(DeadlinePlanner, BadPauseOptionsAndNamesAreRefused) {
  auto options = pause(PauseMode::kIdle);
  options.idle_power_w = -1;
  EXPECT_THAT(error_message([&] { check_pause_options(options); }, ErrorCode::kInvalidArgument),
              HasSubstr("idle power"));
  options = pause(PauseMode::kIdle, NAN);
  EXPECT_THAT(error_message([&] { plan_with_pauses(profile(), hours({1}), 1, options, false); },
                            ErrorCode::kInvalidArgument),
              HasSubstr("resume"));
  EXPECT_THAT(error_message([&] { parse_pause_mode("nap"); }, ErrorCode::kInvalidArgument),
              HasSubstr("none, idle or release"));
  EXPECT_EQ(parse_pause_mode("release"), PauseMode::kRelease);
  EXPECT_EQ(to_string(PauseMode::kIdle), "idle");
}

// ---- The policy ----

const UtcTime kStart = *parse_utc_time("2026-01-01T00:00:00Z");

// Hourly: clean, then `dirty_hours` dirty, then clean again, over two days.
std::shared_ptr<CarbonSignal> window_signal(const std::shared_ptr<ManualClock>& clock,
                                            int dirty_from, int dirty_hours) {
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (int i = 0; i < 48; ++i) {
    times.push_back(kStart + std::chrono::hours(i));
    values.push_back(i >= dirty_from && i < dirty_from + dirty_hours ? 900 : 100);
  }
  CarbonSignalOptions options;
  options.clock = clock;
  options.horizon = 48h;
  return std::make_shared<CarbonSignal>(
      make_replay_provider(CarbonSeries(times, values, 1h, "window"), clock), options);
}

JobProgress job(double total, double done = 0) {
  JobProgress progress;
  progress.start = kStart;
  progress.work_total = total;
  progress.work_done = done;
  return progress;
}

TEST(DeadlinePolicy, PausesThroughADirtyWindowWithThePlannedResumeTime) {
  auto clock = std::make_shared<ManualClock>(kStart);
  PlannerOptions options;
  options.slowdown_budget = 1.0;  // 2 h of work at full speed, 4 h to do it
  options.pause = pause(PauseMode::kIdle);
  auto policy = make_limit_policy(options, 30min, window_signal(clock, 0, 2));
  const auto p = profile();
  policy->begin(kStart);
  policy->enter_period(kStart);
  const auto decision = policy->decide({kStart, &p, 300, job(720)});
  ASSERT_TRUE(decision.pause);
  EXPECT_FALSE(decision.limit_w);
  EXPECT_EQ(decision.pause->mode, PauseMode::kIdle);
  EXPECT_EQ(decision.pause->resume_at, kStart + 2h);
  EXPECT_THAT(decision.reason, HasSubstr("pause (idle) until"));
  // Paused at hour 2 with everything left: the plan must run now (and resumes).
  clock->advance(std::chrono::nanoseconds(2h));
  policy->enter_period(kStart + 2h);
  auto progress = job(720);
  progress.paused = true;
  const auto resume = policy->decide({kStart + 2h, &p, 300, progress});
  EXPECT_FALSE(resume.pause);
  ASSERT_TRUE(resume.limit_w);
  EXPECT_THAT(resume.reason, HasSubstr("resume at"));
}

TEST(DeadlinePolicy, CatchesUpAtTheFastestLimitWhenBehind) {
  auto clock = std::make_shared<ManualClock>(kStart + 3h);
  PlannerOptions options;
  options.slowdown_budget = 1.0;
  options.pause = pause(PauseMode::kRelease);
  auto policy = make_limit_policy(options, 30min, window_signal(clock, 0, 48));
  const auto p = profile();
  policy->enter_period(kStart + 3h);
  // 1.5 h of work at full speed left, 1 h to the deadline: late, so flat out, never a pause.
  const auto decision = policy->decide({kStart + 3h, &p, 300, job(720, 180)});
  EXPECT_FALSE(decision.pause);
  EXPECT_EQ(decision.limit_w, 300);
  EXPECT_THAT(decision.reason, HasSubstr("catching up"));
}

TEST(DeadlinePolicy, RefusesToPlanAPauseWithAnIdlePowerAboveTheMinimumLimitsPower) {
  auto clock = std::make_shared<ManualClock>(kStart);
  PlannerOptions options;
  options.slowdown_budget = 1.0;
  options.pause = pause(PauseMode::kIdle);
  options.pause.idle_power_w = 150;  // the 100 W limit draws 100 W
  auto policy = make_limit_policy(options, 30min, window_signal(clock, 0, 2));
  const auto p = profile();
  policy->enter_period(kStart);
  const auto decision = policy->decide({kStart, &p, 300, job(720)});
  EXPECT_FALSE(decision.pause);
  EXPECT_THAT(decision.reason, HasSubstr("no pause: the idle power 150 W"));
}

TEST(DeadlinePolicy, SaysWhenTheForecastStopsShortOfTheDeadline) {
  auto clock = std::make_shared<ManualClock>(kStart);
  PlannerOptions options;
  options.slowdown_budget = 20;  // a deadline 42 h away, past the 24 h the signal forecasts
  options.pause = pause(PauseMode::kRelease);
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (int i = 0; i < 24; ++i)
    times.push_back(kStart + std::chrono::hours(i)), values.push_back(300);
  CarbonSignalOptions signal;
  signal.clock = clock;
  signal.horizon = 24h;
  auto carbon = std::make_shared<CarbonSignal>(
      make_replay_provider(CarbonSeries(times, values, 1h, "day"), clock), signal);
  auto policy = make_limit_policy(options, 30min, carbon);
  const auto p = profile();
  policy->enter_period(kStart);
  const auto decision = policy->decide({kStart, &p, 300, job(720)});
  EXPECT_THAT(decision.reason, HasSubstr("the forecast covers 48 of the 84 periods"));
}

}  // namespace
}  // namespace chase
