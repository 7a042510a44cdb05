#include "chase/energy_monitor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "chase/error.h"
#include "chase/simulated_gpu.h"
#include "support/fake_cpu_backend.h"
#include "support/fake_gpu_backend.h"

namespace chase {
namespace {

using testing::FakeCpuBackend;
using testing::FakeGpuBackend;
using ::testing::HasSubstr;

class EnergyMonitorTest : public ::testing::Test {
 protected:
  EnergyMonitorOptions options_with_manual_clock() {
    EnergyMonitorOptions options;
    options.clock = clock_;
    return options;
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::shared_ptr<FakeGpuBackend> gpus_ = std::make_shared<FakeGpuBackend>(2);
  std::shared_ptr<FakeCpuBackend> cpus_ = std::make_shared<FakeCpuBackend>(1);
};

TEST_F(EnergyMonitorTest, CounterPathMeasuresDifferenceAndTime) {
  EnergyMonitor monitor(gpus_, cpus_, options_with_manual_clock());
  gpus_->set_energy(0, 1000);
  monitor.begin_window("step");
  gpus_->add_energy(0, 150);
  gpus_->add_energy(1, 50);
  cpus_->add_energy(0, 20);
  cpus_->add_energy(1, 5);
  clock_->advance(Seconds(2.5));
  const auto m = monitor.end_window("step");

  EXPECT_EQ(m.name, "step");
  EXPECT_DOUBLE_EQ(m.time_s, 2.5);
  ASSERT_EQ(m.gpus.size(), 2u);
  EXPECT_DOUBLE_EQ(m.gpus[0].energy_j, 150);
  EXPECT_DOUBLE_EQ(m.gpus[1].energy_j, 50);
  EXPECT_EQ(m.gpus[0].method, EnergyMethod::kCounter);
  EXPECT_EQ(m.gpus[0].name, "Fake GPU");
  ASSERT_EQ(m.cpus.size(), 2u);
  EXPECT_EQ(m.cpus[0].kind, "package");
  EXPECT_EQ(m.cpus[1].kind, "dram");
  EXPECT_DOUBLE_EQ(m.cpu_energy_j(), 25);
  EXPECT_DOUBLE_EQ(m.gpu_energy_j(), 200);
  EXPECT_DOUBLE_EQ(m.total_energy_j(), 225);
  EXPECT_TRUE(m.complete());
  EXPECT_EQ(m.end_utc - m.start_utc, std::chrono::milliseconds(2500));
}

TEST_F(EnergyMonitorTest, NestedWindowsEachSeeTheirOwnSpan) {
  EnergyMonitor monitor(gpus_, nullptr, options_with_manual_clock());
  monitor.begin_window("epoch");
  gpus_->add_energy(0, 10);
  clock_->advance(Seconds(1));
  monitor.begin_window("step");
  gpus_->add_energy(0, 100);
  clock_->advance(Seconds(2));
  const auto step = monitor.end_window("step");
  gpus_->add_energy(0, 1000);
  clock_->advance(Seconds(4));
  const auto epoch = monitor.end_window("epoch");

  EXPECT_DOUBLE_EQ(step.gpus[0].energy_j, 100);
  EXPECT_DOUBLE_EQ(step.time_s, 2);
  EXPECT_DOUBLE_EQ(epoch.gpus[0].energy_j, 1110);
  EXPECT_DOUBLE_EQ(epoch.time_s, 7);
}

TEST_F(EnergyMonitorTest, OverlappingWindowsEndInAnyOrder) {
  EnergyMonitor monitor(gpus_, nullptr, options_with_manual_clock());
  monitor.begin_window("a");
  gpus_->add_energy(1, 1);
  clock_->advance(Seconds(1));
  monitor.begin_window("b");
  gpus_->add_energy(1, 10);
  clock_->advance(Seconds(1));
  const auto a = monitor.end_window("a");  // ends while b is still open
  gpus_->add_energy(1, 100);
  clock_->advance(Seconds(1));
  const auto b = monitor.end_window("b");

  EXPECT_DOUBLE_EQ(a.gpus[1].energy_j, 11);
  EXPECT_DOUBLE_EQ(b.gpus[1].energy_j, 110);
  EXPECT_DOUBLE_EQ(a.time_s, 2);
  EXPECT_DOUBLE_EQ(b.time_s, 2);
  EXPECT_TRUE(monitor.open_windows().empty());
}

TEST_F(EnergyMonitorTest, CancelDropsTheWindowAndFreesTheName) {
  EnergyMonitor monitor(gpus_, nullptr, options_with_manual_clock());
  monitor.begin_window("profile");
  EXPECT_TRUE(monitor.is_window_open("profile"));
  monitor.cancel_window("profile");
  EXPECT_FALSE(monitor.is_window_open("profile"));
  EXPECT_THROW(monitor.end_window("profile"), Error);
  monitor.begin_window("profile");  // the name can be used again
  gpus_->add_energy(0, 7);
  EXPECT_DOUBLE_EQ(monitor.end_window("profile").gpus[0].energy_j, 7);
}

TEST_F(EnergyMonitorTest, DuplicateAndUnknownNamesAreClearErrors) {
  EnergyMonitor monitor(gpus_, nullptr, options_with_manual_clock());
  monitor.begin_window("w");
  try {
    monitor.begin_window("w");
    FAIL() << "a duplicate window must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists);
    EXPECT_THAT(e.what(), HasSubstr("'w' is already open"));
  }
  EXPECT_TRUE(monitor.is_window_open("w"));  // the first one is untouched
  try {
    monitor.end_window("nope");
    FAIL() << "ending an unknown window must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_THAT(e.what(), HasSubstr("'nope'"));
  }
  try {
    monitor.cancel_window("nope");
    FAIL() << "cancelling an unknown window must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST_F(EnergyMonitorTest, MeasuresOnlySelectedGpus) {
  auto options = options_with_manual_clock();
  options.gpus = {1};
  EnergyMonitor monitor(gpus_, nullptr, options);
  EXPECT_EQ(monitor.monitored_gpus(), std::vector<std::size_t>{1});
  monitor.begin_window("w");
  gpus_->add_energy(0, 5);
  gpus_->add_energy(1, 9);
  const auto m = monitor.end_window("w");
  ASSERT_EQ(m.gpus.size(), 1u);
  EXPECT_EQ(m.gpus[0].index, 1u);
  EXPECT_DOUBLE_EQ(m.gpus[0].energy_j, 9);
}

TEST_F(EnergyMonitorTest, RejectsBadSelectionsAndPeriods) {
  auto options = options_with_manual_clock();
  options.gpus = {5};
  EXPECT_THROW(EnergyMonitor(gpus_, nullptr, options), Error);
  options.gpus = {0, 0};
  EXPECT_THROW(EnergyMonitor(gpus_, nullptr, options), Error);
  options.gpus = {};
  options.polling_period = std::chrono::milliseconds(250);
  try {
    EnergyMonitor monitor(gpus_, nullptr, options);
    FAIL() << "a polling period over 100 ms must be rejected";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr("100 ms"));
  }
}

TEST_F(EnergyMonitorTest, FailingDeviceAtEndKeepsTheOthers) {
  EnergyMonitor monitor(gpus_, cpus_, options_with_manual_clock());
  monitor.begin_window("w");
  gpus_->add_energy(0, 3);
  cpus_->add_energy(0, 4);
  gpus_->fail(1, "GPU is lost");
  const auto m = monitor.end_window("w");
  EXPECT_FALSE(m.complete());
  EXPECT_DOUBLE_EQ(m.gpus[0].energy_j, 3);
  EXPECT_TRUE(std::isnan(m.gpus[1].energy_j));
  EXPECT_THAT(m.gpus[1].error, HasSubstr("GPU 1"));
  EXPECT_THAT(m.gpus[1].error, HasSubstr("GPU is lost"));
  EXPECT_DOUBLE_EQ(m.total_energy_j(), 7);  // the failed GPU is left out, not counted as 0 silently
  EXPECT_FALSE(monitor.is_window_open("w"));
}

TEST_F(EnergyMonitorTest, FailingDeviceAtBeginThrowsAndOpensNothing) {
  EnergyMonitor monitor(gpus_, cpus_, options_with_manual_clock());
  cpus_->fail(1, true);
  EXPECT_THROW(monitor.begin_window("w"), Error);
  EXPECT_FALSE(monitor.is_window_open("w"));
  cpus_->fail(1, false);
  monitor.begin_window("w");
  EXPECT_TRUE(monitor.is_window_open("w"));
}

TEST_F(EnergyMonitorTest, ACpuZoneFailingMidWindowKeepsItsEnergyUpToTheFailure) {
  EnergyMonitor monitor(gpus_, cpus_, options_with_manual_clock());
  monitor.begin_window("job");
  cpus_->add_energy(0, 40);
  cpus_->add_energy(1, 6);
  clock_->advance(Seconds(1));
  monitor.begin_window("step");  // any reading (here a window opening) is a good reading
  cpus_->add_energy(0, 99);      // never seen: the zone fails from now on
  cpus_->fail(0, true);
  clock_->advance(Seconds(1));
  const auto m = monitor.end_window("job");
  EXPECT_FALSE(m.complete());
  ASSERT_EQ(m.cpus.size(), 2u);
  EXPECT_TRUE(m.cpus[0].partial);
  EXPECT_DOUBLE_EQ(m.cpus[0].energy_j, 40);
  EXPECT_THAT(m.cpus[0].error, HasSubstr("injected failure"));
  EXPECT_THAT(m.cpus[0].error, HasSubstr("up to its last good reading"));
  EXPECT_FALSE(m.cpus[1].partial);
  EXPECT_DOUBLE_EQ(m.cpus[1].energy_j, 6);
  EXPECT_DOUBLE_EQ(m.cpu_energy_j(), 46);  // the energy measured before the failure counts
}

TEST_F(EnergyMonitorTest, ACpuZoneFailingBeforeAnyReadingInTheWindowIsNaN) {
  EnergyMonitor monitor(gpus_, cpus_, options_with_manual_clock());
  monitor.begin_window("job");
  cpus_->fail(0, true);
  clock_->advance(Seconds(1));
  const auto m = monitor.end_window("job");
  EXPECT_FALSE(m.cpus[0].partial);
  EXPECT_TRUE(std::isnan(m.cpus[0].energy_j));
}

TEST_F(EnergyMonitorTest, WindowsShorterThanTheCounterResolutionAreFlagged) {
  auto options = options_with_manual_clock();
  options.counter_update_period = std::chrono::milliseconds(50);
  EnergyMonitor monitor(gpus_, nullptr, options);
  monitor.begin_window("short");
  clock_->advance(Seconds(0.2));
  const auto short_window = monitor.end_window("short");
  EXPECT_DOUBLE_EQ(short_window.gpus[0].resolution_s, 0.5);  // 10 updates of 50 ms
  EXPECT_TRUE(short_window.gpus[0].below_resolution);
  EXPECT_TRUE(short_window.below_resolution());
  monitor.begin_window("long");
  clock_->advance(Seconds(0.5));
  const auto long_window = monitor.end_window("long");
  EXPECT_FALSE(long_window.gpus[0].below_resolution);
  EXPECT_FALSE(long_window.below_resolution());
}

TEST_F(EnergyMonitorTest, RejectsANonPositiveCounterUpdatePeriod) {
  auto options = options_with_manual_clock();
  options.counter_update_period = std::chrono::milliseconds(0);
  EXPECT_THROW(EnergyMonitor(gpus_, cpus_, options), Error);
}

TEST(EnergyMonitorCsv, ZonesOfPartOfAPackageGetTheirOwnColumns) {
  class DieZones : public CpuBackend {
   public:
    std::string_view backend_name() const noexcept override { return "dies"; }
    const std::vector<CpuZone>& zones() const noexcept override { return zones_; }
    double energy_j(std::size_t) override { return 0; }

   private:
    std::vector<CpuZone> zones_{{0, "package", "package-0-die-0", "die-0"},
                                {0, "package", "package-0-die-1", "die-1"}};
  };
  const auto path = std::filesystem::temp_directory_path() /
                    ("chase_energy_dies_" + std::to_string(::getpid()) + ".csv");
  std::filesystem::remove(path);
  {
    EnergyMonitorOptions options;
    options.csv_log = path;
    EnergyMonitor monitor(nullptr, std::make_shared<DieZones>(), options);
  }
  std::ifstream in(path);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header,
            "start_time,window_name,elapsed_time,cpu0_die0_package_energy,"
            "cpu0_die1_package_energy");
  std::filesystem::remove(path);
}

TEST_F(EnergyMonitorTest, AppendsFinishedWindowsToCsvLog) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("chase_energy_log_" + std::to_string(::getpid()) + ".csv");
  std::filesystem::remove(path);
  {
    auto options = options_with_manual_clock();
    options.csv_log = path;
    EnergyMonitor monitor(gpus_, cpus_, options);
    monitor.begin_window("__GlobalPowerLimitOptimizer_250");
    gpus_->add_energy(0, 12.5);
    clock_->advance(Seconds(3));
    monitor.end_window("__GlobalPowerLimitOptimizer_250");
    monitor.begin_window("cancelled");
    monitor.cancel_window("cancelled");  // cancelled windows are not logged
  }
  std::ifstream in(path);
  std::string header, row, extra;
  std::getline(in, header);
  std::getline(in, row);
  EXPECT_FALSE(std::getline(in, extra));
  EXPECT_EQ(header,
            "start_time,window_name,elapsed_time,gpu0_energy,gpu1_energy,cpu0_package_energy,"
            "cpu0_dram_energy");
  EXPECT_EQ(row, "0.000000,__GlobalPowerLimitOptimizer_250,3,12.5,0,0,0");
  std::filesystem::remove(path);
}

TEST_F(EnergyMonitorTest, AWindowTheLogCannotTakeIsStillReturnedWithTheReason) {
  auto options = options_with_manual_clock();
  options.csv_log = "/dev/full";  // every write fails with ENOSPC
  EnergyMonitor monitor(gpus_, cpus_, options);
  monitor.begin_window("epoch");
  gpus_->add_energy(0, 12.5);
  clock_->advance(Seconds(3));
  const auto m = monitor.end_window("epoch");
  EXPECT_DOUBLE_EQ(m.time_s, 3);
  EXPECT_DOUBLE_EQ(m.gpus.at(0).energy_j, 12.5);
  EXPECT_THAT(m.log_error, ::testing::HasSubstr("'/dev/full'"));
}

TEST_F(EnergyMonitorTest, ALogInAMissingDirectoryFailsBeforeAnythingIsMeasured) {
  auto options = options_with_manual_clock();
  options.csv_log = "/nonexistent-chase-dir/log.csv";
  EXPECT_THROW(EnergyMonitor(gpus_, cpus_, options), Error);
}

// A GPU that hides its energy counter, so the monitor must poll its power: used to compare the
// two paths over the very same simulated power.
class CounterlessGpus : public GpuBackend {
 public:
  explicit CounterlessGpus(std::shared_ptr<GpuBackend> inner) : inner_(std::move(inner)) {
    infos_ = inner_->gpus();
    for (auto& info : infos_) info.has_energy_counter = false;
  }
  std::string_view backend_name() const noexcept override { return "counterless"; }
  const std::vector<GpuInfo>& gpus() const noexcept override { return infos_; }
  double energy_j(std::size_t) override { throw Error(ErrorCode::kNotSupported, "no counter"); }
  double power_w(std::size_t gpu) override { return inner_->power_w(gpu); }
  double power_limit_w(std::size_t gpu) override { return inner_->power_limit_w(gpu); }
  void set_power_limit_w(std::size_t gpu, double w) override { inner_->set_power_limit_w(gpu, w); }

