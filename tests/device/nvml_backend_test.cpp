// Tests of the NVML backend, end to end through dlopen of the fake NVML library
// (tests/fake_nvml), and of the CUDA_VISIBLE_DEVICES selection. The fake itself is tested apart,
// in tests/fake_nvml/fake_nvml_test.cpp.
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chase/error.h"
#include "chase/nvml.h"
#include "device/nvml_visible_devices.h"
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
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
namespace nvml_return = chase::testing::nvml_return;

constexpr const char* kSetLimit = "nvmlDeviceSetPowerManagementLimit";

NvmlOptions visible(const std::string& spec) {
  NvmlOptions options;
  options.visible_devices = spec;
  return options;
}

std::vector<unsigned> hardware_indices(const GpuBackend& backend) {
  std::vector<unsigned> indices;
  for (const auto& gpu : backend.gpus()) indices.push_back(gpu.hardware_index);
  return indices;
}

std::string uuid(std::size_t i) { return FakeNvmlEnvironment::standard_uuid(i); }

double seconds(Clock::duration duration) { return std::chrono::duration<double>(duration).count(); }

// A value read between two clock readings: the read happened somewhere in [before, after].
struct Bracketed {
  Clock::time_point before;
  double value;
  Clock::time_point after;
};

template <typename Read>
Bracketed bracketed(Read&& read) {
  const auto before = Clock::now();
  const double value = read();
  return {before, value, Clock::now()};
}

// ---- Opening -----------------------------------------------------------------------------------

TEST(NvmlOpen, ListsEveryGpuWithIdentityArchitectureAndLimits) {
  json config = FakeNvmlEnvironment::standard_config(4);
  config["gpus"][3].update({{"name", "NVIDIA H100 80GB HBM3"},
                            {"architecture", "hopper"},
                            {"min_limit_w", 200},
                            {"max_limit_w", 700},
                            {"default_limit_w", 700},
                            {"limit_w", 700}});
  FakeNvmlEnvironment env(config);
  NvmlOptions pci_order;  // in NVML's order: under FASTEST_FIRST the H100 would come first
  pci_order.device_order = "PCI_BUS_ID";
  const auto backend = open_nvml(pci_order);

  EXPECT_EQ(backend->backend_name(), "nvml");
  ASSERT_EQ(backend->gpu_count(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    const GpuInfo& gpu = backend->gpus()[i];
    EXPECT_EQ(gpu.index, i);
    EXPECT_EQ(gpu.hardware_index, i);
    EXPECT_EQ(gpu.uuid, uuid(i));
    EXPECT_TRUE(gpu.has_energy_counter);
  }
  const GpuInfo& a40 = backend->gpus()[0];
  EXPECT_EQ(a40.name, "NVIDIA A40");
  EXPECT_EQ(a40.architecture, GpuArchitecture::kAmpere);
  EXPECT_DOUBLE_EQ(a40.min_power_limit_w, 100);
  EXPECT_DOUBLE_EQ(a40.max_power_limit_w, 300);
  EXPECT_DOUBLE_EQ(a40.default_power_limit_w, 300);
  const GpuInfo& h100 = backend->gpus()[3];
  EXPECT_EQ(h100.name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(h100.architecture, GpuArchitecture::kHopper);
  EXPECT_DOUBLE_EQ(h100.min_power_limit_w, 200);
  EXPECT_DOUBLE_EQ(h100.max_power_limit_w, 700);
  EXPECT_DOUBLE_EQ(h100.default_power_limit_w, 700);
}

TEST(NvmlOpen, ReadsArchitectureNumbersAndToleratesAnUnsupportedArchitectureQuery) {
  json config = FakeNvmlEnvironment::standard_config(2);
  config["gpus"][0]["architecture"] = 8;
  config["gpus"][1]["fail"] = {{"nvmlDeviceGetArchitecture", "NOT_SUPPORTED"}};
  FakeNvmlEnvironment env(config);
  const auto backend = open_nvml();
  EXPECT_EQ(backend->gpus()[0].architecture, GpuArchitecture::kAda);
  EXPECT_EQ(backend->gpus()[1].architecture, GpuArchitecture::kUnknown);
}

TEST(NvmlOpen, AMachineWithoutGpusHasAnEmptyList) {
  FakeNvmlEnvironment env(json{{"gpus", json::array()}});
  const auto backend = open_nvml();
  EXPECT_THAT(backend->gpus(), IsEmpty());
  EXPECT_EQ(expect_error([&] { backend->power_w(0); }).code(), ErrorCode::kNotFound);
}

TEST(NvmlOpen, ShutsNvmlDownWhenDestroyedSoTheNextOpenStartsAfresh) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(4));
  open_nvml().reset();
  // The fake re-reads its config only at an nvmlInit from uninitialised.
  env.write_config(FakeNvmlEnvironment::standard_config(2));
  EXPECT_EQ(open_nvml()->gpu_count(), 2u);
}

