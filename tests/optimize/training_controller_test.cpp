// TrainingController on simulated GPUs in virtual time: chase lowers the limit in dirty periods and
// raises it in clean ones at period boundaries; the planner's realised slowdown matches its budget;
// no carbon data keeps the limit; the report; bad options; limits restored.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chase/carbon_provider.h"
#include "chase/error.h"
#include "chase/nvml.h"
#include "chase/simulated_gpu.h"
#include "chase/training.h"
#include "support/fake_nvml_env.h"

namespace chase {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

const UtcTime kStart = *parse_utc_time("2026-01-01T00:00:00Z");
constexpr double kSamplesPerStep = 512;

// 30-minute periods alternating clean (100) and dirty (600) for `hours`, from kStart.
CarbonSeries alternating_series(int hours) {
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (int i = 0; i < 2 * hours; ++i) {
    times.push_back(kStart + i * 30min);
    values.push_back(i % 2 == 0 ? 100 : 600);
  }
  return CarbonSeries(times, values, 30min, "synthetic alternating");
}

// A smooth synthetic day: dirty evening peak, clean midday.
CarbonSeries synthetic_day(int hours) {
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (int i = 0; i < 2 * hours; ++i) {
    times.push_back(kStart + i * 30min);
    values.push_back(350 + 200 * std::sin(2 * M_PI * i / 48.0));
  }
  return CarbonSeries(times, values, 30min, "synthetic day");
}

struct SimulatedJob {
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(kStart);
  std::shared_ptr<SimulatedGpuBackend> gpus =
      make_simulated_gpus(2, synthetic_demo_profile(), clock);

  SimulatedJob() { gpus->set_all_busy(true); }

  std::shared_ptr<CarbonSignal> signal(CarbonSeries series) const {
    CarbonSignalOptions options;
    options.clock = clock;
    options.horizon = 48h;
    return std::make_shared<CarbonSignal>(make_replay_provider(std::move(series), clock), options);
  }

  TrainingOptions options(std::string_view policy, std::shared_ptr<CarbonSignal> carbon) const {
    TrainingOptions options;
    options.policy = parse_policy(policy);
    options.carbon = std::move(carbon);
    options.clock = clock;
    options.profiling.warmup_steps = 2;
    options.profiling.profile_steps = 5;
    return options;
  }

