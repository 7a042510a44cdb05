// `chase devices` and `chase measure` on nodes with sick GPUs, end to end over the fake NVML: lost
// GPUs (before the run and during it), GPUs the process may not open, MIG slices, vGPUs without
// readings, and CUDA's device order on a mixed node.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/cli_fixture.h"
#include "support/fake_nvml_env.h"
#include "support/golden.h"
#include "support/process.h"
#include "support/scoped_env.h"

namespace chase {
namespace {

using chase::testing::ScopedEnv;
using testing::FakeNvmlEnvironment;
using ::testing::HasSubstr;
using testing::ProcessResult;
using testing::read_file;
using testing::run_process;
using json = nlohmann::json;
namespace fs = std::filesystem;

// Sets (or unsets) an environment variable for the test's lifetime.

// The exit code of `chase devices` when a listed GPU is lost or failing (docs/MEASUREMENT.md).
constexpr int kUnhealthyGpuExit = 3;

class GpuHealthCliTest : public testing::CliFixture {
 protected:
  GpuHealthCliTest() : CliFixture("chase_gpu_health_test") {}

  // `chase measure --json -o report ARGS... -- CMD...`: the result and the parsed report.
  std::pair<ProcessResult, json> measure(const std::vector<std::string>& options,
                                         const std::vector<std::string>& command) {
    const auto report = dir_ / "report.json";
    fs::remove(report);
    std::vector<std::string> args{"measure", "--json", "-o", report.string()};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--");
    args.insert(args.end(), command.begin(), command.end());
    auto result = chase(args);
    json doc;
    if (fs::exists(report)) doc = json::parse(read_file(report));
    return {std::move(result), std::move(doc)};
  }

  static json config_with_gpu1(const json& settings) {
    json config = FakeNvmlEnvironment::standard_config(3);
    config["gpus"][1].update(settings);
    return config;
  }

