// The fake NVML library itself (tests/fake_nvml/fake_nvml.cpp), called through its C entry points
// and test controls: the double the product's NVML tests stand on. Kept apart from those tests, so
// that a product test always asserts on the product, and a broken fake shows up here, by name.
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "chase/error.h"
#include "support/errors.h"
#include "support/fake_nvml_env.h"

namespace chase {
namespace {

using chase::testing::expect_error;
using chase::testing::FakeNvmlEnvironment;
using json = nlohmann::json;
namespace nvml_return = chase::testing::nvml_return;

constexpr const char* kSetLimit = "nvmlDeviceSetPowerManagementLimit";

std::string uuid(std::size_t i) { return FakeNvmlEnvironment::standard_uuid(i); }

// The fake's NVML entry points, called directly.
class NvmlFake : public ::testing::Test {
 protected:
  using Device = void*;

  template <typename Function>
  Function symbol(const char* name) {
    void* address = ::dlsym(handle_, name);
    if (address == nullptr) ADD_FAILURE() << "the fake does not export " << name;
    return reinterpret_cast<Function>(address);
  }

  ~NvmlFake() override {
    // Leave NVML uninitialised even when a test stopped early, so the next test's nvmlInit reads
    // its own config.
    while (shutdown_() == nvml_return::kSuccess) {
    }
    ::dlclose(handle_);
  }

