#include "chase/power_monitor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "chase/error.h"
#include "support/fake_gpu_backend.h"

namespace chase {
namespace {

using testing::FakeGpuBackend;

class PowerMonitorTest : public ::testing::Test {
 protected:
  PowerMonitorOptions manual_options(std::size_t max_samples) {
    PowerMonitorOptions options;
    options.clock = clock_;
    options.max_samples = max_samples;
    options.period = std::chrono::hours(1);  // the test drives sampling itself
    return options;
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::shared_ptr<FakeGpuBackend> gpus_ = std::make_shared<FakeGpuBackend>(2);
};

TEST_F(PowerMonitorTest, AllGpusMeansTheHealthyOnesAndASickOneIsRefusedWithItsProblem) {
  auto gpus = std::make_shared<FakeGpuBackend>(3);
  gpus->make_unhealthy(1, GpuState::kLost, "GPU 1 (Fake GPU) fell off the bus");
  PowerMonitor monitor(gpus, manual_options(4));  // samples once at construction
  EXPECT_TRUE(monitor.latest(0));
  EXPECT_TRUE(monitor.latest(2));
  EXPECT_EQ(gpus->power_reads, 2) << "the lost GPU was read";
  auto selecting = manual_options(4);
  selecting.gpus = {1};
  try {
    PowerMonitor refused(gpus, selecting);
    FAIL() << "a lost GPU cannot be sampled";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDeviceLost);
    EXPECT_THAT(std::string(e.what()), ::testing::HasSubstr("fell off the bus"));
  }
}

TEST_F(PowerMonitorTest, RecordsTimelineAndIntegratesIt) {
  gpus_->set_power(0, 100);
  PowerMonitor monitor(gpus_, manual_options(100));  // first sample at construction, t = 0
  clock_->advance(Seconds(1));
  gpus_->set_power(0, 200);
  monitor.sample_now();  // t = 1
  clock_->advance(Seconds(1));
  monitor.sample_now();  // t = 2
  const auto timeline = monitor.timeline(0);
  ASSERT_EQ(timeline.size(), 3u);
  EXPECT_DOUBLE_EQ(timeline[1].power_w, 200);
  EXPECT_DOUBLE_EQ(monitor.energy_j(0, UtcTime{}, UtcTime{} + std::chrono::seconds(2)),
                   150 + 200);  // trapezoids
  EXPECT_DOUBLE_EQ(monitor.latest(0)->power_w, 200);
  EXPECT_EQ(
      monitor.timeline(0, UtcTime{} + std::chrono::seconds(1), UtcTime{} + std::chrono::seconds(1))
          .size(),
      1u);
}

TEST_F(PowerMonitorTest, MemoryIsBoundedOldestSamplesDropped) {
  PowerMonitor monitor(gpus_, manual_options(4));
  for (int i = 1; i <= 9; ++i) {
    gpus_->set_power(1, i);
    clock_->advance(Seconds(1));
    monitor.sample_now();
  }
  const auto timeline = monitor.timeline(1);
  ASSERT_EQ(timeline.size(), 4u);
  EXPECT_DOUBLE_EQ(timeline.front().power_w, 6);
  EXPECT_DOUBLE_EQ(timeline.back().power_w, 9);
  EXPECT_EQ(monitor.dropped_samples(1), 6u);  // 10 samples taken, 4 kept
}

TEST_F(PowerMonitorTest, FailingGpuIsRecordedNotFatal) {
  PowerMonitor monitor(gpus_, manual_options(10));
  gpus_->fail(0, "GPU is lost");
  monitor.sample_now();
  EXPECT_THAT(monitor.last_error(0), ::testing::HasSubstr("GPU is lost"));
  EXPECT_EQ(monitor.timeline(0).size(), 1u);  // only the sample from before the failure
  EXPECT_EQ(monitor.timeline(1).size(), 2u);  // the healthy GPU goes on
}

TEST_F(PowerMonitorTest, UnmonitoredGpuIsAnError) {
  auto options = manual_options(10);
  options.gpus = {1};
  PowerMonitor monitor(gpus_, options);
  EXPECT_THROW(monitor.timeline(0), Error);
  options.gpus = {7};
  EXPECT_THROW(PowerMonitor(gpus_, options), Error);
}

TEST(PowerMonitorThread, SamplesInTheBackground) {
  auto gpus = std::make_shared<FakeGpuBackend>(1);
  PowerMonitorOptions options;
  options.period = std::chrono::milliseconds(5);
  PowerMonitor monitor(gpus, options);
  // Waits for the samples rather than a fixed time: a loaded machine (or TSan) only slows it.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (monitor.timeline(0).size() < 5 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GE(monitor.timeline(0).size(), 5u);
}

}  // namespace
}  // namespace chase
