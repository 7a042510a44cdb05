// Tests of the backend-independent GPU helpers in src/device/gpu.cpp.
#include "chase/gpu.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "chase/error.h"
#include "support/errors.h"

namespace chase {
namespace {

using chase::testing::expect_error;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr GpuArchitecture kAllArchitectures[] = {
    GpuArchitecture::kUnknown,   GpuArchitecture::kKepler, GpuArchitecture::kMaxwell,
    GpuArchitecture::kPascal,    GpuArchitecture::kVolta,  GpuArchitecture::kTuring,
    GpuArchitecture::kAmpere,    GpuArchitecture::kAda,    GpuArchitecture::kHopper,
    GpuArchitecture::kBlackwell,
};

GpuInfo a40(std::size_t index = 0) {
  GpuInfo gpu;
  gpu.index = index;
  gpu.name = "NVIDIA A40";
  gpu.uuid = "GPU-1234";
  gpu.min_power_limit_w = 100;
  gpu.max_power_limit_w = 300;
  gpu.default_power_limit_w = 300;
  return gpu;
}

TEST(GpuArchitecture, NamesAreHumanReadable) {
  EXPECT_EQ(to_string(GpuArchitecture::kUnknown), "unknown");
  EXPECT_EQ(to_string(GpuArchitecture::kVolta), "Volta");
  EXPECT_EQ(to_string(GpuArchitecture::kAda), "Ada");
  EXPECT_EQ(to_string(GpuArchitecture::kBlackwell), "Blackwell");
  EXPECT_EQ(to_string(static_cast<GpuArchitecture>(99)), "unknown");
}

TEST(GpuArchitecture, ParsingRoundTripsEveryName) {
  for (const GpuArchitecture arch : kAllArchitectures) {
    EXPECT_EQ(parse_gpu_architecture(to_string(arch)), arch) << to_string(arch);
  }
}

TEST(GpuArchitecture, ParsingIgnoresCaseAndRejectsOtherText) {
  EXPECT_EQ(parse_gpu_architecture("ampere"), GpuArchitecture::kAmpere);
  EXPECT_EQ(parse_gpu_architecture("HOPPER"), GpuArchitecture::kHopper);
  EXPECT_EQ(parse_gpu_architecture("Ampere "), GpuArchitecture::kUnknown);
  EXPECT_EQ(parse_gpu_architecture("Amper"), GpuArchitecture::kUnknown);
  EXPECT_EQ(parse_gpu_architecture(""), GpuArchitecture::kUnknown);
}

TEST(GpuArchitecture, FollowsNvmlNumbering) {
  EXPECT_EQ(gpu_architecture_from_nvml(2), GpuArchitecture::kKepler);
  EXPECT_EQ(gpu_architecture_from_nvml(3), GpuArchitecture::kMaxwell);
  EXPECT_EQ(gpu_architecture_from_nvml(4), GpuArchitecture::kPascal);
  EXPECT_EQ(gpu_architecture_from_nvml(5), GpuArchitecture::kVolta);
  EXPECT_EQ(gpu_architecture_from_nvml(6), GpuArchitecture::kTuring);
  EXPECT_EQ(gpu_architecture_from_nvml(7), GpuArchitecture::kAmpere);
  EXPECT_EQ(gpu_architecture_from_nvml(8), GpuArchitecture::kAda);
  EXPECT_EQ(gpu_architecture_from_nvml(9), GpuArchitecture::kHopper);
  EXPECT_EQ(gpu_architecture_from_nvml(10), GpuArchitecture::kBlackwell);
}

TEST(GpuArchitecture, UnknownNvmlNumbersAreUnknown) {
  EXPECT_EQ(gpu_architecture_from_nvml(0), GpuArchitecture::kUnknown);
  EXPECT_EQ(gpu_architecture_from_nvml(1), GpuArchitecture::kUnknown);
  EXPECT_EQ(gpu_architecture_from_nvml(11), GpuArchitecture::kUnknown);
  // NVML_DEVICE_ARCH_UNKNOWN is 0xffffffff.
  EXPECT_EQ(gpu_architecture_from_nvml(0xffffffffU), GpuArchitecture::kUnknown);
}

TEST(GpuDescribe, NamesIndexNameAndUuid) {
  EXPECT_EQ(describe(a40(3)), "GPU 3 (NVIDIA A40, GPU-1234)");
}

TEST(GpuDescribe, LeavesOutAMissingUuid) {
  GpuInfo gpu = a40(1);
  gpu.uuid.clear();
  EXPECT_EQ(describe(gpu), "GPU 1 (NVIDIA A40)");
}

TEST(GpuCheckedGpu, ReturnsTheGpuAtAValidIndex) {
  const std::vector<GpuInfo> gpus{a40(0), a40(1)};
  EXPECT_EQ(&checked_gpu(gpus, 1), &gpus[1]);
}

TEST(GpuCheckedGpu, RejectsAnIndexPastTheEndNamingTheValidRange) {
  const std::vector<GpuInfo> gpus{a40(0), a40(1)};
  const Error error = expect_error([&] { checked_gpu(gpus, 2); });
  EXPECT_EQ(error.code(), ErrorCode::kNotFound);
  EXPECT_THAT(error.what(), AllOf(HasSubstr("no GPU 2"), HasSubstr("0 to 1")));
}

TEST(GpuCheckedGpu, SaysSoWhenNoGpuIsVisible) {
  const Error error = expect_error([] { checked_gpu({}, 0); });
  EXPECT_EQ(error.code(), ErrorCode::kNotFound);
  EXPECT_THAT(error.what(), HasSubstr("no GPUs are visible"));
}

TEST(GpuCheckPowerLimit, AcceptsTheWholeRangeIncludingItsBounds) {
  const GpuInfo gpu = a40();
  EXPECT_NO_THROW(check_power_limit(gpu, 100));
  EXPECT_NO_THROW(check_power_limit(gpu, 212.5));
  EXPECT_NO_THROW(check_power_limit(gpu, 300));
}

TEST(GpuCheckPowerLimit, RejectsValuesOutsideTheRangeNamingGpuValueAndRange) {
  const GpuInfo gpu = a40(2);
  for (const double watts : {99.999, 300.001, -1.0, 0.0}) {
    const Error error = expect_error([&] { check_power_limit(gpu, watts); });
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << watts;
    EXPECT_THAT(error.what(), AllOf(HasSubstr(describe(gpu)), HasSubstr("out of range"),
                                    HasSubstr("100 W to 300 W")));
  }
  EXPECT_THAT(expect_error([&] { check_power_limit(gpu, 350); }).what(), HasSubstr("350 W"));
}

TEST(GpuCheckPowerLimit, RejectsNonFiniteValues) {
  const GpuInfo gpu = a40();
  for (const double watts :
       {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity()}) {
    EXPECT_EQ(expect_error([&] { check_power_limit(gpu, watts); }).code(),
              ErrorCode::kInvalidArgument)
        << watts;
  }
}

}  // namespace
}  // namespace chase
