// Pushes to the real Pushgateway of Debian's prometheus-pushgateway package on 127.0.0.1: a
// training run's series arrive after each period with the report's values and the final push
// marks the run ended; `chase measure --pushgateway` pushes the measured command; promtool accepts
// the run's exposition. ctest label real_server; skipped when the binaries are absent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "chase/pushgateway.h"
#include "chase/training.h"
#include "optimize/simulated_training_job.h"
#include "support/fake_nvml_env.h"
#include "support/process.h"
#include "support/pushgateway_server.h"

namespace chase::testing {
namespace {

using namespace std::chrono_literals;

PushgatewayOptions push_to(const std::string& url, const std::string& job,
                           const std::string& instance = "") {
  PushgatewayOptions options;
  options.url = url;
  options.job = job;
  options.instance = instance;
  return options;
}

#define REQUIRE_PUSHGATEWAY(gateway)                                                       \
  if (!PushgatewayServer::installed()) GTEST_SKIP() << kPushgatewayBinary << " is absent"; \
  PushgatewayServer gateway;                                                               \
  ASSERT_TRUE(gateway.started()) << "the Pushgateway did not start: " << gateway.log()

TEST(PushgatewayRealServer, ATrainingRunPushesEveryPeriodAndEndsWithAFinalPush) {
  REQUIRE_PUSHGATEWAY(gateway);
  SimulatedTrainingJob job;
  auto options = job.options();
  options.pushgateway = push_to(gateway.url(), "train-run");
  RunReport report;
  {
    TrainingController controller(job.gpus, options);
    controller.on_train_begin();
    job.train_for(controller, 40min);  // the first period (00:00-00:30) has closed
    // Pushed while training goes on.
    const auto periods = gateway.wait_for("chase_training_periods_total", "train-run", 10s);
    ASSERT_TRUE(periods) << gateway.exposition();
    EXPECT_EQ(*periods, 1);
    EXPECT_EQ(gateway.value("chase_training_running", "train-run"), 1);
    EXPECT_EQ(gateway.value("chase_training_period_carbon_intensity_grams_per_kwh", "train-run"),
              100);
    job.train_for(controller, 40min);
    controller.on_train_end();
    report = controller.report();
  }  // the controller's end waits for the final push
  ASSERT_EQ(report.periods.size(), 3u);
  EXPECT_EQ(gateway.value("chase_training_running", "train-run"), 0);
  EXPECT_EQ(gateway.value("chase_training_periods_total", "train-run"), 3);
  EXPECT_EQ(gateway.value("chase_training_steps_total", "train-run"),
            static_cast<double>(report.steps));
  const auto energy = gateway.value("chase_training_energy_joules_total", "train-run");
  ASSERT_TRUE(energy);
  EXPECT_DOUBLE_EQ(*energy, report.energy_j);
  EXPECT_GT(*energy, 0);
  const auto carbon = gateway.value("chase_training_carbon_grams_total", "train-run");
  ASSERT_TRUE(carbon);
  EXPECT_DOUBLE_EQ(*carbon, report.carbon_g);
  EXPECT_DOUBLE_EQ(*gateway.value("chase_training_period_energy_joules", "train-run"),
                   report.periods.back().energy_j);
  EXPECT_EQ(gateway.value("chase_training_power_limit_watts", "train-run"),
            report.periods.back().limits_w.back());
  // The third period (01:00-01:20) is clean again.
  EXPECT_EQ(gateway.value("chase_training_period_carbon_intensity_grams_per_kwh", "train-run"),
            100);
  // The grouping labels: job and instance (this host), the series' own policy label.
  EXPECT_THAT(gateway.exposition(),
              ::testing::ContainsRegex("chase_training_running\\{instance=\"[^\"]+\",job=\"train-"
                                       "run\",policy=\"chase\"\\} 0"));
}

TEST(PushgatewayRealServer, AJobNameWithASlashArrivesIntact) {
  REQUIRE_PUSHGATEWAY(gateway);
  {
    PushgatewayReporter reporter(push_to(gateway.url(), "team/a", "node-1"));
    reporter.push("# TYPE chase_test_value gauge\nchase_test_value 42\n");
    EXPECT_TRUE(reporter.flush(10s));
    EXPECT_EQ(reporter.pushes_succeeded(), 1u);
  }
  EXPECT_EQ(gateway.value("chase_test_value", "team/a"), 42);
}

TEST(PushgatewayRealServer, ARejectedExpositionIsAFailureNotACrash) {
  REQUIRE_PUSHGATEWAY(gateway);
  PushgatewayReporter reporter(push_to(gateway.url(), "bad"));
  reporter.push("this is not { the text format\n");
  EXPECT_TRUE(reporter.flush(10s));
  EXPECT_EQ(reporter.pushes_failed(), 1u);
  EXPECT_EQ(reporter.pushes_succeeded(), 0u);
}

TEST(PushgatewayRealServer, ChaseMeasurePushesTheMeasuredCommand) {
  REQUIRE_PUSHGATEWAY(gateway);
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(2));
  Process measure({CHASE_CLI_PATH, "measure", "--no-cpu", "--intensity", "200", "--pushgateway",
                   gateway.url(), "--pushgateway-job", "measure-run", "--", "/bin/sleep", "1"});
  const auto result = measure.wait(60s);
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const auto energy = gateway.value("chase_measure_gpu_energy_joules_total", "measure-run");
  ASSERT_TRUE(energy) << gateway.exposition();
  EXPECT_GT(*energy, 100);  // two fake GPUs at 155 W for about a second
  EXPECT_LT(*energy, 2000);
  const auto seconds = gateway.value("chase_measure_duration_seconds", "measure-run");
  ASSERT_TRUE(seconds);
  EXPECT_GE(*seconds, 1.0);
  const auto carbon = gateway.value("chase_measure_carbon_grams_total", "measure-run");
  ASSERT_TRUE(carbon);
  EXPECT_NEAR(*carbon, *energy / 3.6e6 * 200, 1e-6);
  EXPECT_EQ(gateway.value("chase_measure_running", "measure-run"), 0);
}

TEST(PushgatewayRealServer, PromtoolAcceptsTheRunExposition) {
  constexpr const char* kPromtool = "/usr/bin/promtool";
  if (!std::filesystem::exists(kPromtool)) GTEST_SKIP() << kPromtool << " is not installed";
  SimulatedTrainingJob job;
  TrainingController controller(job.gpus, job.options());
  controller.on_train_begin();
  job.train_for(controller, 40min);
  controller.on_train_end();
  const auto file = std::filesystem::temp_directory_path() /
                    ("chase_run_metrics_" + std::to_string(::getpid()) + ".txt");
  std::ofstream(file) << training_run_metrics(controller.report(), false);
  Process promtool({"/bin/sh", "-c", std::string(kPromtool) + " check metrics < " + file.string()});
  const auto result = promtool.wait(30s);
  std::filesystem::remove(file);
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
}

}  // namespace
}  // namespace chase::testing
