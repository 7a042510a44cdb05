// PeriodDriver with a scripted policy and a recording job: periods at UTC multiples, the hand-over
// from profiling mid-period, planned switches, a switch dropped at the boundary, and no decision
// without a profile.
#include "chase/period_driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace chase {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;

const UtcTime kStart = *parse_utc_time("2026-01-01T00:10:00Z");

// Decides 200 W, with a switch to 150 W ten minutes after each decision when asked to.
class ScriptedPolicy final : public LimitPolicy {
 public:
  explicit ScriptedPolicy(bool plan_switch)
      : LimitPolicy(30min, nullptr), plan_switch_(plan_switch) {}
  PolicyKind kind() const noexcept override { return PolicyKind::kPlanner; }
  LimitDecision decide(const DecisionInput& input) override {
    decisions.push_back(input.now);
    LimitDecision decision;
    decision.limit_w = 200;
    decision.reason = "scripted";
    if (plan_switch_) decision.planned_switch = LimitSwitch{input.now + 10min, 150};
    return decision;
  }
  std::vector<UtcTime> decisions;

 private:
  bool plan_switch_;
};

class RecordingJob final : public ControlledJob {
 public:
  JobProgress progress() const override { return {}; }
  const LimitProfile* profile() const override { return has_profile ? &profile_ : nullptr; }
  double highest_limit_w() const override { return 300; }
  void apply_limit(double watts) override { limits.push_back(watts); }
  void period_began(UtcTime start, std::optional<double>) override { began.push_back(start); }
  void period_ended(UtcTime end) override { ended.push_back(end); }

  bool has_profile = true;
  std::vector<double> limits;
  std::vector<UtcTime> began, ended;

 private:
  LimitProfile profile_{{{300, 1, 1}}, {}};
};

TEST(PeriodDriver, PeriodsEndAtUtcMultiplesAndThePolicyTakesOverWhenProfilingEnds) {
  ScriptedPolicy policy(false);
  RecordingJob job;
  PeriodDriver driver(policy, job);
  driver.begin(kStart);
  EXPECT_EQ(driver.period_end(), kStart + 20min);
  driver.poll(kStart + 5min, false);  // still profiling
  EXPECT_TRUE(policy.decisions.empty());
  driver.poll(kStart + 12min, true);  // profiling just ended: decide at once, mid-period
  EXPECT_THAT(policy.decisions, ElementsAre(kStart + 12min));
  driver.poll(kStart + 15min, true);  // nothing due
  driver.poll(kStart + 21min, true);  // a boundary
  EXPECT_THAT(policy.decisions, ElementsAre(kStart + 12min, kStart + 21min));
  EXPECT_EQ(driver.period_end(), kStart + 50min);
  driver.end(kStart + 30min);
  EXPECT_THAT(job.began, ElementsAre(kStart, kStart + 21min));
  EXPECT_THAT(job.ended, ElementsAre(kStart + 21min, kStart + 30min));
  EXPECT_THAT(job.limits, ElementsAre(200, 200));
}

TEST(PeriodDriver, APlannedSwitchIsAppliedWhenDueAndDroppedAtTheBoundary) {
  ScriptedPolicy policy(true);
  RecordingJob job;
  PeriodDriver driver(policy, job);
  driver.begin(kStart);
  driver.poll(kStart, true);  // 200 W, switch to 150 W at +10 min
  EXPECT_EQ(driver.next_event(), kStart + 10min);
  driver.poll(kStart + 10min, true);
  EXPECT_THAT(job.limits, ElementsAre(200, 150));
  EXPECT_EQ(driver.next_event(), kStart + 20min) << "the period's end once the switch is done";
  driver.poll(kStart + 20min, true);  // a new decision, a new switch at +30 min
  driver.poll(kStart + 50min, true);  // past both the switch and the boundary: the boundary wins
  EXPECT_THAT(job.limits, ElementsAre(200, 150, 200, 200));
}

TEST(PeriodDriver, WithoutAProfileThePolicyIsNotAsked) {
  ScriptedPolicy policy(false);
  RecordingJob job;
  job.has_profile = false;
  PeriodDriver driver(policy, job);
  driver.poll(kStart, true);  // begins by itself
  EXPECT_TRUE(policy.decisions.empty());
  EXPECT_TRUE(job.limits.empty());
  EXPECT_TRUE(driver.controlling());
}

}  // namespace
}  // namespace chase