TEST(NvmlOpen, ShutsNvmlDownWhenOpeningFailsHalfway) {
  json config = FakeNvmlEnvironment::standard_config(2);
  config["fail"] = {{"nvmlDeviceGetCount_v2", "UNKNOWN"}};  // after nvmlInit succeeded
  FakeNvmlEnvironment env(config);
  EXPECT_THROW(open_nvml(), Error);
  env.write_config(FakeNvmlEnvironment::standard_config(3));
  EXPECT_EQ(open_nvml()->gpu_count(), 3u);
}

// ---- CUDA_VISIBLE_DEVICES, end to end
// ------------------------------------------------------------

TEST(NvmlVisibleDevices, UnsetMeansEveryGpu) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(4));
  EXPECT_THAT(hardware_indices(*open_nvml()), ElementsAre(0u, 1u, 2u, 3u));
}

TEST(NvmlVisibleDevices, IndicesSelectAndReorderGpus) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(4));
  const auto backend = open_nvml(visible("2,0"));
  ASSERT_THAT(hardware_indices(*backend), ElementsAre(2u, 0u));
  // Positions are CUDA's indices: GPU 0 is NVML GPU 2.
  EXPECT_EQ(backend->gpus()[0].index, 0u);
  EXPECT_EQ(backend->gpus()[0].uuid, uuid(2));
  EXPECT_EQ(backend->gpus()[1].index, 1u);
  EXPECT_EQ(backend->gpus()[1].uuid, uuid(0));
  env.set_load(2, 1.0);
  EXPECT_DOUBLE_EQ(backend->power_w(0), 280);
  EXPECT_DOUBLE_EQ(backend->power_w(1), 155);
}

TEST(NvmlVisibleDevices, ReadsTheEnvironmentVariableAndTrimsEntries) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(4));
  ScopedEnv cuda("CUDA_VISIBLE_DEVICES", " 3 , 1 ");
  EXPECT_THAT(hardware_indices(*open_nvml()), ElementsAre(3u, 1u));
}

TEST(NvmlVisibleDevices, TheOptionOverridesTheEnvironmentVariable) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(4));
  ScopedEnv cuda("CUDA_VISIBLE_DEVICES", "3");
  EXPECT_THAT(hardware_indices(*open_nvml(visible("1"))), ElementsAre(1u));
}

TEST(NvmlVisibleDevices, UuidsAndUniqueUuidPrefixesSelectGpus) {
  json config = FakeNvmlEnvironment::standard_config(3);
  config["gpus"][0]["uuid"] = "GPU-8f3a0c1e-0000-0000-0000-000000000000";
  config["gpus"][1]["uuid"] = "GPU-8f3b7d22-0000-0000-0000-000000000000";
  config["gpus"][2]["uuid"] = "GPU-c0ffee00-0000-0000-0000-000000000000";
  FakeNvmlEnvironment env(config);
  EXPECT_THAT(hardware_indices(*open_nvml(visible("GPU-c0ffee00-0000-0000-0000-000000000000,"
                                                  "GPU-8f3b"))),
              ElementsAre(2u, 1u));
  // "GPU-8f3" matches GPUs 0 and 1: the list stops there.
  EXPECT_THAT(hardware_indices(*open_nvml(visible("GPU-C0F,GPU-8f3,0"))), ElementsAre(2u));
}

