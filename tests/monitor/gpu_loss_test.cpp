// EnergyMonitor with a GPU lost mid-run or unhealthy from the start: the others are measured, the
// lost one keeps the energy measured up to its last good reading, and nothing throws.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "chase/energy_monitor.h"
#include "chase/error.h"
#include "support/fake_gpu_backend.h"

namespace chase {
namespace {

using ::testing::ElementsAre;
using testing::FakeGpuBackend;
using ::testing::HasSubstr;

class GpuLossTest : public ::testing::Test {
 protected:
  EnergyMonitorOptions options() {
    EnergyMonitorOptions options;
    options.clock = clock_;
    return options;
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::shared_ptr<FakeGpuBackend> gpus_ = std::make_shared<FakeGpuBackend>(2);
};

TEST_F(GpuLossTest, AGpuLostMidWindowKeepsItsEnergyUpToTheLastGoodReading) {
  EnergyMonitor monitor(gpus_, nullptr, options());
  monitor.begin_window("run");
  clock_->advance(Seconds(1));
  gpus_->add_energy(0, 100);
  gpus_->add_energy(1, 100);
  monitor.begin_window("step");  // reads both GPUs: GPU 1's last good reading, 1 s in
  monitor.cancel_window("step");
  clock_->advance(Seconds(2));
  gpus_->add_energy(0, 50);
  gpus_->add_energy(1, 50);  // used after its last reading: never seen
  gpus_->fail(1, "GPU is lost");
  const auto m = monitor.end_window("run");

  EXPECT_DOUBLE_EQ(m.gpus[0].energy_j, 150);
  EXPECT_FALSE(m.gpus[0].lost_after_s);
  EXPECT_DOUBLE_EQ(m.gpus[1].energy_j, 100);
  ASSERT_TRUE(m.gpus[1].lost_after_s);
  EXPECT_DOUBLE_EQ(*m.gpus[1].lost_after_s, 1.0);
  EXPECT_THAT(m.gpus[1].error, HasSubstr("GPU is lost"));
  EXPECT_DOUBLE_EQ(m.gpu_energy_j(), 250);  // what was measured counts; the rest is unknown
  EXPECT_FALSE(m.complete());
}

TEST_F(GpuLossTest, ALostGpuNeverStopsLaterWindowsAndIsNotCalledAgain) {
  EnergyMonitor monitor(gpus_, nullptr, options());
  gpus_->fail(1, "GPU is lost");
  monitor.begin_window("w1");  // does not throw: one lost GPU must not stop the others
  gpus_->add_energy(0, 7);
  const auto first = monitor.end_window("w1");
  EXPECT_DOUBLE_EQ(first.gpus[0].energy_j, 7);
  EXPECT_TRUE(std::isnan(first.gpus[1].energy_j));  // nothing of it was measured: not a zero
  EXPECT_FALSE(first.gpus[1].lost_after_s);
  EXPECT_THAT(first.gpus[1].error, HasSubstr("GPU is lost"));

  const long reads = gpus_->energy_reads.load();
  monitor.begin_window("w2");
  gpus_->add_energy(0, 3);
  const auto second = monitor.end_window("w2");
  EXPECT_DOUBLE_EQ(second.gpus[0].energy_j, 3);
  EXPECT_THAT(second.gpus[1].error, HasSubstr("GPU is lost"));
  EXPECT_EQ(gpus_->energy_reads.load() - reads, 2);  // GPU 0 twice, the lost GPU 1 not at all
}

TEST_F(GpuLossTest, OtherFailuresAtBeginStillThrow) {
  // Only a lost GPU is tolerated at begin: a transient failure may succeed on the next try.
  class FlakyBackend : public FakeGpuBackend {
   public:
    FlakyBackend() : FakeGpuBackend(1) {}
    double energy_j(std::size_t gpu) override {
      if (flaky) throw Error(ErrorCode::kInternal, "GPU 0: timeout");
      return FakeGpuBackend::energy_j(gpu);
    }
    bool flaky = true;
  };
  auto flaky = std::make_shared<FlakyBackend>();
  EnergyMonitor monitor(flaky, nullptr, options());
  EXPECT_THROW(monitor.begin_window("w"), Error);
  flaky->flaky = false;
  monitor.begin_window("w");
  EXPECT_TRUE(monitor.end_window("w").complete());
}

// A backend whose GPU 1 was found unhealthy when it opened.
std::shared_ptr<FakeGpuBackend> sick_backend(GpuState state) {
  auto backend = std::make_shared<FakeGpuBackend>(3);
  backend->make_unhealthy(1, state, "GPU 1 (Fake GPU): the reason");
  return backend;
}

TEST_F(GpuLossTest, AllGpusMeansTheHealthyOnesAndSelectingASickOneSaysWhy) {
  auto sick = sick_backend(GpuState::kLost);
  EXPECT_THAT(EnergyMonitor(sick, nullptr, options()).monitored_gpus(), ElementsAre(0u, 2u));
  auto selecting = options();
  selecting.gpus = {0, 1};
  try {
    EnergyMonitor monitor(sick, nullptr, selecting);
    FAIL() << "a lost GPU cannot be measured";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDeviceLost);
    EXPECT_THAT(e.what(), HasSubstr("GPU 1 cannot be measured: GPU 1 (Fake GPU): the reason"));
  }
  auto mig = sick_backend(GpuState::kMigSlice);
  try {
    EnergyMonitor monitor(mig, nullptr, selecting);
    FAIL() << "a MIG slice cannot be measured";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotSupported);
  }
}

}  // namespace
}  // namespace chase