  // One step: the GPUs work through a batch at their current limit's speed.
  void step(TrainingController& controller) const {
    controller.on_step_begin();
    clock->advance(Seconds(kSamplesPerStep / gpus->throughput(0)));
    controller.on_step_end();
  }
  void run_for(TrainingController& controller, std::chrono::seconds duration) const {
    controller.on_train_begin();
    const auto end = clock->utc_now() + duration;
    while (clock->utc_now() < end) step(controller);
    controller.on_train_end();
  }
  void run_steps(TrainingController& controller, std::size_t steps) const {
    controller.on_train_begin();
    for (std::size_t i = 0; i < steps; ++i) step(controller);
    controller.on_train_end();
  }
};

TEST(TrainingController, ChaseLowersTheLimitInDirtyPeriodsAndRaisesItInCleanOnes) {
  SimulatedJob job;
  TrainingController controller(job.gpus, job.options("chase", job.signal(alternating_series(8))));
  job.run_for(controller, 4h);
  const auto report = controller.report();
  ASSERT_EQ(report.periods.size(), 8u);
  EXPECT_TRUE(report.profiled);
  double clean_limit = 0, dirty_limit = 0;
  for (std::size_t i = 1; i < report.periods.size(); ++i) {
    SCOPED_TRACE(i);
    const auto& p = report.periods[i];
    // A period begins with the first step at or after its boundary (steps take about 1.6 s).
    EXPECT_GE(p.start, kStart + i * 30min) << "decisions happen at period boundaries";
    EXPECT_LT(p.start, kStart + i * 30min + 2s);
    EXPECT_LE(p.limits_w.size(), 2u) << "at most one change, at the boundary";
    const bool dirty = i % 2 == 1;
    EXPECT_EQ(p.carbon_intensity, dirty ? 600 : 100);
    EXPECT_THAT(p.reason, HasSubstr("chase(eta=0.5"));
    EXPECT_FALSE(p.candidates.empty());
    (dirty ? dirty_limit : clean_limit) = p.limits_w.back();
    if (i >= 2) {
      EXPECT_EQ(p.limits_w.back(), dirty ? dirty_limit : clean_limit) << "same CI, same limit";
    }
  }
  EXPECT_LT(dirty_limit, clean_limit);
  EXPECT_NEAR(report.time_s, 4 * 3600, 2);  // the last step may end past the 4 h
  EXPECT_GT(report.carbon_g, 0);
}

TEST(TrainingController, PlannerSpendsItsSlowdownBudgetAndNoMore) {
  for (const double budget : {0.05, 0.1, 0.25}) {
    SCOPED_TRACE(budget);
    SimulatedJob job;
    auto options = job.options("planner", job.signal(synthetic_day(24)));
    options.policy = PlannerOptions{.slowdown_budget = budget};
    options.total_steps = 30000;  // about 13 h at the highest limit
    TrainingController controller(job.gpus, options);
    job.run_steps(controller, options.total_steps);
    const auto report = controller.report();
    const auto profile = synthetic_demo_profile();
    const double time_at_max = 30000 * kSamplesPerStep / profile.throughput_at(300);
    const double slowdown = report.time_s / time_at_max - 1;
    EXPECT_NEAR(slowdown, budget, 0.005) << "realised slowdown within ±0.5 % of the run";
    EXPECT_EQ(report.steps, 30000u);
  }
}

TEST(TrainingController, APlannerWithoutSlackRunsTheFastestLimitAndSaysWhy) {
  SimulatedJob job;
  auto options = job.options("planner", job.signal(synthetic_day(24)));
  options.policy = PlannerOptions{
      .slowdown_budget = 0};  // profiling's slower limits already use more than the budget
  options.total_steps = 3000;
  TrainingController controller(job.gpus, options);
  job.run_steps(controller, options.total_steps);
  const auto report = controller.report();
  ASSERT_GE(report.periods.size(), 2u);
  EXPECT_THAT(report.periods[1].reason, HasSubstr("cannot be done by the deadline"));
  EXPECT_EQ(report.periods[1].limits_w.back(), 300);
}

TEST(TrainingController, PlannerEmitsLessThanRunningAtTheHighestLimit) {
  SimulatedJob planned_job, static_job;
  auto planned = planned_job.options("planner", planned_job.signal(synthetic_day(24)));
  planned.total_steps = 30000;
  TrainingController planner(planned_job.gpus, planned);
  planned_job.run_steps(planner, planned.total_steps);

  auto fastest = static_job.options("static", static_job.signal(synthetic_day(24)));
  fastest.profiling.selector = make_time_selector();
  TrainingController time_only(static_job.gpus, fastest);
  static_job.run_steps(time_only, planned.total_steps);
  EXPECT_LT(planner.report().carbon_g, 0.97 * time_only.report().carbon_g);
}

// A provider that is always down.
class DownProvider final : public CarbonProvider {
 public:
  std::string_view name() const noexcept override { return "down"; }
  CarbonPoint latest() override {
    throw Error(ErrorCode::kUnavailable, "down: connection refused");
  }
  CarbonSeries history(UtcTime, UtcTime) override { return latest(), CarbonSeries{}; }
  CarbonSeries forecast(std::chrono::seconds) override { return latest(), CarbonSeries{}; }
};

TEST(TrainingController, WithoutCarbonDataTheLimitIsKeptAndTheReportSaysSo) {
  SimulatedJob job;
  CarbonSignalOptions signal_options;
  signal_options.clock = job.clock;
  auto down = std::make_shared<CarbonSignal>(std::make_shared<DownProvider>(), signal_options);
  TrainingController controller(job.gpus, job.options("chase", down));
  job.run_for(controller, 90min);
  const auto report = controller.report();
  ASSERT_EQ(report.periods.size(), 3u);
  EXPECT_TRUE(std::isnan(report.periods[1].carbon_intensity));
  EXPECT_THAT(report.periods[1].reason, HasSubstr("no carbon intensity"));
  EXPECT_EQ(report.periods[2].limits_w.size(), 1u);
  EXPECT_EQ(report.carbon_g, 0);
  const auto json = nlohmann::json::parse(run_report_json(report));
  EXPECT_TRUE(json["periods"][1]["carbon_intensity"].is_null());
}

TEST(TrainingController, StaticPolicyKeepsTheProfilingChoice) {
  SimulatedJob job;
  TrainingController controller(job.gpus, job.options("static", nullptr));
  job.run_for(controller, 70min);
  const auto report = controller.report();
  ASSERT_EQ(report.periods.size(), 3u);
  const double chosen = controller.optimizer().selection()->power_limit_w;
  EXPECT_EQ(report.periods[1].limits_w, (std::vector<double>{chosen}));
  EXPECT_EQ(report.periods[2].limits_w, (std::vector<double>{chosen}));
  EXPECT_THAT(report.periods[0].reason, HasSubstr("static"));
}

TEST(TrainingController, ReportAsJsonAndTable) {
  SimulatedJob job;
  TrainingController controller(job.gpus, job.options("chase", job.signal(alternating_series(4))));
  job.run_for(controller, 1h);
  const auto report = controller.report();
  const auto json = nlohmann::json::parse(run_report_json(report));
  for (const auto* key :
       {"policy", "time_s", "steps", "energy_j", "carbon_g", "profiled", "periods"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_EQ(json["periods"].size(), 2u);
  EXPECT_THAT(json["periods"][1]["start"].get<std::string>(), HasSubstr("2026-01-01T00:30:0"));
  EXPECT_NEAR(json["carbon_g"].get<double>(),
              report.periods[0].carbon_g + report.periods[1].carbon_g, 1e-9);
  std::ostringstream table;
  print_run_report(table, report);
  EXPECT_THAT(table.str(), HasSubstr("policy chase"));
  EXPECT_THAT(table.str(), HasSubstr("2026-01-01T00:30:0"));
}

TEST(TrainingController, LimitsComeBackWhenTheControllerGoes) {
  SimulatedJob job;
  {
    TrainingController controller(job.gpus,
                                  job.options("chase", job.signal(alternating_series(4))));
    job.run_for(controller, 45min);
    EXPECT_LT(job.gpus->power_limit_w(0), 300);
  }
  EXPECT_EQ(job.gpus->power_limit_w(0), 300);
  EXPECT_EQ(job.gpus->power_limit_w(1), 300);
}

TEST(TrainingController, BadOptionsAreClearErrors) {
  SimulatedJob job;
  auto signal = job.signal(alternating_series(4));
  EXPECT_THROW(TrainingController(job.gpus, job.options("greedy", signal)), Error);
  EXPECT_THROW(TrainingController(job.gpus, job.options("chase", nullptr)), Error);
  EXPECT_THROW(TrainingController(job.gpus, job.options("oracle", signal)), Error);
  auto options = job.options("planner", signal);
  EXPECT_THROW(TrainingController(job.gpus, options), Error);  // no total_steps
  options.total_steps = 10;
  options.policy = PlannerOptions{.slowdown_budget = -0.1};
  EXPECT_THROW(TrainingController(job.gpus, options), Error);
  options = job.options("chase", signal);
  options.period = 0s;
  EXPECT_THROW(TrainingController(job.gpus, options), Error);
}

// The error policy over the real NVML backend and the fake NVML: a limit change refused after
// profiling leaves training running at the limit in force, the report says so, and the next
// period tries again. A saved profile (the limit policy test's) makes chase's choices exact:
// 300 W at 100 gCO2eq/kWh, 200 W at 900.
TEST(TrainingControllerOnFakeNvml, ARefusedLimitChangeNeverStopsTrainingAndTheNextPeriodRetries) {
  testing::FakeNvmlEnvironment nvml(testing::FakeNvmlEnvironment::standard_config(2));
  const auto dir =
      std::filesystem::temp_directory_path() / ("chase_controller_" + std::to_string(::getpid()));
  auto clock = std::make_shared<ManualClock>(kStart);
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (int i = 0; i < 8; ++i) {
    times.push_back(kStart + i * 30min);
    values.push_back(i == 0 ? 100 : 900);  // clean, then dirty
  }
  CarbonSignalOptions signal;
  signal.clock = clock;
  TrainingOptions options;
  options.policy = ChaseOptions{.eta = 0.9, .max_carbon_intensity = 800};
  options.clock = clock;
  options.carbon = std::make_shared<CarbonSignal>(
      make_replay_provider(CarbonSeries(times, values, 30min, "test"), clock), signal);
  options.profiling.profile_dir = dir;
  options.profiling.job_id = "refused";
  options.profiling.limit_step_w = 100;
  std::shared_ptr<GpuBackend> gpus = open_nvml();
  std::filesystem::create_directories(dir);
  {
    PowerLimitOptimizer probe(gpus, options.profiling);
    LimitProfileInfo info;
    info.gpu_model = gpus->gpus()[0].name;
    info.gpu_count = 2;
    info.job_id = options.profiling.job_id;
    info.steps_per_window = options.profiling.profile_steps;
    save_limit_profile(
        LimitProfile({{300, 100, 20000}, {200, 120, 18000}, {100, 200, 20000}}, info),
        probe.profile_path());
  }
  {
    TrainingController controller(gpus, options);
    controller.on_train_begin();
    for (int step = 0; step < 90; ++step) {  // a step a minute, three periods
      if (step == 29)
        nvml.set_failure(1, "nvmlDeviceSetPowerManagementLimit",
                         testing::nvml_return::kNoPermission);
      if (step == 45) nvml.clear_failure(1, "nvmlDeviceSetPowerManagementLimit");
      EXPECT_NO_THROW(controller.on_step_begin());
      clock->advance(std::chrono::nanoseconds(1min));
      controller.on_step_end();
      if (step == 40) {
        EXPECT_EQ(nvml.limit_w(0), 300) << "the GPU already changed went back";
        EXPECT_EQ(nvml.limit_w(1), 300);
      }
    }
    controller.on_train_end();
    const auto report = controller.report();
    ASSERT_EQ(report.periods.size(), 3u);
    EXPECT_FALSE(report.profiled);
    EXPECT_EQ(report.steps, 90u) << "training went on";
    EXPECT_EQ(report.periods[0].limits_w.back(), 300);
    ASSERT_EQ(report.periods[1].limit_errors.size(), 1u);
    EXPECT_THAT(report.periods[1].limit_errors[0], HasSubstr("could not set 200 W"));
    EXPECT_EQ(report.periods[1].limits_w, (std::vector<double>{300}));
    EXPECT_TRUE(report.periods[2].limit_errors.empty());
    EXPECT_EQ(report.periods[2].limits_w, (std::vector<double>{300, 200})) << "retried";
    EXPECT_EQ(nvml.limit_w(0), 200);
    EXPECT_EQ(nvml.limit_w(1), 200);
    const auto json = nlohmann::json::parse(run_report_json(report));
    EXPECT_EQ(json["periods"][1]["limit_errors"].size(), 1u);
    std::ostringstream table;
    print_run_report(table, report);
    EXPECT_THAT(table.str(), HasSubstr("limit change failed: could not set 200 W"));
  }
  EXPECT_EQ(nvml.limit_w(0), 300) << "restored when the controller goes";
  EXPECT_EQ(nvml.limit_w(1), 300);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chase