TEST(NvmlVisibleDevices, TheListStopsAtTheFirstInvalidEntry) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(4));
  EXPECT_THAT(hardware_indices(*open_nvml(visible("1,7,2"))), ElementsAre(1u));
  EXPECT_THAT(hardware_indices(*open_nvml(visible("0,0,1"))), ElementsAre(0u));
  EXPECT_THAT(hardware_indices(*open_nvml(visible("1,-1,0"))), ElementsAre(1u));
  EXPECT_THAT(hardware_indices(*open_nvml(visible("3,GPU-ffff,0"))), ElementsAre(3u));
  EXPECT_THAT(hardware_indices(*open_nvml(visible("MIG-1234,0"))), IsEmpty());
}

TEST(NvmlVisibleDevices, AnEmptyValueHidesEveryGpu) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(4));
  EXPECT_THAT(open_nvml(visible(""))->gpus(), IsEmpty());
  ScopedEnv cuda("CUDA_VISIBLE_DEVICES", "");
  EXPECT_THAT(open_nvml()->gpus(), IsEmpty());
}

TEST(NvmlVisibleDevices, SelectedGpusAreTheOnlyOnesOpened) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(4));
  const auto backend = open_nvml(visible("2"));
  EXPECT_EQ(env.call_count("nvmlDeviceGetName"), 1u);
}

// ---- CUDA_VISIBLE_DEVICES, the selection rules alone -------------------------------------------

class NvmlSelectVisibleDevices : public ::testing::Test {
 protected:
  nvml::VisibleDevices select(std::string_view spec) {
    return nvml::select_visible_devices(spec, static_cast<unsigned>(uuids_.size()),
                                        [this](unsigned i) {
                                          ++uuid_reads_;
                                          return uuids_.at(i);
                                        });
  }

  std::vector<std::string> uuids_{"GPU-aaaa1111", "GPU-aaaa2222", "GPU-bbbb3333"};
  int uuid_reads_ = 0;
};

TEST_F(NvmlSelectVisibleDevices, IndicesNeedNoUuid) {
  const auto selection = select("2, 0 ,1");
  EXPECT_THAT(selection.indices, ElementsAre(2u, 0u, 1u));
  EXPECT_THAT(selection.warning, IsEmpty());
  EXPECT_EQ(uuid_reads_, 0);
}

TEST_F(NvmlSelectVisibleDevices, MatchesUuidPrefixesIgnoringCase) {
  EXPECT_THAT(select("gpu-BBBB,GPU-aaaa2").indices, ElementsAre(2u, 1u));
  EXPECT_THAT(select("GPU-aaaa1111").indices, ElementsAre(0u));
}

TEST_F(NvmlSelectVisibleDevices, AWholeUuidWinsOverALongerUuidItPrefixes) {
  uuids_ = {"GPU-abcd-long", "GPU-abcd"};
  EXPECT_THAT(select("GPU-abcd").indices, ElementsAre(1u));
}

