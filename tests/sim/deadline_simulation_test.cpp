// Deadline mode in simulate_carbon: on a synthetic trace with dirty windows the oracle and the
// planner pause through them and never miss the deadline; resumes cost their time; bad input is
// refused with what would work. On the real data (skipped when ../shared/data is absent): the
// acceptance of issue 16 — the oracle with pausing against the issue's table, and the planner with
// the auto forecast never late and within 1.5 pp of the oracle at slack 0.5.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <optional>

#include "chase/carbon_simulation.h"
#include "chase/error.h"
#include "chase/planner.h"
#include "chase/zeus_trace.h"
#include "support/errors.h"
#include "support/real_data.h"
#include "support/small_zeus_trace.h"

namespace chase {
namespace {

using testing::error_message;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

const UtcTime kTraceStart = *parse_utc_time("2021-01-01T00:00:00Z");

// Hourly for ten days: three dirty hours (600 g/kWh) then three clean ones (100 g/kWh).
CarbonSeries dirty_windows() {
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (int i = 0; i < 240; ++i) {
    times.push_back(kTraceStart + std::chrono::hours(i));
    values.push_back(i % 6 < 3 ? 600 : 100);
  }
  return CarbonSeries(std::move(times), std::move(values), std::chrono::hours(1), "windows");
}

class DeadlineSimulation : public ::testing::Test {
 protected:
  DeadlineSimulation()
      : dir_(fs::temp_directory_path() / ("chase_deadline_sim_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / "summary_power_a40.csv") << testing::kSmallA40TracePower;
    std::ofstream(dir_ / "summary_train.csv") << testing::kSmallA40TraceTrain;
    profile_ = epoch_profile(ZeusTrace::load(dir_, "a40", zeus_workload("imagenet")), 256);
  }
  ~DeadlineSimulation() override { fs::remove_all(dir_); }

  // 100 epochs (10 000 s at 300 W), from hour 50 (a dirty window's second hour).
  static CarbonSimulationOptions options(PolicyKind kind, double slack, PauseMode mode,
                                         double resume_s = 0) {
    PolicyParameters parameters;
    parameters.slowdown_budget = slack;
    parameters.pause.mode = mode;
    parameters.pause.resume_s = resume_s;
    CarbonSimulationOptions o;
    o.policy = make_policy_options(kind, parameters);
    o.epochs = 100;
    o.start = kTraceStart + std::chrono::hours(49);
    o.forecast_model = "persistence";
    o.fit_history = std::chrono::hours(48);
    return o;
  }

  fs::path dir_;
  std::optional<LimitProfile> profile_;
  CarbonSeries carbon_ = dirty_windows();
};

TEST_F(DeadlineSimulation, TheOraclePausesThroughDirtyWindowsAndMeetsItsDeadline) {
  const auto base = simulate_carbon(*profile_, carbon_, options(PolicyKind::kDefault, 0, {}));
  const double deadline_s = 2 * base.time_s;  // slack 1
  const auto limits =
      simulate_carbon(*profile_, carbon_, options(PolicyKind::kOracle, 1, PauseMode::kNone));
  for (const auto mode : {PauseMode::kIdle, PauseMode::kRelease}) {
    SCOPED_TRACE(to_string(mode));
    const auto oracle = simulate_carbon(*profile_, carbon_, options(PolicyKind::kOracle, 1, mode));
    EXPECT_NEAR(oracle.epochs, 100, 1e-9);
    EXPECT_LE(oracle.time_s, deadline_s + 1e-6);
    EXPECT_GT(oracle.paused_s, 3600);
    EXPECT_GE(oracle.resumes, 1u);
    EXPECT_LT(oracle.carbon_g, 0.8 * limits.carbon_g) << "pausing must pay on this trace";
    double paused_s = 0, energy_j = 0;
    for (const auto& s : oracle.timeline) {
      if (s.paused) {
        paused_s += s.duration_s;
        EXPECT_EQ(s.epochs, 0);
        EXPECT_NEAR(s.energy_j, (mode == PauseMode::kIdle ? 30 : 0) * s.duration_s, 1e-6);
      }
      energy_j += s.energy_j;
    }
    EXPECT_NEAR(paused_s, oracle.paused_s, 1e-6);
    EXPECT_NEAR(energy_j, oracle.energy_j, 1e-6);
  }
}

TEST_F(DeadlineSimulation, ThePlannerOnAForecastNeverMissesItsDeadline) {
  for (int offset = 0; offset < 6; ++offset) {
    for (const double slack : {0.2, 0.5, 1.0}) {
      auto o = options(PolicyKind::kPlanner, slack, PauseMode::kRelease, 300);
      o.start += std::chrono::hours(offset);
      o.forecast_model = "persistence";  // a poor forecast: the plan must catch up
      const auto base = simulate_carbon(*profile_, carbon_, options(PolicyKind::kDefault, 0, {}));
      const auto run = simulate_carbon(*profile_, carbon_, o);
      SCOPED_TRACE(offset);
      EXPECT_NEAR(run.epochs, 100, 1e-9);
      EXPECT_LE(run.time_s, (1 + slack) * base.time_s + 1e-6) << slack;
    }
  }
}

TEST_F(DeadlineSimulation, EveryResumeTakesItsTimeWithoutWork) {
  const auto run =
      simulate_carbon(*profile_, carbon_, options(PolicyKind::kOracle, 1, PauseMode::kIdle, 300));
  ASSERT_GE(run.resumes, 1u);
  double resuming_s = 0;
  for (const auto& s : run.timeline) {
    if (!s.resuming) continue;
    resuming_s += s.duration_s;
    EXPECT_EQ(s.epochs, 0);
    EXPECT_GT(s.energy_j, 0);  // the lowest limit's power while reloading
  }
  EXPECT_NEAR(resuming_s, 300.0 * static_cast<double>(run.resumes), 1e-6);
}

TEST_F(DeadlineSimulation, BadInputSaysWhatWouldWork) {
  // The profiling epoch alone (140 s against 100 s) needs a slack of 0.004.
  EXPECT_THAT(error_message(
                  [&] {
                    simulate_carbon(*profile_, carbon_,
                                    options(PolicyKind::kOracle, 0.001, PauseMode::kIdle));
                  },
                  ErrorCode::kInvalidArgument),
              HasSubstr("give a slack of at least 0.0040"));
  auto o = options(PolicyKind::kOracle, 0.5, PauseMode::kIdle);
  std::get<OracleOptions>(o.policy).pause.idle_power_w = 120;  // 100 W at the 100 W limit
  EXPECT_THAT(
      error_message([&] { simulate_carbon(*profile_, carbon_, o); }, ErrorCode::kInvalidArgument),
      HasSubstr("above the 100.0 W the job draws at its minimum limit"));
  o = options(PolicyKind::kPlanner, 0.1, PauseMode::kRelease, 2000);  // slack ≈ 960 s
  EXPECT_THAT(
      error_message([&] { simulate_carbon(*profile_, carbon_, o); }, ErrorCode::kInvalidArgument),
      HasSubstr("more than the job's"));
  // Limits only: the small slack stays allowed, as before deadline mode.
  EXPECT_NO_THROW(
      simulate_carbon(*profile_, carbon_, options(PolicyKind::kOracle, 0.001, PauseMode::kNone)));
}

// ---- Real data: issue 16's acceptance ----

fs::path data_dir() { return testing::real_data_dir(); }

struct RealJob {
  LimitProfile epochs;
  std::map<std::string, CarbonSeries> carbon;
};

const RealJob& real_job() {
  static const RealJob job = [] {
    RealJob loaded{
        epoch_profile(ZeusTrace::load(data_dir() / "zeus-trace", "a40", zeus_workload("imagenet")),
                      256),
        {}};
    CarbonCsvOptions csv;
    csv.fill = GapFill::kPrevious;
    // With the day-ahead weather and generation forecasts, as `simulate carbon --exogenous` (the
    // planner's forecaster reads them up to 24 h ahead; the oracle and the baselines ignore them).
    csv.exogenous = true;
    for (const char* region : {"CISO", "PJM", "ERCO", "ISNE", "SE"}) {
      loaded.carbon.emplace(
          region,
          load_carbon_csv(
              data_dir() / "carbon/dacf" / (std::string(region) + "_direct_emissions.csv"), csv));
    }
    return loaded;
  }();
  return job;
}

// scripts/carbon-results' starts: 12 spread evenly over [2021-01-01, 2021-12-24], floored to the
// hour (chase/carbon_sweep.h).
std::vector<UtcTime> sweep_starts() {
  const auto from = *parse_utc_time("2021-01-01T00:00:00Z");
  const auto to = *parse_utc_time("2021-12-24T00:00:00Z");
  std::vector<UtcTime> starts;
  for (int i = 0; i < 12; ++i) {
    starts.push_back(std::chrono::floor<std::chrono::hours>(from + (to - from) / 11 * i));
  }
  return starts;
}

// The mean carbon change (in % of the default's) over the starts, and the runs.
struct CellResult {
  double change_percent = 0;
  std::vector<CarbonSimulationResult> runs;
};

CellResult run_cell(const std::string& region, const PolicyOptions& policy,
                    bool profiling_epoch = true) {
  const auto& job = real_job();
  const auto& carbon = job.carbon.at(region);
  CellResult cell;
  for (const auto start : sweep_starts()) {
    CarbonSimulationOptions options;
    options.epochs = 40;
    options.start = start;
    options.forecast_model = "auto";
    options.policy = FixedLimitOptions{};
    const auto base = simulate_carbon(job.epochs, carbon, options);
    options.policy = policy;
    options.profiling_epoch = profiling_epoch;
    cell.runs.push_back(simulate_carbon(job.epochs, carbon, options));
    cell.change_percent += 100 * (cell.runs.back().carbon_g / base.carbon_g - 1) / 12;
  }
  return cell;
}

PolicyOptions pausing(PolicyKind kind, double slack, PauseMode mode) {
  PolicyParameters parameters;
  parameters.slowdown_budget = slack;
  parameters.pause.mode = mode;
  parameters.pause.idle_power_w = 30;
  return make_policy_options(kind, parameters);
}

// The least carbon change (mean over the starts, % vs default) ANY schedule can reach in the
// simulator's model without a profiling epoch: the convex relaxation (§3.4's exact planner, a pause
// being one more point of the profile: no work, the idle power) over the true half-hour
// intensities to the deadline, and in idle mode over every end (the time after the job is free).
double lower_bound_percent(const std::string& region, double slack, PauseMode mode) {
  const auto& job = real_job();
  const auto& carbon = job.carbon.at(region);
  const double idle_w = mode == PauseMode::kIdle ? 30 : 0;
  auto points = job.epochs.points();
  points.push_back({1, 1e12, idle_w * 1e12 + 1e-3});  // ~(0 work, idle_w)
  const LimitProfile with_pause(points, job.epochs.info(), job.epochs.max_power_limit_w());
  const double epoch_s = job.epochs.highest_limit_point().time_s;  // also the fastest here
  const double deadline_s = (1 + slack) * 40 * epoch_s;
  double sum = 0;
  for (const auto start : sweep_starts()) {
    std::vector<PlanPeriod> periods;
    double best = INFINITY, seconds = 0;
    for (double t = 0; t < deadline_s; t += 1800) {
      const double d = std::min(1800.0, deadline_s - t);
      periods.push_back({d, emissions_g(kJoulesPerKwh, after_seconds(start, t),
                                        after_seconds(start, t + d), carbon)});
      seconds += d;
      const bool last = t + d >= deadline_s;
      if ((idle_w == 0 && !last) || seconds < 40 * epoch_s) continue;
      const auto plan = plan_power_limits(with_pause, periods, 40);
      if (plan.feasible) best = std::min(best, plan.carbon_g);
    }
    CarbonSimulationOptions options;
    options.epochs = 40;
    options.start = start;
    options.policy = FixedLimitOptions{};
    sum += best / simulate_carbon(job.epochs, carbon, options).carbon_g - 1;
  }
  return 100 * sum / 12;
}

// The issue's table: with perfect foresight, chase's oracle with pausing must be at least as good
// as the better of "limits only" and the reference planner's pause figure, less 0.5 pp. Measured
// as the reference was (the profile known before the start: no profiling epoch). Where the LP
// bound shows that no schedule in this model can reach the figure (docs/REPRODUCTION.md: ERCO at
// slack 0.5, PJM released at slack 1), the oracle must instead be within 0.3 pp of that bound.
TEST(DeadlineRealData, TheOracleWithPausingMatchesTheIssuesTable) {
  CHASE_SKIP_UNLESS_REAL_DATA(data_dir() / "zeus-trace/summary_power_a40.csv");
  CHASE_SKIP_UNLESS_REAL_DATA(data_dir() / "carbon/dacf/CISO_direct_emissions.csv");
  struct Cell {
    const char* region;
    double slack;
    double limits_only, idle, release;  // the issue's table, % vs default
  };
  const Cell table[] = {
      {"CISO", 0.2, -18.9, -20.0, -22.2}, {"CISO", 0.5, -18.9, -22.6, -29.3},
      {"ERCO", 0.5, -18.4, -22.6, -27.3}, {"PJM", 0.5, -18.2, -15.4, -20.9},
      {"CISO", 1.0, -18.9, -23.3, -37.7}, {"ERCO", 1.0, -18.4, -20.4, -29.3},
      {"PJM", 1.0, -18.2, -11.0, -22.5},
  };
  int unreachable = 0;
  for (const auto& cell : table) {
    for (const auto mode : {PauseMode::kIdle, PauseMode::kRelease}) {
      SCOPED_TRACE(fmt::format("{} slack {} {}", cell.region, cell.slack, to_string(mode)));
      const double target =
          std::min(cell.limits_only, mode == PauseMode::kIdle ? cell.idle : cell.release) + 0.5;
      const double bound = lower_bound_percent(cell.region, cell.slack, mode);
      const auto oracle =
          run_cell(cell.region, pausing(PolicyKind::kOracle, cell.slack, mode), false);
      EXPECT_GE(oracle.change_percent, bound - 1e-6) << "nothing beats the relaxation";
      EXPECT_LE(oracle.change_percent, bound + 0.3) << "the oracle is near the optimum";
      if (bound <= target) {
        EXPECT_LE(oracle.change_percent, target);
      } else {
        ++unreachable;
      }
    }
  }
  EXPECT_LE(unreachable, 3) << "only ERCO 0.5 (both modes) and PJM 1.0 released are out of reach";
}

// With the auto forecast the planner is never late, in any region, mode or start, and its carbon is
// within the issue's 1.5 pp of the oracle's in every region (0.2-1.3 pp, docs/REPRODUCTION.md).
// The day-ahead inputs are what makes CISO and ERCO hold: from the intensity's history alone the
// gap there is 1.8-3.2 pp, since which hours to skip is more sensitive to the first day's forecast
// than which limit to run.
TEST(DeadlineRealData, ThePlannerNeverMissesADeadlineAndStaysNearTheOracle) {
  CHASE_SKIP_UNLESS_REAL_DATA(data_dir() / "zeus-trace/summary_power_a40.csv");
  CHASE_SKIP_UNLESS_REAL_DATA(data_dir() / "carbon/dacf/CISO_direct_emissions.csv");
  const double default_s = 40 * real_job().epochs.highest_limit_point().time_s;
  for (const char* region : {"CISO", "PJM", "ERCO", "ISNE", "SE"}) {
    for (const auto mode : {PauseMode::kIdle, PauseMode::kRelease}) {
      SCOPED_TRACE(std::string(region) + " " + std::string(to_string(mode)));
      const auto planner = run_cell(region, pausing(PolicyKind::kPlanner, 0.5, mode));
      const auto oracle = run_cell(region, pausing(PolicyKind::kOracle, 0.5, mode));
      for (const auto& run : planner.runs) {
        EXPECT_NEAR(run.epochs, 40, 1e-9);
        EXPECT_LE(run.time_s, 1.5 * default_s + 1e-6) << "never late";
      }
      EXPECT_GE(planner.change_percent, oracle.change_percent - 1e-6);
      EXPECT_LE(planner.change_percent - oracle.change_percent, 1.5);
    }
  }
}

}  // namespace
}  // namespace chase
