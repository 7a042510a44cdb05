// simulate_carbon on the real data (skipped when ../shared/data is absent): ResNet-50/ImageNet at
// batch 256 on an A40 over CISO 2021. The acceptance property: the planner, given the slowdown
// chase(η = 0.24) actually incurred as its slack, cuts at least as much carbon as chase.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "chase/carbon_simulation.h"
#include "chase/zeus_trace.h"

namespace chase {
namespace {

namespace fs = std::filesystem;

fs::path data_dir() {
  const char* env = std::getenv("CHASE_DATA_DIR");
  return env && *env ? fs::path(env) : fs::path(CHASE_DEFAULT_DATA_DIR);
}

TEST(CarbonSimulationRealData, PlannerAtChasesSlowdownCutsAtLeastAsMuchCarbon) {
  const auto trace_dir = data_dir() / "zeus-trace";
  const auto carbon_file = data_dir() / "carbon/dacf/CISO_direct_emissions.csv";
  if (!fs::exists(trace_dir / "summary_power_a40.csv") || !fs::exists(carbon_file)) {
    GTEST_SKIP() << "no real data under " << data_dir();
  }
  const auto epochs =
      epoch_profile(ZeusTrace::load(trace_dir, "a40", zeus_workload("imagenet")), 256);
  CarbonCsvOptions csv;
  csv.fill = GapFill::kPrevious;
  const auto carbon = load_carbon_csv(carbon_file, csv);

  CarbonSimulationOptions options;
  options.epochs = 40;
  options.forecast_model = "auto";
  double chase_carbon = 0, chase_time = 0, default_time = 0;
  std::vector<UtcTime> starts;
  for (const char* start : {"2021-02-10T07:00:00Z", "2021-06-20T15:00:00Z", "2021-10-05T22:00:00Z"}) {
    options.start = *parse_utc_time(start);
    starts.push_back(options.start);
    options.policy = "default";
    default_time += simulate_carbon(epochs, carbon, options).time_s;
    options.policy = "chase";
    options.eta = 0.24;
    const auto chase = simulate_carbon(epochs, carbon, options);
    chase_carbon += chase.carbon_g;
    chase_time += chase.time_s;
  }
  double planner_carbon = 0;
  options.policy = "planner";
  options.slowdown_budget = std::max(0.0, chase_time / default_time - 1);
  for (const auto start : starts) {
    options.start = start;
    planner_carbon += simulate_carbon(epochs, carbon, options).carbon_g;
  }
  EXPECT_LE(planner_carbon, chase_carbon) << "slack " << options.slowdown_budget;
}

}  // namespace
}  // namespace chase