TEST_F(NvmlSelectVisibleDevices, WarnsNamingTheEntryTheReasonAndTheGpusKept) {
  struct Case {
    const char* spec;
    std::vector<unsigned> kept;
    const char* reason;
  };
  const Case cases[] = {
      {"0,3,1", {0}, "\"3\" is out of range: there are 3 GPUs"},
      {"0,99999999999999999999999", {0}, "out of range"},
      {"1,GPU-aaaa,0", {1}, "\"GPU-aaaa\" is an ambiguous UUID prefix: it matches GPUs 0, 1"},
      {"GPU-cccc", {}, "\"GPU-cccc\" matches no GPU's UUID"},
      {"2,1,2", {2, 1}, "\"2\" repeats GPU 2"},
      {"-1", {}, "\"-1\" is negative"},
      {"0,MIG-GPU-aaaa1111/1/0", {0}, "is an old-style MIG name"},
      {"0,MIG-aaaa1111", {0}, "is a MIG device, which this GPU backend cannot resolve"},
      {"0,,1", {0}, "\"\" is empty"},
      {"1,abc", {1}, "\"abc\" is neither a GPU index nor a GPU UUID"},
      {"1,0x1", {1}, "neither"},
  };
  for (const Case& c : cases) {
    const auto selection = select(c.spec);
    EXPECT_EQ(selection.indices, c.kept) << c.spec;
    EXPECT_THAT(selection.warning, AllOf(HasSubstr(c.reason), HasSubstr(c.spec),
                                         HasSubstr("the GPU list stops there")))
        << c.spec;
  }
  EXPECT_THAT(select("0,2,7").warning, HasSubstr("keeping GPUs 0, 2"));
  EXPECT_THAT(select("7").warning, HasSubstr("keeping no GPU"));
}

TEST_F(NvmlSelectVisibleDevices, EmptyOrBlankSelectsNothingWithoutWarning) {
  for (const char* spec : {"", "  "}) {
    const auto selection = select(spec);
    EXPECT_THAT(selection.indices, IsEmpty()) << spec;
    EXPECT_THAT(selection.warning, IsEmpty()) << spec;
  }
}

// ---- Energy
// --------------------------------------------------------------------------------------

TEST(NvmlEnergy, TheCounterTracksTheFakesModel) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(2));
  const auto backend = open_nvml();
  for (std::size_t gpu = 0; gpu < 2; ++gpu) {
    const double before = backend->energy_j(gpu);
    const double model = env.energy_j(static_cast<unsigned>(gpu));
    const double after = backend->energy_j(gpu);
    // NVML counts whole mJ, truncated.
    EXPECT_GE(model, before);
    EXPECT_LE(model, after + 0.001);
    EXPECT_NEAR(before, 1e6, 155.0);  // initial_energy_j, plus what accrued since the open
  }
}

