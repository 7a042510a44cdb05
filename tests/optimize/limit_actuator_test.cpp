// LimitActuator over the fake NVML: a refused change leaves every GPU at the limit in force and
// is reported, not thrown; the next apply tries again; clamping; ranks agree; limits restored.
#include "chase/limit_actuator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "chase/error.h"
#include "chase/nvml.h"
#include "support/fake_nvml_env.h"

namespace chase {
namespace {

using testing::FakeNvmlEnvironment;
using ::testing::HasSubstr;
namespace nvml_return = testing::nvml_return;

class LimitActuatorTest : public ::testing::Test {
 protected:
  FakeNvmlEnvironment nvml_{FakeNvmlEnvironment::standard_config(2)};
};

TEST_F(LimitActuatorTest, ARefusedChangeKeepsTheLimitInForceOnEveryGpuAndIsRetried) {
  {
    LimitActuator actuator(open_nvml());
    EXPECT_EQ(actuator.current_limit_w(), 300);
    nvml_.set_failure(1, "nvmlDeviceSetPowerManagementLimit", nvml_return::kNoPermission);
    LimitChange change;
    EXPECT_NO_THROW(change = actuator.apply(200));
    EXPECT_FALSE(change.ok);
    EXPECT_EQ(change.limit_w, 300);
    EXPECT_THAT(change.note, HasSubstr("could not set 200 W"));
    EXPECT_EQ(actuator.current_limit_w(), 300);
    EXPECT_EQ(nvml_.limit_w(0), 300) << "the GPU already changed went back";
    EXPECT_EQ(nvml_.limit_w(1), 300);
    nvml_.clear_failure(1, "nvmlDeviceSetPowerManagementLimit");
    change = actuator.apply(200);
    EXPECT_TRUE(change.ok);
    EXPECT_EQ(nvml_.limit_w(0), 200);
    EXPECT_EQ(nvml_.limit_w(1), 200);
    EXPECT_THROW(actuator.set(50), Error) << "set() is for profiling: it throws";
  }
  EXPECT_EQ(nvml_.limit_w(0), 300) << "restored when the actuator goes";
  EXPECT_EQ(nvml_.limit_w(1), 300);
}

TEST_F(LimitActuatorTest, OutOfRangeValuesAreClampedAndSaySo) {
  LimitActuator actuator(open_nvml(), {0});
  const auto change = actuator.apply(20);
  EXPECT_TRUE(change.ok);
  EXPECT_EQ(change.limit_w, 100);
  EXPECT_THAT(change.note, HasSubstr("outside the GPUs' 100–300 W"));
  EXPECT_EQ(nvml_.limit_w(0), 100);
  EXPECT_EQ(nvml_.limit_w(1), 300) << "only the job's GPUs";
}

TEST_F(LimitActuatorTest, RanksRunRankZerosValue) {
  std::shared_ptr<GpuBackend> backend = open_nvml();
  auto ranks = make_in_process_coordinators(2);
  LimitActuator rank0(backend, {0}, ranks[0]);
  LimitActuator rank1(backend, {1}, ranks[1]);
  std::thread other([&] { rank1.apply(150); });
  rank0.apply(200);
  other.join();
  EXPECT_EQ(nvml_.limit_w(0), 200);
  EXPECT_EQ(nvml_.limit_w(1), 200);
}

TEST_F(LimitActuatorTest, RanksThatCannotAgreeKeepTheLimitInForce) {
  std::shared_ptr<GpuBackend> backend = open_nvml();
  auto ranks = make_in_process_coordinators(2, std::chrono::milliseconds(50));
  LimitActuator rank0(backend, {0}, ranks[0]);
  LimitChange change;
  EXPECT_NO_THROW(change = rank0.apply(200)) << "rank 1 never comes";
  EXPECT_FALSE(change.ok);
  EXPECT_EQ(change.limit_w, 300);
  EXPECT_THAT(change.note, HasSubstr("could not agree"));
  EXPECT_EQ(nvml_.limit_w(0), 300);
}

TEST_F(LimitActuatorTest, GpusOfDifferentConstraintsOrNoneAreRefused) {
  auto config = FakeNvmlEnvironment::standard_config(2);
  config["gpus"][1]["max_limit_w"] = 250;
  nvml_.write_config(config);
  EXPECT_THROW(LimitActuator actuator(open_nvml()), Error);
  EXPECT_THROW(LimitActuator actuator(open_nvml(), {7}), Error);
}

// One GPU fallen off the bus when NVML opened: "all GPUs" means the healthy ones, and naming the
// lost one says why it cannot be controlled.
TEST_F(LimitActuatorTest, AllGpusMeansTheHealthyOnesAndALostOneIsRefusedWithItsProblem) {
  auto config = FakeNvmlEnvironment::standard_config(3);
  config["gpus"][1]["lost"] = true;
  nvml_.write_config(config);
  LimitActuator actuator(open_nvml());
  EXPECT_EQ(actuator.gpus(), (std::vector<std::size_t>{0, 2}));
  try {
    LimitActuator lost(open_nvml(), {0, 1});
    FAIL() << "a lost GPU cannot be controlled";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDeviceLost);
    EXPECT_THAT(e.what(), HasSubstr("GPU 1 cannot be controlled"));
  }
}

}  // namespace
}  // namespace chase
