// simulate_carbon on the real data (skipped when ../shared/data is absent): ResNet-50/ImageNet at
// batch 256 on an A40 over CISO 2021, against chase(η = 0.24) with the auto forecast.
// - The oracle given the time chase took from each start emits no more than chase: chase's run is
//   one of the schedules the oracle chooses from, so this holds exactly.
// - The planner given chase's mean slowdown as its slack (the acceptance comparison) cuts as much
//   carbon as chase up to its forecast error: on CISO it loses up to 0.1 percentage point of the
//   default's carbon (docs/REPRODUCTION.md), so the test allows 0.25 pp and no more.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "chase/carbon_simulation.h"
#include "chase/zeus_trace.h"
#include "support/real_data.h"

namespace chase {
namespace {

namespace fs = std::filesystem;

fs::path data_dir() {
  const char* env = std::getenv("CHASE_DATA_DIR");
  return env && *env ? fs::path(env) : fs::path(CHASE_DEFAULT_DATA_DIR);
}

TEST(CarbonSimulationRealData, OracleNeverBeatenByChaseAndPlannerWithinForecastErrorOfIt) {
  const auto trace_dir = data_dir() / "zeus-trace";
  const auto carbon_file = data_dir() / "carbon/dacf/CISO_direct_emissions.csv";
  CHASE_SKIP_UNLESS_REAL_DATA(trace_dir / "summary_power_a40.csv");
  CHASE_SKIP_UNLESS_REAL_DATA(carbon_file);
  const auto epochs =
      epoch_profile(ZeusTrace::load(trace_dir, "a40", zeus_workload("imagenet")), 256);
  CarbonCsvOptions csv;
  csv.fill = GapFill::kPrevious;
  const auto carbon = load_carbon_csv(carbon_file, csv);

  CarbonSimulationOptions options;
  options.epochs = 40;
  options.forecast_model = "auto";
  double chase_carbon = 0, chase_time = 0, default_time = 0, default_carbon = 0;
  std::vector<UtcTime> starts;
  for (const char* start :
       {"2021-02-10T07:00:00Z", "2021-06-20T15:00:00Z", "2021-10-05T22:00:00Z"}) {
    options.start = *parse_utc_time(start);
    starts.push_back(options.start);
    options.policy = FixedLimitOptions{};
    const auto baseline = simulate_carbon(epochs, carbon, options);
    default_time += baseline.time_s;
    default_carbon += baseline.carbon_g;
    options.policy = ChaseOptions{.eta = 0.24};
    const auto chase = simulate_carbon(epochs, carbon, options);
    chase_carbon += chase.carbon_g;
    chase_time += chase.time_s;
    options.policy = OracleOptions{.slowdown_budget = chase.time_s / baseline.time_s - 1};
    const auto oracle = simulate_carbon(epochs, carbon, options);
    EXPECT_LE(oracle.carbon_g, chase.carbon_g * (1 + 1e-9)) << start;
    EXPECT_LE(oracle.time_s, chase.time_s * (1 + 1e-9)) << start;
  }
  double planner_carbon = 0;
  const double slack = std::max(0.0, chase_time / default_time - 1);
  options.policy = PlannerOptions{.slowdown_budget = slack};
  for (const auto start : starts) {
    options.start = start;
    planner_carbon += simulate_carbon(epochs, carbon, options).carbon_g;
  }
  EXPECT_LE(planner_carbon, chase_carbon + 0.0025 * default_carbon) << "slack " << slack;
  EXPECT_LT(chase_carbon, 0.9 * default_carbon);  // chase cuts carbon at all (paper: 13.6 %)
}

}  // namespace
}  // namespace chase
