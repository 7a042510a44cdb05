// The training controller's on_period_end hook and pushgateway option, and the run's exposition.
// The reporter alone: pushgateway_reporter_test.cpp; the pushes to a real Pushgateway:
// pushgateway_real_test.cpp.
#include "chase/pushgateway.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "chase/error.h"
#include "chase/training.h"
#include "optimize/pushgateway_test_support.h"
#include "optimize/simulated_training_job.h"
#include "support/free_port.h"
#include "support/log_capture.h"

namespace chase::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(TrainingRunMetrics, TotalsAndTheLastPeriodInPrometheusNames) {
  RunReport report;
  report.policy = "chase";
  PeriodReport first;
  first.energy_j = 1000;
  first.carbon_intensity = 100;
  first.carbon_g = 2;
  first.limits_w = {300};
  PeriodReport second;
  second.energy_j = 500;
  second.time_s = 1800;
  second.steps = 7;
  second.carbon_intensity = std::nan("");
  second.carbon_g = std::nan("");
  second.limits_w = {300, 175};
  second.limit_errors = {"refused"};
  report.periods = {first, second};
  report.energy_j = 1500;
  report.carbon_g = 2;
  const std::string text = training_run_metrics(report, true);
  EXPECT_THAT(text, HasSubstr("# TYPE chase_training_energy_joules_total counter\n"
                              "chase_training_energy_joules_total{policy=\"chase\"} 1500\n"));
  EXPECT_THAT(text, HasSubstr("chase_training_running{policy=\"chase\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("chase_training_periods_total{policy=\"chase\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("chase_training_period_energy_joules{policy=\"chase\"} 500\n"));
  EXPECT_THAT(text, HasSubstr("chase_training_power_limit_watts{policy=\"chase\"} 175\n"));
  EXPECT_THAT(text, HasSubstr("chase_training_limit_errors_total{policy=\"chase\"} 1\n"));
  // No intensity in the last period: its carbon series are left out, not pushed as NaN.
  EXPECT_THAT(text, ::testing::Not(HasSubstr("chase_training_period_carbon")));
  EXPECT_THAT(training_run_metrics(report, false),
              HasSubstr("chase_training_running{policy=\"chase\"} 0\n"));
}

TEST(TrainingController, OnPeriodEndHearsOfEveryPeriodAndAThrowingHookNeverStopsTraining) {
  LogCapture log;
  SimulatedTrainingJob job;
  auto options = job.options();
  std::vector<std::size_t> periods_seen;
  std::vector<double> energies;
  options.on_period_end = [&](const RunReport& so_far) {
    periods_seen.push_back(so_far.periods.size());
    energies.push_back(so_far.periods.back().energy_j);
    throw std::runtime_error("hook failure");
  };
  TrainingController controller(job.gpus, options);
  controller.on_train_begin();
  job.train_for(controller, 75min);  // two periods close, the third is open
  EXPECT_EQ(periods_seen, (std::vector<std::size_t>{1, 2}));
  controller.on_train_end();  // closes the third
  ASSERT_EQ(periods_seen, (std::vector<std::size_t>{1, 2, 3}));
  const auto report = controller.report();
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(energies[i], report.periods[i].energy_j);
  EXPECT_THAT(log.text(), HasSubstr("on_period_end hook threw (hook failure); training goes on"));
}

TEST(TrainingController, AnUnreachablePushgatewayNeverHoldsTheLoop) {
  SilentListener hung;
  SimulatedTrainingJob job;
  auto options = job.options();
  options.pushgateway = options_for(hung.url());
  options.pushgateway->timeout = 1s;
  const auto start = std::chrono::steady_clock::now();
  {
    TrainingController controller(job.gpus, options);
    controller.on_train_begin();
    job.train_for(controller, 3h);  // six periods, six pushes queued behind a hung one
    controller.on_train_end();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_GE(controller.report().periods.size(), 6u);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace chase::testing