  FakeNvmlEnvironment env_{FakeNvmlEnvironment::standard_config(2)};
  void* handle_ = ::dlopen(FakeNvmlEnvironment::library_path(), RTLD_NOW);
  int (*init_)() = symbol<int (*)()>("nvmlInit_v2");
  int (*shutdown_)() = symbol<int (*)()>("nvmlShutdown");
  const char* (*error_string_)(int) = symbol<const char* (*)(int)>("nvmlErrorString");
  int (*get_handle_)(unsigned,
                     Device*) = symbol<int (*)(unsigned, Device*)>("nvmlDeviceGetHandleByIndex_v2");
};

TEST_F(NvmlFake, ErrorStringsAreNvmls) {
  EXPECT_STREQ(error_string_(nvml_return::kSuccess), "Success");
  EXPECT_STREQ(error_string_(nvml_return::kUninitialized), "Uninitialized");
  EXPECT_STREQ(error_string_(nvml_return::kInvalidArgument), "Invalid Argument");
  EXPECT_STREQ(error_string_(nvml_return::kNotSupported), "Not Supported");
  EXPECT_STREQ(error_string_(nvml_return::kNoPermission), "Insufficient Permissions");
  EXPECT_STREQ(error_string_(nvml_return::kNotFound), "Not Found");
  EXPECT_STREQ(error_string_(nvml_return::kDriverNotLoaded), "Driver Not Loaded");
  EXPECT_STREQ(error_string_(nvml_return::kGpuIsLost), "GPU is lost");
  EXPECT_STREQ(error_string_(nvml_return::kUnknown), "Unknown Error");
  EXPECT_STREQ(error_string_(12345), "Unknown Error");
}

TEST_F(NvmlFake, InitialisationIsReferenceCounted) {
  auto get_count = symbol<int (*)(unsigned*)>("nvmlDeviceGetCount_v2");
  unsigned count = 0;
  EXPECT_EQ(get_count(&count), nvml_return::kUninitialized);
  EXPECT_EQ(shutdown_(), nvml_return::kUninitialized);
  ASSERT_EQ(init_(), nvml_return::kSuccess);
  ASSERT_EQ(init_(), nvml_return::kSuccess);
  EXPECT_EQ(shutdown_(), nvml_return::kSuccess);
  EXPECT_EQ(get_count(&count), nvml_return::kSuccess);  // still initialised once
  EXPECT_EQ(count, 2u);
  EXPECT_EQ(env_.call_count("nvmlInit_v2"), 2u);
  EXPECT_EQ(shutdown_(), nvml_return::kSuccess);
  EXPECT_EQ(get_count(&count), nvml_return::kUninitialized);
}

TEST_F(NvmlFake, StringsNeedABufferLargeEnough) {
  ASSERT_EQ(init_(), nvml_return::kSuccess);
  auto get_uuid = symbol<int (*)(Device, char*, unsigned)>("nvmlDeviceGetUUID");
  auto get_version = symbol<int (*)(char*, unsigned)>("nvmlSystemGetDriverVersion");
  Device device = nullptr;
  ASSERT_EQ(get_handle_(1, &device), nvml_return::kSuccess);
  char buffer[96];
  EXPECT_EQ(get_uuid(device, buffer, 10), nvml_return::kInsufficientSize);
  ASSERT_EQ(get_uuid(device, buffer, sizeof buffer), nvml_return::kSuccess);
  EXPECT_EQ(std::string(buffer), uuid(1));
  ASSERT_EQ(get_version(buffer, sizeof buffer), nvml_return::kSuccess);
  EXPECT_STREQ(buffer, "550.54.15");
  EXPECT_EQ(get_handle_(2, &device), nvml_return::kInvalidArgument);
  EXPECT_EQ(shutdown_(), nvml_return::kSuccess);
}

TEST_F(NvmlFake, HandlesAreFoundByUuid) {
  ASSERT_EQ(init_(), nvml_return::kSuccess);
  auto by_uuid = symbol<int (*)(const char*, Device*)>("nvmlDeviceGetHandleByUUID");
  auto get_index = symbol<int (*)(Device, unsigned*)>("nvmlDeviceGetIndex");
  Device device = nullptr;
  ASSERT_EQ(by_uuid(uuid(1).c_str(), &device), nvml_return::kSuccess);
  unsigned index = 0;
  ASSERT_EQ(get_index(device, &index), nvml_return::kSuccess);
  EXPECT_EQ(index, 1u);
  EXPECT_EQ(by_uuid("GPU-nope", &device), nvml_return::kNotFound);
  EXPECT_EQ(shutdown_(), nvml_return::kSuccess);
}

TEST_F(NvmlFake, LimitsOutsideTheConstraintsAndBadClockRangesAreInvalid) {
  ASSERT_EQ(init_(), nvml_return::kSuccess);
  auto set_limit = symbol<int (*)(Device, unsigned)>(kSetLimit);
  auto enforced = symbol<int (*)(Device, unsigned*)>("nvmlDeviceGetEnforcedPowerLimit");
  auto lock_clocks = symbol<int (*)(Device, unsigned, unsigned)>("nvmlDeviceSetGpuLockedClocks");
  auto reset_clocks = symbol<int (*)(Device)>("nvmlDeviceResetGpuLockedClocks");
  Device device = nullptr;
  ASSERT_EQ(get_handle_(0, &device), nvml_return::kSuccess);
  EXPECT_EQ(set_limit(device, 99999), nvml_return::kInvalidArgument);
  EXPECT_EQ(set_limit(device, 300001), nvml_return::kInvalidArgument);
  EXPECT_EQ(set_limit(device, 120000), nvml_return::kSuccess);
  unsigned limit_mw = 0;
  ASSERT_EQ(enforced(device, &limit_mw), nvml_return::kSuccess);
  EXPECT_EQ(limit_mw, 120000u);
  EXPECT_DOUBLE_EQ(env_.power_w(0), 120);
  EXPECT_EQ(lock_clocks(device, 1500, 1000), nvml_return::kInvalidArgument);
  EXPECT_EQ(lock_clocks(device, 1000, 1500), nvml_return::kSuccess);
  EXPECT_EQ(reset_clocks(device), nvml_return::kSuccess);
  EXPECT_EQ(env_.call_count(kSetLimit), 3u);
  EXPECT_EQ(shutdown_(), nvml_return::kSuccess);
}

TEST_F(NvmlFake, TheStateFileOverridesTheConfiguredLimitAtInitialisation) {
  std::ofstream(env_.state_path()) << json{{"gpus", {{{"uuid", uuid(1)}, {"limit_mw", 150000}}}}};
  ASSERT_EQ(init_(), nvml_return::kSuccess);
  EXPECT_DOUBLE_EQ(env_.limit_w(0), 300);
  EXPECT_DOUBLE_EQ(env_.limit_w(1), 150);
  EXPECT_EQ(shutdown_(), nvml_return::kSuccess);
}

TEST_F(NvmlFake, UnknownFunctionNamesAreRejected) {
  EXPECT_THROW(env_.call_count("nvmlDeviceSetPowerManagmentLimit"), Error);
  json config = FakeNvmlEnvironment::standard_config(1);
  config["gpus"][0]["fail"] = {{"nvmlNoSuchFunction", "UNKNOWN"}};
  env_.write_config(config);
  EXPECT_EQ(init_(), nvml_return::kDriverNotLoaded);
}

TEST_F(NvmlFake, ControlsRejectGpusThatDoNotExist) {
  ASSERT_EQ(init_(), nvml_return::kSuccess);
  EXPECT_EQ(expect_error([&] { env_.set_load(2, 1.0); }).code(), ErrorCode::kNotFound);
  EXPECT_EQ(expect_error([&] { env_.energy_j(5); }).code(), ErrorCode::kNotFound);
  EXPECT_EQ(shutdown_(), nvml_return::kSuccess);
}

}  // namespace
}  // namespace chase
