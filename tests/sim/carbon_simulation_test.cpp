// simulate_carbon on a hand-made trace (two batch sizes, three limits) and synthetic carbon series:
// the fluid model's exact sums, profiling at the mean cost, the policies' defining properties, and
// the errors.
#include "chase/carbon_simulation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "chase/error.h"
#include "chase/zeus_trace.h"
#include "support/errors.h"
#include "support/small_zeus_trace.h"

namespace chase {
namespace {

using testing::error_message;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// The A40 trace of support/small_zeus_trace.h (batch 256: 300 W → 100 s at 200 W, 200 W → 120 s at
// 150 W, 100 W → 200 s at 100 W).
constexpr const char* kPower = testing::kSmallA40TracePower;
constexpr const char* kTrain = testing::kSmallA40TraceTrain;

const UtcTime kTraceStart = *parse_utc_time("2021-01-01T00:00:00Z");

// Hourly points for `days` days, the value of hour i given by `value`.
CarbonSeries hourly(std::size_t days, const std::function<double(std::size_t)>& value) {
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (std::size_t i = 0; i < days * 24; ++i) {
    times.push_back(kTraceStart + std::chrono::hours(i));
    values.push_back(value(i));
  }
  return CarbonSeries(std::move(times), std::move(values), std::chrono::hours(1), "synthetic");
}

// Clean nights, dirty days: 100 g/kWh from 18:00 to 06:00, 500 g/kWh otherwise.
double day_night(std::size_t hour) {
  const auto h = hour % 24;
  return h >= 6 && h < 18 ? 500.0 : 100.0;
}

class CarbonSimulationTest : public ::testing::Test {
 protected:
  CarbonSimulationTest()
      : dir_(fs::temp_directory_path() / ("chase_carbon_sim_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / "summary_power_a40.csv") << kPower;
    std::ofstream(dir_ / "summary_train.csv") << kTrain;
  }
  ~CarbonSimulationTest() override { fs::remove_all(dir_); }

  LimitProfile profile(std::size_t batch = 256) const {
    return epoch_profile(ZeusTrace::load(dir_, "a40", zeus_workload("imagenet")), batch);
  }

  static CarbonSimulationOptions options(const std::string& policy, double epochs = 10,
                                         const PolicyParameters& parameters = {}) {
    CarbonSimulationOptions o;
    o.policy = parse_policy(policy, parameters);
    o.epochs = epochs;
    o.start = kTraceStart + std::chrono::hours(48);
    o.forecast_model = "persistence";
    o.fit_history = std::chrono::hours(48);
    return o;
  }

  fs::path dir_;
};

TEST_F(CarbonSimulationTest, EpochProfileHasOnePointPerLimitInDescendingOrder) {
  const auto p = profile();
  ASSERT_EQ(p.points().size(), 3u);
  EXPECT_EQ(p.points()[0].power_limit_w, 300);
  EXPECT_EQ(p.points()[2].power_limit_w, 100);
  EXPECT_DOUBLE_EQ(p.points()[1].time_s, 120);
  EXPECT_DOUBLE_EQ(p.points()[1].energy_j, 18000);
  EXPECT_EQ(p.max_power_limit_w(), 300);
}

TEST_F(CarbonSimulationTest, DefaultRunsAtTheMaxLimitWithExactSums) {
  const auto carbon = hourly(10, [](std::size_t) { return 400.0; });
  const auto result = simulate_carbon(profile(), carbon, options("default", 10));
  EXPECT_DOUBLE_EQ(result.time_s, 1000);
  EXPECT_DOUBLE_EQ(result.energy_j, 200000);
  EXPECT_NEAR(result.carbon_g, 200000 / 3.6e6 * 400, 1e-9);
  EXPECT_DOUBLE_EQ(result.epochs, 10);
  for (const auto& segment : result.timeline) {
    EXPECT_EQ(segment.power_limit_w, 300);
    EXPECT_FALSE(segment.profiling);
    EXPECT_TRUE(std::isnan(segment.forecast_intensity));
  }
}

TEST_F(CarbonSimulationTest, SegmentsStopAtPeriodBoundariesAndTheJobEndsMidPeriod) {
  const auto carbon = hourly(10, day_night);
  auto o = options("default", 25);  // 2500 s: 30 min + 30 min + 700 s from a whole hour
  const auto result = simulate_carbon(profile(), carbon, o);
  ASSERT_EQ(result.timeline.size(), 2u);
  EXPECT_DOUBLE_EQ(result.timeline[0].duration_s, 1800);
  EXPECT_DOUBLE_EQ(result.timeline[1].duration_s, 700);
  EXPECT_DOUBLE_EQ(result.time_s, 2500);
}

TEST_F(CarbonSimulationTest, TheProfilingEpochCostsTheMeanOverLimits) {
  const auto carbon = hourly(10, [](std::size_t) { return 300.0; });
  auto o = options("zeus", 5, {.eta = 1});  // energy only: 200 W (18 kJ an epoch)
  const auto result = simulate_carbon(profile(), carbon, o);
  ASSERT_FALSE(result.timeline.empty());
  EXPECT_TRUE(result.timeline[0].profiling);
  EXPECT_NEAR(result.time_s, (100 + 120 + 200) / 3.0 + 4 * 120, 1e-6);
  EXPECT_NEAR(result.energy_j, (20000 + 18000 + 20000) / 3.0 + 4 * 18000, 1e-6);
  EXPECT_EQ(result.timeline.back().power_limit_w, 200);
  ASSERT_EQ(result.decisions.size(), 1u);
  EXPECT_THAT(result.decisions[0].reason, HasSubstr("zeus(eta=1"));
}

TEST_F(CarbonSimulationTest, ChaseLowersTheLimitWhenTheGridIsDirty) {
  const auto carbon = hourly(10, day_night);
  // From 02:00 to 07:37: clean hours, then dirty ones.
  auto o = options("chase", 200, {.eta = 0.9, .max_carbon_intensity = 800});
  o.start += std::chrono::hours(2);
  const auto result = simulate_carbon(profile(), carbon, o);
  bool lowered_when_dirty = false;
  for (const auto& s : result.timeline) {
    if (s.profiling) continue;
    // Persistence forecasts the last known hour; judge on periods whose forecast was right.
    if (s.forecast_intensity == 500 && s.carbon_intensity == 500) {
      EXPECT_EQ(s.power_limit_w, 200) << format_utc_time(s.start);
      lowered_when_dirty = true;
    }
    if (s.forecast_intensity == 100 && s.carbon_intensity == 100) {
      EXPECT_EQ(s.power_limit_w, 300) << format_utc_time(s.start);
    }
  }
  EXPECT_TRUE(lowered_when_dirty);
  EXPECT_EQ(result.max_carbon_intensity, 800);
}

TEST_F(CarbonSimulationTest, ChaseTakesCiMaxFromTheDayBeforeTheStart) {
  auto carbon = hourly(10, [](std::size_t hour) { return hour == 30 ? 900.0 : 200.0; });
  const auto result = simulate_carbon(profile(), carbon, options("chase", 3));
  EXPECT_EQ(result.max_carbon_intensity, 900);
}

TEST_F(CarbonSimulationTest, PlannerStaysWithinItsBudgetAndOracleDoesAtLeastAsWell) {
  const auto carbon = hourly(20, day_night);
  const auto base = simulate_carbon(profile(), carbon, options("default", 300));
  for (const double slack : {0.05, 0.2, 0.6}) {
    auto o = options("planner", 300, {.slowdown_budget = slack});
    const auto planner = simulate_carbon(profile(), carbon, o);
    o.policy = OracleOptions{.slowdown_budget = slack};
    const auto oracle = simulate_carbon(profile(), carbon, o);
    EXPECT_LE(planner.time_s, (1 + slack) * base.time_s + 1e-6) << slack;
    EXPECT_LE(oracle.time_s, (1 + slack) * base.time_s + 1e-6) << slack;
    EXPECT_LE(oracle.carbon_g, planner.carbon_g + 1e-6) << slack;
    EXPECT_LT(oracle.carbon_g, base.carbon_g) << slack;
    EXPECT_EQ(oracle.forecast, "perfect");
    EXPECT_EQ(planner.forecast, "persistence");
    EXPECT_NEAR(planner.epochs, 300, 1e-9);
  }
}

TEST_F(CarbonSimulationTest, EmissionsUseTheTrueIntensityNotTheForecast) {
  const auto carbon = hourly(10, day_night);
  const auto result = simulate_carbon(profile(), carbon, options("chase", 100));
  double carbon_g = 0;
  for (const auto& s : result.timeline) {
    EXPECT_NEAR(
        s.carbon_g,
        s.energy_j / 3.6e6 *
            day_night(static_cast<std::size_t>((s.start - kTraceStart) / std::chrono::hours(1))),
        1e-9);
    carbon_g += s.carbon_g;
  }
  EXPECT_NEAR(result.carbon_g, carbon_g, 1e-9);
}

TEST_F(CarbonSimulationTest, BadInputIsRejectedWithAClearMessage) {
  const auto carbon = hourly(3, day_night);
  const auto p = profile();
  EXPECT_THAT(error_message([&] { options("greedy"); }, ErrorCode::kInvalidArgument),
              HasSubstr("unknown policy"));
  auto o = options("default");
  o.start = kTraceStart - std::chrono::hours(1);
  EXPECT_THAT(error_message([&] { simulate_carbon(p, carbon, o); }, ErrorCode::kInvalidArgument),
              HasSubstr("outside"));
  o = options("default", 1000);  // 1000 × 100 s is longer than the day left in the trace
  EXPECT_THAT(error_message([&] { simulate_carbon(p, carbon, o); }, ErrorCode::kInvalidArgument),
              HasSubstr("before the job"));
  o = options("default", 0);
  EXPECT_THAT(error_message([&] { simulate_carbon(p, carbon, o); }, ErrorCode::kInvalidArgument),
              HasSubstr("epochs"));
  o = options("default");
  o.period = std::chrono::seconds(0);
  EXPECT_THAT(error_message([&] { simulate_carbon(p, carbon, o); }, ErrorCode::kInvalidArgument),
              HasSubstr("period"));
  o = options("chase", 10, {.eta = 1.5});
  EXPECT_THAT(error_message([&] { simulate_carbon(p, carbon, o); }, ErrorCode::kInvalidArgument),
              HasSubstr("eta"));
  o = options("planner", 10, {.slowdown_budget = -0.1});
  EXPECT_THAT(error_message([&] { simulate_carbon(p, carbon, o); }, ErrorCode::kInvalidArgument),
              HasSubstr("slack"));
  o = options("chase");
  o.forecast_model = "crystal-ball";
  EXPECT_THAT(error_message([&] { simulate_carbon(p, carbon, o); }, ErrorCode::kInvalidArgument),
              HasSubstr("crystal-ball"));
  o = options("chase");
  o.start = kTraceStart;  // no day before it for CI_max, no history for the forecaster
  EXPECT_THAT(error_message([&] { simulate_carbon(p, carbon, o); }, ErrorCode::kInvalidArgument),
              HasSubstr("start"));
  const auto trace = ZeusTrace::load(dir_, "a40", zeus_workload("imagenet"));
  EXPECT_THAT(error_message([&] { epoch_profile(trace, 1024); }, ErrorCode::kNotFound),
              HasSubstr("256, 512"));
}

}  // namespace
}  // namespace chase