TEST(NvmlEnergy, EnergyOverASleepIsPowerTimesTime) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  const auto backend = open_nvml();
  const double power_w = backend->power_w(0);
  ASSERT_DOUBLE_EQ(power_w, 155);
  const Bracketed start = bracketed([&] { return backend->energy_j(0); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const Bracketed end = bracketed([&] { return backend->energy_j(0); });

  const double energy_j = end.value - start.value;
  const double midpoint_s = seconds((end.before - start.before) + (end.after - start.after)) / 2;
  EXPECT_NEAR(energy_j, power_w * midpoint_s, 0.02 * power_w * midpoint_s);
  // Exact bounds, whatever the scheduler did: the reads lie within the brackets (±1 mJ rounding).
  EXPECT_GE(energy_j, power_w * seconds(end.before - start.after) - 0.001);
  EXPECT_LE(energy_j, power_w * seconds(end.after - start.before) + 0.001);
}

TEST(NvmlEnergy, ALoadChangeIsIntegratedExactly) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  const auto backend = open_nvml();
  const Bracketed start = bracketed([&] { return backend->energy_j(0); });
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  const Bracketed change = bracketed([&] {
    env.set_load(0, 1.0);  // 155 W → 280 W
    return 0.0;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  const Bracketed end = bracketed([&] { return backend->energy_j(0); });

  // E = 155 (t_change − t_start) + 280 (t_end − t_change), smallest with the latest start and
  // change and the earliest end.
  const auto energy = [](Clock::time_point t_start, Clock::time_point t_change,
                         Clock::time_point t_end) {
    return 155 * seconds(t_change - t_start) + 280 * seconds(t_end - t_change);
  };
  const double measured = end.value - start.value;
  EXPECT_GE(measured, energy(start.after, change.after, end.before) - 0.001);
  EXPECT_LE(measured, energy(start.before, change.before, end.after) + 0.001);
  EXPECT_DOUBLE_EQ(backend->power_w(0), 280);
}

TEST(NvmlEnergy, AGpuWithoutCounterSaysSoAndThrowsNotSupported) {
  json config = FakeNvmlEnvironment::standard_config(2);
  config["gpus"][1]["energy_counter"] = false;
  FakeNvmlEnvironment env(config);
  const auto backend = open_nvml();
  EXPECT_TRUE(backend->gpus()[0].has_energy_counter);
  EXPECT_FALSE(backend->gpus()[1].has_energy_counter);

  const Error error = expect_error([&] { backend->energy_j(1); });
  EXPECT_EQ(error.code(), ErrorCode::kNotSupported);
  EXPECT_THAT(error.what(),
              AllOf(HasSubstr(describe(backend->gpus()[1])),
                    HasSubstr("no cumulative energy counter"), HasSubstr("sampling power_w()")));
  // Only the probes at open reached NVML, and power still works.
  EXPECT_EQ(env.call_count("nvmlDeviceGetTotalEnergyConsumption"), 2u);
  EXPECT_DOUBLE_EQ(backend->power_w(1), 155);
}

TEST(NvmlEnergy, PreVoltaGpusHaveNoCounterByDefault) {
  json config = FakeNvmlEnvironment::standard_config(1);
  config["gpus"][0].erase("energy_counter");
  config["gpus"][0]["architecture"] = "pascal";
  FakeNvmlEnvironment env(config);
  const auto backend = open_nvml();
  EXPECT_EQ(backend->gpus()[0].architecture, GpuArchitecture::kPascal);
  EXPECT_FALSE(backend->gpus()[0].has_energy_counter);
}

TEST(NvmlEnergy, AnyOtherProbeFailureMarksTheGpuFailedNamingIt) {
  json config = FakeNvmlEnvironment::standard_config(2);
  config["gpus"][1]["fail"] = {{"nvmlDeviceGetTotalEnergyConsumption", "UNKNOWN"}};
  FakeNvmlEnvironment env(config);
  const auto backend = open_nvml();
  EXPECT_EQ(backend->gpus()[1].state, GpuState::kFailed);
  const Error error = expect_error([&] { backend->power_w(1); });
  EXPECT_EQ(error.code(), ErrorCode::kInternal);
  EXPECT_THAT(error.what(), AllOf(HasSubstr("GPU 1 (NVIDIA A40, " + uuid(1) + ")"),
                                  HasSubstr("nvmlDeviceGetTotalEnergyConsumption failed"),
                                  HasSubstr("Unknown Error")));
  EXPECT_DOUBLE_EQ(backend->power_w(0), 155);
}

TEST(NvmlEnergy, ConcurrentReadersSeeAMonotonicCounter) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(4));
  const auto backend = open_nvml();
  std::atomic<int> regressions{0};
  std::vector<std::thread> readers;
  for (std::size_t t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      std::vector<double> last(4, 0.0);
      for (int round = 0; round < 200; ++round) {
        for (std::size_t gpu = 0; gpu < 4; ++gpu) {
          const double energy = backend->energy_j(gpu);
          if (energy < last[gpu]) ++regressions;
          last[gpu] = energy;
        }
      }
    });
  }
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(regressions.load(), 0);
}

// ---- Power and power limits ---------------------------------------------------------------------

