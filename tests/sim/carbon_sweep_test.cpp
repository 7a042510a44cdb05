// The carbon sweep experiment on the small A40 trace and a synthetic day/night carbon series: the
// plan's starts and configurations, the derived planner/oracle configurations and their links by
// index, the aggregates against the default, and the errors.
#include "chase/carbon_sweep.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "chase/error.h"
#include "chase/zeus_trace.h"
#include "support/errors.h"
#include "support/small_zeus_trace.h"

namespace chase {
namespace {

using testing::error_message;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

const UtcTime kTraceStart = *parse_utc_time("2021-01-01T00:00:00Z");

// 10 days of hourly intensity: clean nights (100 g/kWh from 18:00 to 06:00), dirty days (500).
CarbonSeries day_night() {
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (std::size_t i = 0; i < 240; ++i) {
    times.push_back(kTraceStart + std::chrono::hours(i));
    const auto h = i % 24;
    values.push_back(h >= 6 && h < 18 ? 500.0 : 100.0);
  }
  return CarbonSeries(std::move(times), std::move(values), std::chrono::hours(1), "synthetic");
}

class CarbonSweepTest : public ::testing::Test {
 protected:
  CarbonSweepTest()
      : dir_(fs::temp_directory_path() / ("chase_carbon_sweep_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / "summary_power_a40.csv") << testing::kSmallA40TracePower;
    std::ofstream(dir_ / "summary_train.csv") << testing::kSmallA40TraceTrain;
  }
  ~CarbonSweepTest() override { fs::remove_all(dir_); }

  LimitProfile profile() const {
    return epoch_profile(ZeusTrace::load(dir_, "a40", zeus_workload("imagenet")), 256);
  }

  static CarbonSweepOptions options() {
    CarbonSweepOptions o;
    o.base.epochs = 100;
    o.base.forecast_model = "persistence";
    o.base.fit_history = std::chrono::hours(48);
    o.etas = {0.5};
    o.slacks = {0.1};
    o.starts = 3;
    o.from = kTraceStart + std::chrono::hours(48);
    o.to = kTraceStart + std::chrono::hours(96);
    o.threads = 2;
    return o;
  }

  fs::path dir_;
};

TEST_F(CarbonSweepTest, ThePlanSpreadsWholeHourStartsAndListsTheFirstRound) {
  auto o = options();
  o.to += std::chrono::minutes(30);  // the middle start falls at 00:15 and is floored
  o.etas = {0.5, 0.24};
  const auto plan = plan_carbon_sweep(o);
  ASSERT_EQ(plan.starts.size(), 3u);
  EXPECT_EQ(plan.starts[0], o.from);
  EXPECT_EQ(plan.starts[1], o.from + std::chrono::hours(24));
  EXPECT_EQ(plan.starts[2], o.from + std::chrono::hours(48));
  std::vector<std::string> labels;
  std::vector<PolicyKind> kinds;
  for (const auto& c : plan.configs) labels.push_back(c.label), kinds.push_back(c.kind);
  EXPECT_THAT(labels,
              ::testing::ElementsAre("default", "zeus eta=0.5", "zeus eta=0.24", "chase eta=0.5",
                                     "chase eta=0.24", "planner slack=0.1", "oracle slack=0.1"));
  EXPECT_THAT(kinds,
              ::testing::ElementsAre(PolicyKind::kDefault, PolicyKind::kStatic, PolicyKind::kStatic,
                                     PolicyKind::kChase, PolicyKind::kChase, PolicyKind::kPlanner,
                                     PolicyKind::kOracle));
  EXPECT_EQ(kind_of(plan.configs[3].options.policy), PolicyKind::kChase);
  EXPECT_DOUBLE_EQ(std::get<OracleOptions>(plan.configs[6].options.policy).slowdown_budget, 0.1);
  EXPECT_EQ(plan.configs[5].oracle, 6u);
  EXPECT_EQ(plan.configs[6].oracle, 6u);
  EXPECT_FALSE(plan.configs[0].oracle);
  for (const auto& c : plan.configs) EXPECT_TRUE(c.runs.empty());
}

TEST_F(CarbonSweepTest, RunDerivesThePlannerAndOracleAtEachPolicysSlowdown) {
  const auto plan = plan_carbon_sweep(options());
  const auto result = run_carbon_sweep(plan, profile(), day_night());
  // default, zeus, chase, planner, oracle; planner + oracle @zeus, @chase and =chase.
  ASSERT_EQ(result.configs.size(), 11u);
  const auto& c = result.configs;
  EXPECT_EQ(c[5].label, "planner @zeus eta=0.5");
  EXPECT_EQ(c[7].label, "planner @chase eta=0.5");
  EXPECT_EQ(c[9].label, "planner =chase eta=0.5");
  EXPECT_EQ(c[10].label, "oracle =chase eta=0.5");
  for (std::size_t i = 5; i < 11; ++i) {
    EXPECT_EQ(c[i].kind, i % 2 == 1 ? PolicyKind::kPlanner : PolicyKind::kOracle) << i;
    EXPECT_EQ(c[i].slowdown_of, i < 7 ? 1u : 2u) << i;
    EXPECT_EQ(c[i].match, i < 9 ? SlowdownMatch::kMean : SlowdownMatch::kPerStart) << i;
  }
  // The "@" slack is the policy's mean slowdown; the "=" slacks each start's.
  EXPECT_DOUBLE_EQ(c[7].parameters.slowdown_budget, std::max(0.0, c[2].time_change_percent / 100));
  ASSERT_EQ(c[9].slack_per_start.size(), 3u);
  for (std::size_t s = 0; s < 3; ++s) {
    EXPECT_DOUBLE_EQ(c[9].slack_per_start[s],
                     std::max(0.0, c[2].runs[s].time_s / c[0].runs[s].time_s - 1));
  }
  // Gaps: zeus to the oracle at its mean slowdown, chase to the one at its per-start slowdowns.
  EXPECT_EQ(c[1].oracle, 6u);
  EXPECT_EQ(c[2].oracle, 10u);
  EXPECT_EQ(c[7].oracle, 8u);
  EXPECT_EQ(c[9].oracle, 10u);
  EXPECT_DOUBLE_EQ(c[10].gap_to_oracle_pp, 0);
  ASSERT_EQ(result.comparisons.size(), 2u);
  EXPECT_EQ(result.comparisons[0].chase, 2u);
  EXPECT_EQ(result.comparisons[0].planner, 7u);
  EXPECT_EQ(result.comparisons[1].planner, 9u);
  EXPECT_EQ(result.comparisons[1].match, SlowdownMatch::kPerStart);
}

TEST_F(CarbonSweepTest, AggregatesAreMeansAgainstTheDefaultFromTheSameStart) {
  const auto result = run_carbon_sweep(plan_carbon_sweep(options()), profile(), day_night());
  const auto& baseline = result.baseline();
  EXPECT_DOUBLE_EQ(baseline.carbon_change_percent, 0);
  EXPECT_DOUBLE_EQ(baseline.time_change_percent, 0);
  for (const auto& config : result.configs) {
    ASSERT_EQ(config.runs.size(), 3u) << config.label;
    double carbon = 0, time = 0, gap = 0;
    for (std::size_t s = 0; s < 3; ++s) {
      carbon += config.runs[s].carbon_g / baseline.runs[s].carbon_g - 1;
      time += config.runs[s].time_s / baseline.runs[s].time_s - 1;
      if (config.oracle) {
        gap += (config.runs[s].carbon_g - result.configs[*config.oracle].runs[s].carbon_g) /
               baseline.runs[s].carbon_g;
      }
    }
    EXPECT_NEAR(config.carbon_change_percent, 100 * carbon / 3, 1e-9) << config.label;
    EXPECT_NEAR(config.time_change_percent, 100 * time / 3, 1e-9) << config.label;
    if (config.oracle) {
      EXPECT_NEAR(config.gap_to_oracle_pp, 100 * gap / 3, 1e-9) << config.label;
    }
  }
  for (const auto& comparison : result.comparisons) {
    const double excess = result.configs[comparison.planner].carbon_change_percent -
                          result.configs[comparison.chase].carbon_change_percent;
    EXPECT_DOUBLE_EQ(comparison.planner_excess_pp, excess);
    EXPECT_EQ(comparison.planner_cuts_at_least_as_much, excess <= 0.01 + 1e-12);
  }
}

TEST_F(CarbonSweepTest, OneThreadAndManyGiveTheSameResult) {
  auto o = options();
  o.threads = 1;
  const auto one = run_carbon_sweep(plan_carbon_sweep(o), profile(), day_night());
  o.threads = 4;
  const auto many = run_carbon_sweep(plan_carbon_sweep(o), profile(), day_night());
  ASSERT_EQ(one.configs.size(), many.configs.size());
  for (std::size_t i = 0; i < one.configs.size(); ++i) {
    EXPECT_EQ(one.configs[i].carbon_change_percent, many.configs[i].carbon_change_percent);
  }
}

TEST_F(CarbonSweepTest, BadPlansAndFailingRunsThrow) {
  auto o = options();
  o.starts = 0;
  EXPECT_THAT(error_message([&] { plan_carbon_sweep(o); }, ErrorCode::kInvalidArgument),
              HasSubstr("at least one start"));
  o = options();
  o.to = o.from - std::chrono::hours(1);
  EXPECT_THAT(error_message([&] { plan_carbon_sweep(o); }, ErrorCode::kInvalidArgument),
              HasSubstr("no later than"));
  o = options();
  o.to = kTraceStart + std::chrono::hours(24 * 30);  // past the trace's end
  const auto plan = plan_carbon_sweep(o);
  error_message([&] { run_carbon_sweep(plan, profile(), day_night()); },
                ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace chase
