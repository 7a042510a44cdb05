// GPU health, CUDA's device order and MIG/vGPU over the fake NVML: one sick GPU never hides or
// stops the others, GPUs the process may not open are not CUDA devices, CUDA_DEVICE_ORDER is
// honoured, MIG slices and vGPUs without readings are refused clearly.
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chase/error.h"
#include "chase/nvml.h"
#include "support/errors.h"
#include "support/fake_nvml_env.h"
#include "support/scoped_env.h"

namespace chase {
namespace {

using chase::testing::expect_error;
using chase::testing::FakeNvmlEnvironment;
using chase::testing::ScopedEnv;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using json = nlohmann::json;
namespace nvml_return = chase::testing::nvml_return;

NvmlOptions visible(const std::string& spec, std::optional<std::string> order = std::nullopt) {
  NvmlOptions options;
  options.visible_devices = spec;
  options.device_order = std::move(order);
  return options;
}

NvmlOptions ordered(const std::string& order) {
  NvmlOptions options;
  options.device_order = order;
  return options;
}

std::vector<unsigned> hardware_indices(const std::vector<GpuInfo>& gpus) {
  std::vector<unsigned> indices;
  for (const auto& gpu : gpus) indices.push_back(gpu.hardware_index);
  return indices;
}

// ---- Lost and failing GPUs ------------------------------------------------------------------

TEST(NvmlHealth, AGpuLostBeforeTheOpenIsListedLostAndTheOthersWork) {
  json config = FakeNvmlEnvironment::standard_config(3);
  config["gpus"][1]["lost"] = true;
  FakeNvmlEnvironment env(config);
  const auto backend = open_nvml();

  ASSERT_EQ(backend->gpu_count(), 3u);  // the lost GPU keeps its index: GPU 2 stays GPU 2
  const GpuInfo& lost = backend->gpus()[1];
  EXPECT_EQ(lost.state, GpuState::kLost);
  EXPECT_EQ(lost.hardware_index, 1u);
  EXPECT_THAT(lost.problem, AllOf(HasSubstr("GPU 1 (NVML index 1)"), HasSubstr("GPU is lost"),
                                  HasSubstr("fell off the bus")));
  for (const auto& read : {std::function<void()>([&] { backend->power_w(1); }),
                           std::function<void()>([&] { backend->energy_j(1); }),
                           std::function<void()>([&] { backend->set_power_limit_w(1, 200); })}) {
    const Error error = expect_error(read);
    EXPECT_EQ(error.code(), ErrorCode::kDeviceLost);
    EXPECT_THAT(error.what(), HasSubstr("GPU is lost"));
  }
  EXPECT_TRUE(is_healthy(backend->gpus()[0]));
  EXPECT_TRUE(is_healthy(backend->gpus()[2]));
  EXPECT_DOUBLE_EQ(backend->power_w(0), 155);
  EXPECT_DOUBLE_EQ(backend->power_w(2), 155);
  EXPECT_GT(backend->energy_j(2), 0);
}

TEST(NvmlHealth, AGpuFailingItsDescriptionIsListedFailedNamingTheCall) {
  json config = FakeNvmlEnvironment::standard_config(3);
  config["gpus"][2]["fail"] = {{"nvmlDeviceGetName", "UNKNOWN"}};
  config["gpus"][1]["fail"] = {{"nvmlDeviceGetTotalEnergyConsumption", "UNKNOWN"}};
  FakeNvmlEnvironment env(config);
  const auto backend = open_nvml();
  ASSERT_EQ(backend->gpu_count(), 3u);
  EXPECT_EQ(backend->gpus()[2].state, GpuState::kFailed);
  EXPECT_THAT(backend->gpus()[2].problem, AllOf(HasSubstr("GPU 2 (NVML index 2)"),
                                                HasSubstr("nvmlDeviceGetName failed: Unknown "
                                                          "Error")));
  EXPECT_EQ(backend->gpus()[1].state, GpuState::kFailed);
  EXPECT_THAT(backend->gpus()[1].problem,
              AllOf(HasSubstr("GPU 1 (NVIDIA A40, " + FakeNvmlEnvironment::standard_uuid(1)),
                    HasSubstr("nvmlDeviceGetTotalEnergyConsumption failed")));
  EXPECT_EQ(expect_error([&] { backend->power_w(2); }).code(), ErrorCode::kInternal);
  EXPECT_DOUBLE_EQ(backend->power_w(0), 155);
}

TEST(NvmlHealth, AGpuLostWhileRunningIsDeviceLostAfterItsConfiguredCalls) {
  const auto trigger =
      std::filesystem::temp_directory_path() / ("chase-lost-" + std::to_string(::getpid()));
  std::filesystem::remove(trigger);
  json config = FakeNvmlEnvironment::standard_config(2);
  config["gpus"][1]["lost_trigger_file"] = trigger.string();
  FakeNvmlEnvironment env(config);
  const auto backend = open_nvml();
  EXPECT_DOUBLE_EQ(backend->power_w(1), 155);
  std::ofstream(trigger).put('\n');
  EXPECT_EQ(expect_error([&] { backend->energy_j(1); }).code(), ErrorCode::kDeviceLost);
  EXPECT_DOUBLE_EQ(backend->power_w(0), 155);
  std::filesystem::remove(trigger);
}

// ---- Devices the process may not open -----------------------------------------------------------

TEST(NvmlHealth, NoPermissionGpusAreNotCudaDevicesAndAreListedApart) {
  json config = FakeNvmlEnvironment::standard_config(4);
  config["gpus"][0]["no_permission"] = true;
  config["gpus"][2]["no_permission"] = true;
  FakeNvmlEnvironment env(config);
  const auto backend = open_nvml();
  EXPECT_THAT(hardware_indices(backend->gpus()), ElementsAre(1u, 3u));
  EXPECT_EQ(backend->gpus()[0].index, 0u);
  EXPECT_DOUBLE_EQ(backend->power_w(1), 155);
  ASSERT_THAT(hardware_indices(backend->inaccessible_gpus()), ElementsAre(0u, 2u));
  const GpuInfo& denied = backend->inaccessible_gpus()[0];
  EXPECT_EQ(denied.state, GpuState::kNotAccessible);
  EXPECT_THAT(denied.problem, AllOf(HasSubstr("Insufficient Permissions"),
                                    HasSubstr("device cgroups"), HasSubstr("skipped")));
}

TEST(NvmlHealth, CudaIndicesCountOnlyTheGpusTheJobMayOpen) {
  // Slurm with device cgroups gives the job NVML GPU 2 and sets CUDA_VISIBLE_DEVICES=0: CUDA
  // device 0 is the first GPU the job may open, not NVML GPU 0.
  json config = FakeNvmlEnvironment::standard_config(4);
  for (std::size_t denied : {0u, 1u, 3u}) config["gpus"][denied]["no_permission"] = true;
  FakeNvmlEnvironment env(config);
  ScopedEnv cuda("CUDA_VISIBLE_DEVICES", "0");
  const auto backend = open_nvml();
  ASSERT_EQ(backend->gpu_count(), 1u);
  EXPECT_EQ(backend->gpus()[0].uuid, FakeNvmlEnvironment::standard_uuid(2));
}

// ---- CUDA's device order on a mixed node
// ---------------------------------------------------------

// NVML (PCI) order: a T4 at bus 0x17, an A100 at 0x65, another T4 at 0xB3.
json mixed_node() {
  json config = FakeNvmlEnvironment::standard_config(3);
  config["gpus"][0].update({{"name", "Tesla T4"},
                            {"architecture", "turing"},
                            {"compute_capability", "7.5"},
                            {"pci_bus_id", "00000000:17:00.0"}});
  config["gpus"][1].update({{"name", "NVIDIA A100-SXM4-40GB"},
                            {"architecture", "ampere"},
                            {"compute_capability", "8.0"},
                            {"pci_bus_id", "00000000:65:00.0"}});
  config["gpus"][2].update({{"name", "Tesla T4"},
                            {"architecture", "turing"},
                            {"compute_capability", "7.5"},
                            {"pci_bus_id", "00000000:B3:00.0"}});
  return config;
}

TEST(NvmlCudaOrder, FastestFirstIsTheDefaultHighestComputeCapabilityFirstTiesByPciBusId) {
  FakeNvmlEnvironment env(mixed_node());
  ScopedEnv order("CUDA_DEVICE_ORDER", std::nullopt);
  EXPECT_THAT(hardware_indices(open_nvml()->gpus()), ElementsAre(1u, 0u, 2u));
  EXPECT_THAT(hardware_indices(open_nvml(ordered("FASTEST_FIRST"))->gpus()),
              ElementsAre(1u, 0u, 2u));
  // CUDA_VISIBLE_DEVICES indices count in that order: 0 is the A100.
  const auto backend = open_nvml(visible("0"));
  ASSERT_EQ(backend->gpu_count(), 1u);
  EXPECT_EQ(backend->gpus()[0].name, "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(backend->gpus()[0].pci_bus_id, "00000000:65:00.0");
  EXPECT_THAT(hardware_indices(open_nvml(visible("2,1"))->gpus()), ElementsAre(2u, 0u));
}

TEST(NvmlCudaOrder, PciBusIdOrderIsByBusIdFromTheEnvironmentOrTheOption) {
  FakeNvmlEnvironment env(mixed_node());
  {
    ScopedEnv order("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
    EXPECT_THAT(hardware_indices(open_nvml()->gpus()), ElementsAre(0u, 1u, 2u));
    EXPECT_EQ(open_nvml(visible("0"))->gpus()[0].name, "Tesla T4");
  }
  EXPECT_THAT(hardware_indices(open_nvml(visible("1,0", "PCI_BUS_ID"))->gpus()),
              ElementsAre(1u, 0u));
}

TEST(NvmlCudaOrder, PciOrderFollowsTheBusIdsNotNvmlsNumbering) {
  json config = mixed_node();
  // The A100 listed first by NVML, but on a later bus than the T4 after it.
  std::swap(config["gpus"][0], config["gpus"][1]);
  FakeNvmlEnvironment env(config);
  EXPECT_THAT(hardware_indices(open_nvml(ordered("PCI_BUS_ID"))->gpus()), ElementsAre(1u, 0u, 2u));
}

TEST(NvmlCudaOrder, UuidEntriesAndTheStopRuleApplyInCudaOrder) {
  json config = mixed_node();
  config["gpus"][0]["uuid"] = "GPU-7a7a0000-0000-0000-0000-000000000000";
  config["gpus"][1]["uuid"] = "GPU-a100a100-0000-0000-0000-000000000000";
  config["gpus"][2]["uuid"] = "GPU-7b7b0000-0000-0000-0000-000000000000";
  FakeNvmlEnvironment env(config);
  ScopedEnv order("CUDA_DEVICE_ORDER", std::nullopt);
  // GPU-7b → NVML 2; "1" is CUDA 1 = NVML 0; "0" = the A100; "GPU-7" is ambiguous: the list stops.
  EXPECT_THAT(hardware_indices(open_nvml(visible("GPU-7b,1,0,GPU-7,2"))->gpus()),
              ElementsAre(2u, 0u, 1u));
  // "1" after GPU-7a repeats NVML GPU 0 (CUDA device 1): the list stops there.
  EXPECT_THAT(hardware_indices(open_nvml(visible("GPU-7a,1,2"))->gpus()), ElementsAre(0u));
}

TEST(NvmlCudaOrder, AnUnknownOrderIsCudasDefault) {
  FakeNvmlEnvironment env(mixed_node());
  EXPECT_THAT(hardware_indices(open_nvml(ordered("SLOWEST_FIRST"))->gpus()),
              ElementsAre(1u, 0u, 2u));
}

// ---- MIG --------------------------------------------------------------------------------------

constexpr const char* kMigA = "MIG-aaaaaaaa-0000-0000-0000-000000000000";
constexpr const char* kMigB = "MIG-bbbbbbbb-0000-0000-0000-000000000000";

json mig_node() {
  json config = FakeNvmlEnvironment::standard_config(2);
  config["gpus"][0]["name"] = "NVIDIA A100-SXM4-40GB";
  config["gpus"][0]["mig_devices"] = {kMigA, kMigB};
  return config;
}

TEST(NvmlMig, ASliceAloneIsListedAndRefusedNeverReadAsZero) {
  FakeNvmlEnvironment env(mig_node());
  const auto backend = open_nvml(visible(kMigB));
  ASSERT_EQ(backend->gpu_count(), 1u);
  const GpuInfo& slice = backend->gpus()[0];
  EXPECT_EQ(slice.state, GpuState::kMigSlice);
  EXPECT_EQ(slice.uuid, kMigB);
  EXPECT_EQ(slice.hardware_index, 0u);
  EXPECT_THAT(slice.problem,
              AllOf(HasSubstr(kMigB), HasSubstr(FakeNvmlEnvironment::standard_uuid(0)),
                    HasSubstr("no power or energy per MIG slice"), HasSubstr("every slice")));
  for (const auto& read : {std::function<void()>([&] { backend->power_w(0); }),
                           std::function<void()>([&] { backend->energy_j(0); })}) {
    EXPECT_EQ(expect_error(read).code(), ErrorCode::kNotSupported);
  }
}

TEST(NvmlMig, EverySliceVisibleMeasuresTheWholeParentAndSaysSo) {
  FakeNvmlEnvironment env(mig_node());
  // A unique prefix names a MIG device too.
  const auto backend = open_nvml(visible(std::string(kMigA) + ",MIG-bbbb,1"));
  ASSERT_EQ(backend->gpu_count(), 3u);
  const GpuInfo& parent = backend->gpus()[0];
  EXPECT_TRUE(is_healthy(parent));
  EXPECT_EQ(parent.hardware_index, 0u);
  EXPECT_EQ(parent.uuid, FakeNvmlEnvironment::standard_uuid(0));
  EXPECT_THAT(parent.note, AllOf(HasSubstr(kMigA), HasSubstr(kMigB), HasSubstr("whole GPU")));
  EXPECT_DOUBLE_EQ(backend->power_w(0), 155);
  const GpuInfo& second = backend->gpus()[1];
  EXPECT_EQ(second.state, GpuState::kMigSlice);
  EXPECT_THAT(second.problem, HasSubstr("measured with GPU 0"));
  EXPECT_EQ(backend->gpus()[2].hardware_index, 1u);
}

TEST(NvmlMig, UnknownAndOldStyleMigNamesStopTheList) {
  FakeNvmlEnvironment env(mig_node());
  EXPECT_EQ(open_nvml(visible("1,MIG-ffff,0"))->gpu_count(), 1u);
  EXPECT_THAT(
      open_nvml(visible("MIG-GPU-" + FakeNvmlEnvironment::standard_uuid(0).substr(4) + "/1/0,1"))
          ->gpus(),
      IsEmpty());
}

// ---- vGPU: no counter, no power ---------------------------------------------------------------

TEST(NvmlVgpu, AGpuWithNeitherCounterNorPowerIsNotMeasurable) {
  json config = FakeNvmlEnvironment::standard_config(3);
  config["gpus"][1].update({{"energy_counter", false}, {"power_reading", false}});
  config["gpus"][2]["power_reading"] = false;  // a counter is enough to measure
  FakeNvmlEnvironment env(config);
  const auto backend = open_nvml();
  ASSERT_EQ(backend->gpu_count(), 3u);
  const GpuInfo& vgpu = backend->gpus()[1];
  EXPECT_EQ(vgpu.state, GpuState::kUnmeasurable);
  EXPECT_THAT(vgpu.problem,
              AllOf(HasSubstr("neither an energy counter nor a power reading"), HasSubstr("vGPU")));
  EXPECT_EQ(expect_error([&] { backend->power_w(1); }).code(), ErrorCode::kNotSupported);

  const GpuInfo& counter_only = backend->gpus()[2];
  EXPECT_TRUE(is_healthy(counter_only));
  EXPECT_FALSE(counter_only.has_power_reading);
  EXPECT_GT(backend->energy_j(2), 0);
  EXPECT_THAT(expect_error([&] { backend->power_w(2); }).what(), HasSubstr("no power draw"));
}

// ---- The fake's health controls themselves ----------------------------------------------------

TEST(NvmlHealthFake, LostAfterCallsCountsPerDeviceCallsHandlesIncluded) {
  json config = FakeNvmlEnvironment::standard_config(1);
  config["gpus"][0]["lost_after_calls"] = 2;
  FakeNvmlEnvironment env(config);
  void* library = ::dlopen(FakeNvmlEnvironment::library_path(), RTLD_NOW);
  ASSERT_NE(library, nullptr);
  auto init = reinterpret_cast<int (*)()>(::dlsym(library, "nvmlInit_v2"));
  auto shutdown = reinterpret_cast<int (*)()>(::dlsym(library, "nvmlShutdown"));
  auto handle_by_index = reinterpret_cast<int (*)(unsigned, void**)>(
      ::dlsym(library, "nvmlDeviceGetHandleByIndex_v2"));
  auto power =
      reinterpret_cast<int (*)(void*, unsigned*)>(::dlsym(library, "nvmlDeviceGetPowerUsage"));
  ASSERT_EQ(init(), nvml_return::kSuccess);
  void* device = nullptr;
  unsigned milliwatts = 0;
  EXPECT_EQ(handle_by_index(0, &device), nvml_return::kSuccess);
  EXPECT_EQ(power(device, &milliwatts), nvml_return::kSuccess);
  EXPECT_EQ(power(device, &milliwatts), nvml_return::kGpuIsLost);
  EXPECT_EQ(handle_by_index(0, &device), nvml_return::kGpuIsLost);
  EXPECT_EQ(shutdown(), nvml_return::kSuccess);
  ::dlclose(library);
}

}  // namespace
}  // namespace chase