TEST(NvmlPower, PowerFollowsLoadAndIsCappedByTheLimit) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(2));
  const auto backend = open_nvml();
  EXPECT_DOUBLE_EQ(backend->power_w(0), 155);
  env.set_load(0, 1.0);
  EXPECT_DOUBLE_EQ(backend->power_w(0), 280);
  backend->set_power_limit_w(0, 200);
  EXPECT_DOUBLE_EQ(backend->power_w(0), 200);
  EXPECT_DOUBLE_EQ(backend->power_w(0), env.power_w(0));
  EXPECT_DOUBLE_EQ(backend->power_w(1), 155);
}

TEST(NvmlPower, ALimitRoundTripsAndIsRecordedInTheStateFile) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(4));
  const auto backend = open_nvml(visible("1,0"));
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 300);
  EXPECT_THAT(env.limits_in_state_file(), IsEmpty());

  backend->set_power_limit_w(0, 250);
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 250);
  EXPECT_DOUBLE_EQ(env.limit_w(1), 250);  // visible GPU 0 is NVML GPU 1
  EXPECT_DOUBLE_EQ(backend->power_limit_w(1), 300);
  const auto limits = env.limits_in_state_file();
  ASSERT_EQ(limits.size(), 4u);
  EXPECT_DOUBLE_EQ(limits.at(uuid(1)), 250);
  EXPECT_DOUBLE_EQ(limits.at(uuid(0)), 300);
  EXPECT_EQ(env.call_count(kSetLimit), 1u);
}

TEST(NvmlPower, LimitsAreRoundedToTheNearestMilliwatt) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  const auto backend = open_nvml();
  backend->set_power_limit_w(0, 250.0004);
  EXPECT_DOUBLE_EQ(env.limit_w(0), 250.0);
  backend->set_power_limit_w(0, 250.0006);
  EXPECT_DOUBLE_EQ(env.limit_w(0), 250.001);
  backend->set_power_limit_w(0, 100);  // both bounds are accepted
  backend->set_power_limit_w(0, 300);
  EXPECT_DOUBLE_EQ(env.limit_w(0), 300);
}

TEST(NvmlPower, AnOutOfRangeLimitIsRejectedBeforeReachingNvml) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(2));
  const auto backend = open_nvml();
  for (const double watts : {99.9, 300.5, -5.0, std::nan("")}) {
    const Error error = expect_error([&] { backend->set_power_limit_w(1, watts); });
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << watts;
    EXPECT_THAT(error.what(),
                AllOf(HasSubstr(describe(backend->gpus()[1])), HasSubstr("100 W to 300 W")));
  }
  EXPECT_EQ(env.call_count(kSetLimit), 0u);
  EXPECT_DOUBLE_EQ(env.limit_w(1), 300);
}

TEST(NvmlPower, NoPermissionSaysHowToGetIt) {
  json config = FakeNvmlEnvironment::standard_config(2);
  config["gpus"][1]["fail"] = {{kSetLimit, "NO_PERMISSION"}};
  FakeNvmlEnvironment env(config);
  const auto backend = open_nvml();
  const Error error = expect_error([&] { backend->set_power_limit_w(1, 250); });
  EXPECT_EQ(error.code(), ErrorCode::kPermissionDenied);
  EXPECT_THAT(error.what(),
              AllOf(HasSubstr("GPU 1 (NVIDIA A40, " + uuid(1) + ")"),
                    HasSubstr("nvmlDeviceSetPowerManagementLimit(250000 mW) failed: "
                              "Insufficient Permissions."),
                    HasSubstr("root or CAP_SYS_ADMIN"), HasSubstr("sudo setcap cap_sys_admin+ep"),
                    HasSubstr("reading energy and power needs no privilege")));
  EXPECT_DOUBLE_EQ(env.limit_w(1), 300);
  EXPECT_THAT(env.limits_in_state_file(), IsEmpty());
  backend->set_power_limit_w(0, 250);  // the other GPU is unaffected
}

