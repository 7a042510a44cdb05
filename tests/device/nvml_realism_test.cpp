// Measurement realism over the fake NVML: the 1-second-averaged power of Ampere and newer against
// the NVML_FI_DEV_POWER_INSTANT field, an energy counter that advances in steps or jumps, and what
// the monitors make of them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <thread>

#include "chase/energy_monitor.h"
#include "chase/nvml.h"
#include "chase/power_monitor.h"
#include "support/fake_nvml_env.h"

namespace chase {
namespace {

using chase::testing::FakeNvmlEnvironment;
using ::testing::HasSubstr;
using json = nlohmann::json;

// One A40-like GPU (155 W at load 0.5, 280 W at full load) with `extra` merged into its entry.
json one_gpu(const json& extra) {
  json config = FakeNvmlEnvironment::standard_config(1);
  for (const auto& [key, value] : extra.items()) config["gpus"][0][key] = value;
  return config;
}

TEST(NvmlPowerReading, AmpereWithoutTheInstantFieldReportsTheOneSecondAverage) {
  FakeNvmlEnvironment env(one_gpu({{"power_usage_average_s", 1.0}}));
  auto backend = open_nvml();
  EXPECT_EQ(backend->gpus()[0].power_reading, PowerReading::kAveraged);
  env.set_load(0, 1.0);  // 155 W → 280 W now; the average has barely moved
  const double averaged = backend->power_w(0);
  EXPECT_LT(averaged, 200) << "a 1 s average cannot follow a step at once";
  EXPECT_GE(averaged, 155);
}

TEST(NvmlPowerReading, TheInstantFieldIsUsedWhereTheDriverHasIt) {
  FakeNvmlEnvironment env(one_gpu({{"power_usage_average_s", 1.0}, {"power_instant_field", true}}));
  auto backend = open_nvml();
  EXPECT_EQ(backend->gpus()[0].power_reading, PowerReading::kInstant);
  env.set_load(0, 1.0);
  const auto usage_calls = env.call_count("nvmlDeviceGetPowerUsage");
  EXPECT_DOUBLE_EQ(backend->power_w(0), 280);  // the step, at once
  EXPECT_EQ(env.call_count("nvmlDeviceGetPowerUsage"), usage_calls);
}

TEST(NvmlPowerReading, GA100AndOlderArchitecturesReportInstantPower) {
  json config = FakeNvmlEnvironment::standard_config(4);
  config["gpus"][0]["name"] = "NVIDIA A100-SXM4-80GB";  // GA100: instantaneous usage
  config["gpus"][1]["architecture"] = "volta";
  config["gpus"][2]["architecture"] = "hopper";
  config["gpus"][3]["name"] = "NVIDIA RTX A3000 Laptop GPU";  // "A30" inside, but not GA100
  FakeNvmlEnvironment env(config);
  auto backend = open_nvml();
  // By NVML index: CUDA's default order (FASTEST_FIRST) puts the Hopper first.
  auto reading = [&](unsigned nvml_index) {
    for (const auto& gpu : backend->gpus()) {
      if (gpu.hardware_index == nvml_index) return gpu.power_reading;
    }
    ADD_FAILURE() << "no GPU with NVML index " << nvml_index;
    return PowerReading::kInstant;
  };
  EXPECT_EQ(reading(0), PowerReading::kInstant);
  EXPECT_EQ(reading(1), PowerReading::kInstant);
  EXPECT_EQ(reading(2), PowerReading::kAveraged);
  EXPECT_EQ(reading(3), PowerReading::kAveraged);
  EXPECT_EQ(to_string(PowerReading::kAveraged), "1s-average");
}

TEST(NvmlPowerReading, AFailingInstantFieldNamesTheCall) {
  FakeNvmlEnvironment env(one_gpu({{"power_instant_field", true}}));
  auto backend = open_nvml();
  env.set_failure(0, "nvmlDeviceGetFieldValues", testing::nvml_return::kGpuIsLost);
  try {
    backend->power_w(0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDeviceLost);
    EXPECT_THAT(e.what(), HasSubstr("NVML_FI_DEV_POWER_INSTANT"));
  }
}

TEST(NvmlPowerReading, PowerMonitorRecordsTheInstantPower) {
  FakeNvmlEnvironment env(one_gpu({{"power_usage_average_s", 1.0}, {"power_instant_field", true}}));
  std::shared_ptr<GpuBackend> backend = open_nvml();
  PowerMonitorOptions options;
  options.period = std::chrono::hours(1);  // only the samples this test asks for
  PowerMonitor monitor(backend, options);
  env.set_load(0, 1.0);
  monitor.sample_now();
  EXPECT_DOUBLE_EQ(monitor.latest(0)->power_w, 280);
}

TEST(NvmlPowerReading, PolledWindowsSayWhichPowerTheyIntegrated) {
  FakeNvmlEnvironment env(one_gpu({{"power_usage_average_s", 1.0}}));
  EnergyMonitorOptions options;
  options.force_polling = true;
  EnergyMonitor monitor(open_nvml(), nullptr, options);
  monitor.begin_window("w");
  const auto m = monitor.end_window("w");
  EXPECT_EQ(m.gpus[0].power_reading, PowerReading::kAveraged);
  EXPECT_GE(m.gpus[0].resolution_s, 10.0);  // a 1 s average resolves no window under 10 s
  EXPECT_TRUE(m.gpus[0].below_resolution);
}

TEST(NvmlCounterSteps, TheCounterAdvancesOnlyAtItsUpdateSteps) {
  FakeNvmlEnvironment env(one_gpu({{"energy_update_period_ms", 3600000}}));  // one step an hour
  auto backend = open_nvml();
  const double first = backend->energy_j(0);
  const double model_first = env.energy_j(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the model moves; the counter not
  EXPECT_GT(env.energy_j(0), model_first);
  EXPECT_DOUBLE_EQ(backend->energy_j(0), first);
}

TEST(NvmlCounterSteps, AWindowShorterThanTheResolutionIsFlaggedNotExact) {
  FakeNvmlEnvironment env(one_gpu({{"energy_update_period_ms", 3600000}}));
  EnergyMonitorOptions options;
  options.counter_update_period = std::chrono::hours(1);
  EnergyMonitor monitor(open_nvml(), nullptr, options);
  monitor.begin_window("short");
  const auto m = monitor.end_window("short");
  EXPECT_EQ(m.gpus[0].method, EnergyMethod::kCounter);
  EXPECT_DOUBLE_EQ(m.gpus[0].resolution_s, 36000);
  EXPECT_TRUE(m.gpus[0].below_resolution);
  EXPECT_TRUE(m.below_resolution());
}

TEST(NvmlCounterSteps, ACounterThatJumpsBackwardsIsAnErrorNotNegativeEnergy) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(2));
  EnergyMonitor monitor(open_nvml(), nullptr);
  monitor.begin_window("w");
  env.jump_energy(0, -500000);  // a counter reset (driver reload)
  const auto m = monitor.end_window("w");
  EXPECT_TRUE(std::isnan(m.gpus[0].energy_j));
  EXPECT_THAT(m.gpus[0].error, HasSubstr("went backwards"));
  EXPECT_TRUE(m.gpus[1].error.empty());  // the other GPU is still measured
  EXPECT_FALSE(m.complete());
}

TEST(NvmlCounterSteps, ACounterThatWrapsIsAnErrorToo) {
  // The standard GPU starts at 1 MJ; the counter wraps 1 kJ later (seconds away at 155 W).
  FakeNvmlEnvironment env(one_gpu({{"energy_wrap_mj", 1001000000}}));
  EnergyMonitor monitor(open_nvml(), nullptr);
  monitor.begin_window("w");
  env.jump_energy(0, 2000);  // passes the wrap
  const auto m = monitor.end_window("w");
  EXPECT_THAT(m.gpus[0].error, HasSubstr("went backwards"));
}

}  // namespace
}  // namespace chase