  ScopedEnv no_rapl_{"CHASE_SYSFS_ROOT", (fs::temp_directory_path() / "chase-no-sysfs").string()};
  ScopedEnv order_{"CUDA_DEVICE_ORDER", std::nullopt};
};

// ---- chase devices ------------------------------------------------------------------------------

TEST_F(GpuHealthCliTest, DevicesListsTheHealthyGpusAndTheLostOneWithItsError) {
  FakeNvmlEnvironment nvml(config_with_gpu1({{"lost", true}}));
  const auto r = chase({"devices", "--json"});
  EXPECT_EQ(r.exit_code, kUnhealthyGpuExit) << r.err;
  const auto doc = json::parse(r.out);
  ASSERT_EQ(doc["gpus"].size(), 3u);
  EXPECT_EQ(doc["gpus"][0]["state"], "healthy");
  EXPECT_EQ(doc["gpus"][0]["power_w"], 155.0);
  EXPECT_EQ(doc["gpus"][2]["power_w"], 155.0);
  EXPECT_EQ(doc["gpus"][1]["state"], "lost");
  EXPECT_THAT(doc["gpus"][1]["problem"].get<std::string>(),
              ::testing::AllOf(HasSubstr("GPU is lost"), HasSubstr("fell off the bus")));
}

TEST_F(GpuHealthCliTest, DevicesTableShowsTheLostGpuBetweenTheOthers) {
  FakeNvmlEnvironment nvml(config_with_gpu1({{"lost", true}}));
  const auto r = chase({"devices"});
  EXPECT_EQ(r.exit_code, kUnhealthyGpuExit) << r.err;
  EXPECT_THAT(r.out, HasSubstr(FakeNvmlEnvironment::standard_uuid(0)));
  EXPECT_THAT(r.out, HasSubstr(FakeNvmlEnvironment::standard_uuid(2)));
  EXPECT_THAT(r.out, HasSubstr("(NVML index 1)"));
  EXPECT_THAT(r.out, HasSubstr("lost: GPU 1 (NVML index 1): nvmlDeviceGetHandleByIndex_v2 failed: "
                               "GPU is lost"));
}

TEST_F(GpuHealthCliTest, DevicesListsGpusTheProcessMayNotOpenApartAndExitsZero) {
  FakeNvmlEnvironment nvml(config_with_gpu1({{"no_permission", true}}));
  const auto r = chase({"devices", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto doc = json::parse(r.out);
  ASSERT_EQ(doc["gpus"].size(), 2u);
  EXPECT_EQ(doc["gpus"][1]["hardware_index"], 2);
  ASSERT_EQ(doc["inaccessible_gpus"].size(), 1u);
  EXPECT_EQ(doc["inaccessible_gpus"][0]["hardware_index"], 1);
  EXPECT_EQ(doc["inaccessible_gpus"][0]["state"], "not accessible");
  EXPECT_THAT(doc["inaccessible_gpus"][0]["problem"].get<std::string>(),
              HasSubstr("Insufficient Permissions"));
}

TEST_F(GpuHealthCliTest, DevicesAndMeasureSurviveAnNvmlThatCannotInitialiseForALostGpu) {
  FakeNvmlEnvironment nvml(json{{"init_error", "GPU_IS_LOST"}});
  const auto devices = chase({"devices", "--json"});
  EXPECT_EQ(devices.exit_code, kUnhealthyGpuExit) << devices.err;
  EXPECT_THAT(json::parse(devices.out)["gpu_note"].get<std::string>(), HasSubstr("GPU is lost"));
  const auto [r, doc] = measure({}, {"true"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(doc["warnings"].dump(), HasSubstr("GPU is lost"));
}

// ---- chase measure with a GPU lost before the run
// -------------------------------------------------

TEST_F(GpuHealthCliTest, MeasureGpu0RunsWithGpu1Lost) {
  FakeNvmlEnvironment nvml(config_with_gpu1({{"lost", true}}));
  const auto [r, doc] = measure({"--gpus", "0"}, {"sleep", "0.2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(doc["gpus"].size(), 1u);
  EXPECT_EQ(doc["gpus"][0]["index"], 0);
  EXPECT_NEAR(doc["gpus"][0]["energy_j"].get<double>(), 155 * doc["time_s"].get<double>(), 2.0);
  EXPECT_TRUE(doc["complete"].get<bool>());
}

TEST_F(GpuHealthCliTest, MeasureGpusNoneRunsTheCommandWithGpu1Lost) {
  FakeNvmlEnvironment nvml(config_with_gpu1({{"lost", true}}));
  const auto marker = dir_ / "ran";
  const auto [r, doc] = measure({"--gpus", "none"}, {"touch", marker.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(marker));
  EXPECT_TRUE(doc["gpus"].empty());
}

TEST_F(GpuHealthCliTest, MeasureGpusNoneDoesNotEvenAskNvml) {
  FakeNvmlEnvironment nvml(json{{"init_error", "GPU_IS_LOST"}});
  const auto [r, doc] = measure({"--gpus", "none"}, {"true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(doc["warnings"].dump(), ::testing::Not(HasSubstr("GPU")));
}

TEST_F(GpuHealthCliTest, MeasureAllGpusSkipsTheLostOneSayingWhy) {
  FakeNvmlEnvironment nvml(config_with_gpu1({{"lost", true}}));
  const auto [r, doc] = measure({}, {"true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(doc["gpus"].size(), 2u);
  EXPECT_EQ(doc["gpus"][0]["index"], 0);
  EXPECT_EQ(doc["gpus"][1]["index"], 2);
  ASSERT_EQ(doc["skipped_gpus"].size(), 1u);
  EXPECT_EQ(doc["skipped_gpus"][0]["index"], 1);
  EXPECT_EQ(doc["skipped_gpus"][0]["state"], "lost");
  EXPECT_THAT(doc["warnings"].dump(), HasSubstr("GPU 1 skipped (lost)"));
}

// ---- A GPU lost during the run
// --------------------------------------------------------------------

TEST_F(GpuHealthCliTest, AGpuLostMidRunIsReportedWithItsEnergyUpToTheLoss) {
  const auto trigger = dir_ / "xid79";
  FakeNvmlEnvironment nvml(config_with_gpu1({{"lost_trigger_file", trigger.string()}}));
  // The command itself pulls GPU 1 off the bus halfway through.
  const auto [r, doc] =
      measure({}, {"sh", "-c", "sleep 0.6; touch '" + trigger.string() + "'; sleep 0.6"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(doc["gpus"].size(), 3u);
  const double time_s = doc["time_s"];
  const auto& lost = doc["gpus"][1];
  ASSERT_TRUE(lost.contains("lost_after_s")) << doc.dump(2);
  const double lost_after_s = lost["lost_after_s"];
  EXPECT_GT(lost_after_s, 0.0);
  EXPECT_LT(lost_after_s, time_s);
  // The fake's counter is exact: 155 W up to the last good reading.
  EXPECT_NEAR(lost["energy_j"].get<double>(), 155 * lost_after_s, 0.01 * 155 * lost_after_s + 0.5);
  EXPECT_THAT(lost["error"].get<std::string>(), HasSubstr("GPU is lost"));
  EXPECT_NEAR(doc["gpus"][0]["energy_j"].get<double>(), 155 * time_s, 0.01 * 155 * time_s + 0.5);
  EXPECT_FALSE(doc["complete"].get<bool>());
  EXPECT_NEAR(doc["gpu_energy_j"].get<double>(),
              doc["gpus"][0]["energy_j"].get<double>() + lost["energy_j"].get<double>() +
                  doc["gpus"][2]["energy_j"].get<double>(),
              1e-6);
  EXPECT_THAT(doc["warnings"].dump(), HasSubstr("GPU 1 was lost"));
}

// ---- Not measurable: vGPU, MIG
// ---------------------------------------------------------------------

TEST_F(GpuHealthCliTest, MeasureSkipsAVgpuWithoutCounterOrPower) {
  FakeNvmlEnvironment nvml(config_with_gpu1({{"energy_counter", false}, {"power_reading", false}}));
  const auto [r, doc] = measure({}, {"true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(doc["gpus"].size(), 2u);
  ASSERT_EQ(doc["skipped_gpus"].size(), 1u);
  EXPECT_EQ(doc["skipped_gpus"][0]["state"], "not measurable");
  EXPECT_THAT(doc["warnings"].dump(), HasSubstr("vGPU"));
  EXPECT_TRUE(doc["complete"].get<bool>());
}

constexpr const char* kMigA = "MIG-aaaaaaaa-0000-0000-0000-000000000000";
constexpr const char* kMigB = "MIG-bbbbbbbb-0000-0000-0000-000000000000";

json mig_node() {
  json config = FakeNvmlEnvironment::standard_config(2);
  config["gpus"][0]["mig_devices"] = {kMigA, kMigB};
  return config;
}

TEST_F(GpuHealthCliTest, MeasureRefusesAMigSliceClearlyNeverAZero) {
  FakeNvmlEnvironment nvml(mig_node());
  ScopedEnv cuda("CUDA_VISIBLE_DEVICES", std::string(kMigA));
  const auto [r, doc] = measure({}, {"true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(doc["gpus"].empty());
  ASSERT_EQ(doc["skipped_gpus"].size(), 1u);
  EXPECT_EQ(doc["skipped_gpus"][0]["state"], "MIG slice");
  EXPECT_THAT(doc["warnings"].dump(), HasSubstr("no power or energy per MIG slice"));
}

TEST_F(GpuHealthCliTest, MeasureMeasuresTheParentWhenTheJobHasEverySliceAndSaysSo) {
  FakeNvmlEnvironment nvml(mig_node());
  ScopedEnv cuda("CUDA_VISIBLE_DEVICES", std::string(kMigA) + "," + kMigB);
  const auto [r, doc] = measure({}, {"sleep", "0.2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(doc["gpus"].size(), 1u);
  EXPECT_GT(doc["gpus"][0]["energy_j"].get<double>(), 0);
  EXPECT_THAT(doc["warnings"].dump(), HasSubstr("whole GPU"));
  ASSERT_EQ(doc["skipped_gpus"].size(), 1u);  // the second slice is measured with the first
  EXPECT_THAT(doc["skipped_gpus"][0]["problem"].get<std::string>(),
              HasSubstr("measured with GPU 0"));
}

// ---- CUDA's order on a mixed node
// -----------------------------------------------------------------

TEST_F(GpuHealthCliTest, CudaVisibleDevicesIndicesFollowCudaDeviceOrder) {
  json config = FakeNvmlEnvironment::standard_config(2);
  config["gpus"][0].update({{"name", "Tesla T4"}, {"architecture", "turing"}});
  config["gpus"][1].update({{"name", "NVIDIA A100-SXM4-40GB"}, {"architecture", "ampere"}});
  FakeNvmlEnvironment nvml(config);
  ScopedEnv cuda("CUDA_VISIBLE_DEVICES", std::string("0"));
  const auto fastest = chase({"devices", "--json"});
  ASSERT_EQ(fastest.exit_code, 0) << fastest.err;
  EXPECT_EQ(json::parse(fastest.out)["gpus"][0]["name"], "NVIDIA A100-SXM4-40GB");
  EXPECT_THAT(fastest.err, HasSubstr("CUDA_DEVICE_ORDER=PCI_BUS_ID"));  // the order is a guess

  ScopedEnv order("CUDA_DEVICE_ORDER", std::string("PCI_BUS_ID"));
  const auto by_bus = chase({"devices", "--json"});
  ASSERT_EQ(by_bus.exit_code, 0) << by_bus.err;
  EXPECT_EQ(json::parse(by_bus.out)["gpus"][0]["name"], "Tesla T4");
}

}  // namespace
}  // namespace chase