TEST(NvmlPower, ADriverRejectionIsInvalidArgument) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  const auto backend = open_nvml();
  env.set_failure(0, kSetLimit, nvml_return::kInvalidArgument);
  const Error error = expect_error([&] { backend->set_power_limit_w(0, 200); });
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(error.what(), AllOf(HasSubstr("Invalid Argument"), HasSubstr("nvidia-smi")));
  env.clear_failure(0, kSetLimit);
  backend->set_power_limit_w(0, 200);
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 200);
}

TEST(NvmlPower, ALimitOutlivesTheProcessThatSetIt) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(2));
  open_nvml()->set_power_limit_w(1, 180);
  // A new NVML session (as in a new process) starts from the driver's state, not the config.
  const auto backend = open_nvml();
  EXPECT_DOUBLE_EQ(backend->power_limit_w(1), 180);
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 300);
}

TEST(NvmlPower, AGpuWithoutPowerManagementCanStillBeMeasured) {
  json config = FakeNvmlEnvironment::standard_config(2);
  config["gpus"][1]["fail"] = {{"nvmlDeviceGetPowerManagementLimitConstraints", "NOT_SUPPORTED"}};
  FakeNvmlEnvironment env(config);
  const auto backend = open_nvml();
  const GpuInfo& gpu = backend->gpus()[1];
  EXPECT_DOUBLE_EQ(gpu.max_power_limit_w, 0);
  EXPECT_GT(backend->energy_j(1), 0);
  const Error error = expect_error([&] { backend->set_power_limit_w(1, 200); });
  EXPECT_EQ(error.code(), ErrorCode::kNotSupported);
  EXPECT_THAT(error.what(), AllOf(HasSubstr(describe(gpu)), HasSubstr("power-limit management")));
  EXPECT_EQ(env.call_count(kSetLimit), 0u);
}

// ---- Failures
// ------------------------------------------------------------------------------------

TEST(NvmlFailure, AGpuLostMidRunIsDeviceLostNamingGpuAndCall) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(2));
  const auto backend = open_nvml();
  const std::string lost_gpu = describe(backend->gpus()[1]);
  env.set_lost(1, true);

  const std::pair<const char*, std::function<void()>> calls[] = {
      {"nvmlDeviceGetTotalEnergyConsumption", [&] { backend->energy_j(1); }},
      {"nvmlDeviceGetPowerUsage", [&] { backend->power_w(1); }},
      {"nvmlDeviceGetPowerManagementLimit", [&] { backend->power_limit_w(1); }},
      {"nvmlDeviceSetPowerManagementLimit(200000 mW)", [&] { backend->set_power_limit_w(1, 200); }},
  };
  for (const auto& [call, action] : calls) {
    const Error error = expect_error(action);
    EXPECT_EQ(error.code(), ErrorCode::kDeviceLost) << call;
    EXPECT_THAT(error.what(),
                AllOf(HasSubstr(lost_gpu), HasSubstr(std::string(call) + " failed: GPU is lost"),
                      HasSubstr("fell off the bus"), HasSubstr("nvidia-smi")))
        << call;
  }
  EXPECT_DOUBLE_EQ(backend->power_w(0), 155);  // the other GPU carries on
  env.set_lost(1, false);
  EXPECT_DOUBLE_EQ(backend->power_w(1), 155);
}