 private:
  std::shared_ptr<GpuBackend> inner_;
  std::vector<GpuInfo> infos_;
};

// The polling path against the counter path, with the sampler stepped on virtual time, is in
// energy_monitor_contract_test.cpp.

TEST(EnergyMonitorPolling, WindowWithoutInteriorSamplesIsMarkedEstimate) {
  auto clock = std::make_shared<ManualClock>();
  auto simulated = make_simulated_gpus(1, synthetic_demo_profile(), clock);
  auto polled = std::make_shared<CounterlessGpus>(simulated);
  EnergyMonitorOptions options;
  options.clock = clock;
  options.polling_period = std::chrono::milliseconds(100);
  EnergyMonitor monitor(polled, nullptr, options);
  simulated->set_busy(0, true);
  const double power = simulated->power_w(0);
  monitor.begin_window("short");
  clock->advance(Seconds(2));  // virtual time: the real-time sampler has no chance to tick
  const auto m = monitor.end_window("short");
  EXPECT_EQ(m.gpus[0].method, EnergyMethod::kEstimate);
  EXPECT_NEAR(m.gpus[0].energy_j, power * 2, 1e-9);  // P × Δt from the two end samples
}

TEST(EnergyMonitorThreads, ConcurrentWindowsFromSeveralThreads) {
  auto gpus = std::make_shared<FakeGpuBackend>(8);
  EnergyMonitor monitor(gpus, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> completed{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const auto name = "t" + std::to_string(t) + "_" + std::to_string(i % 3);
        monitor.begin_window(name);
        if (i % 5 == 0) {
          monitor.cancel_window(name);
        } else {
          const auto m = monitor.end_window(name);
          if (m.gpus.size() == 8 && m.complete()) ++completed;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(completed.load(), 4 * 160);
  EXPECT_TRUE(monitor.open_windows().empty());
}

}  // namespace
}  // namespace chase