TEST(NvmlFailure, AMissingLibraryIsUnavailableNamingThePath) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  NvmlOptions options;
  options.library_path = env.directory().string() + "/no-such-libnvidia-ml.so.1";
  const Error error = expect_error([&] { open_nvml(options); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_THAT(error.what(),
              AllOf(HasSubstr("NVML is not available"), HasSubstr(options.library_path),
                    HasSubstr("NvmlOptions::library_path")));
}

TEST(NvmlFailure, AMissingLibraryNamedByTheEnvironmentSaysSo) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  ScopedEnv library("CHASE_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1");
  const Error error = expect_error([] { open_nvml(); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_THAT(error.what(),
              AllOf(HasSubstr("/nonexistent/libnvidia-ml.so.1"), HasSubstr("CHASE_NVML_LIBRARY")));
}

TEST(NvmlFailure, WithoutADriverTheStandardNamesAreTriedAndNamed) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  ScopedEnv library("CHASE_NVML_LIBRARY", std::nullopt);
  if (void* real = ::dlopen("libnvidia-ml.so.1", RTLD_NOW)) {
    ::dlclose(real);
    GTEST_SKIP() << "this machine has a real NVML";
  }
  const Error error = expect_error([] { open_nvml(); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_THAT(
      error.what(),
      AllOf(HasSubstr("could not load libnvidia-ml.so.1 ("), HasSubstr("nor libnvidia-ml.so ("),
            HasSubstr("Install the NVIDIA driver, or set CHASE_NVML_LIBRARY")));
}

TEST(NvmlFailure, ALibraryThatIsNotNvmlIsUnavailableNamingTheMissingFunction) {
  NvmlOptions options;
  options.library_path = "libm.so.6";
  const Error error = expect_error([&] { open_nvml(options); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_THAT(error.what(), AllOf(HasSubstr("libm.so.6"), HasSubstr("nvmlInit_v2 nor nvmlInit")));
}

TEST(NvmlFailure, ADriverThatFailsToInitialiseIsUnavailable) {
  FakeNvmlEnvironment env(json{{"init_error", "DRIVER_NOT_LOADED"}, {"gpus", json::array()}});
  const Error error = expect_error([] { open_nvml(); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_THAT(error.what(), AllOf(HasSubstr("nvmlInit_v2()"), HasSubstr("Driver Not Loaded"),
                                  HasSubstr("modprobe nvidia")));
}

TEST(NvmlFailure, ALostGpuAtInitialisationIsDeviceLost) {
  FakeNvmlEnvironment env(json{{"init_error", "GPU_IS_LOST"}});
  EXPECT_EQ(expect_error([] { open_nvml(); }).code(), ErrorCode::kDeviceLost);
}

TEST(NvmlFailure, AMalformedOrMissingConfigLooksLikeAMissingDriver) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  std::ofstream(env.config_path()) << "{\"gpus\": [";
  EXPECT_EQ(expect_error([] { open_nvml(); }).code(), ErrorCode::kUnavailable);

  env.write_config(json{{"gpus", {{{"min_limit_w", 400}, {"max_limit_w", 300}}}}});
  EXPECT_EQ(expect_error([] { open_nvml(); }).code(), ErrorCode::kUnavailable);

  ScopedEnv config("FAKE_NVML_CONFIG", std::nullopt);
  EXPECT_THAT(expect_error([] { open_nvml(); }).what(), HasSubstr("Driver Not Loaded"));
}

TEST(NvmlFailure, AFailureWhileOpeningNamesTheGpuByIndex) {
  json config = FakeNvmlEnvironment::standard_config(3);
  config["gpus"][2]["fail"] = {{"nvmlDeviceGetName", "UNKNOWN"}};
  FakeNvmlEnvironment env(config);
  const auto backend = open_nvml();
  const Error error = expect_error([&] { backend->energy_j(2); });
  EXPECT_EQ(error.code(), ErrorCode::kInternal);
  EXPECT_THAT(error.what(), AllOf(HasSubstr("GPU 2 (NVML index 2)"),
                                  HasSubstr("nvmlDeviceGetName failed: Unknown Error")));
}

TEST(NvmlFailure, AFailureToCountGpusNamesTheCall) {
  json config = FakeNvmlEnvironment::standard_config(1);
  config["fail"] = {{"nvmlDeviceGetCount_v2", "UNKNOWN"}};
  FakeNvmlEnvironment env(config);
  const Error error = expect_error([] { open_nvml(); });
  EXPECT_EQ(error.code(), ErrorCode::kInternal);
  EXPECT_THAT(error.what(), HasSubstr("nvmlDeviceGetCount_v2 failed: Unknown Error"));
}

}  // namespace
}  // namespace chase
