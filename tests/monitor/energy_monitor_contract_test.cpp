// EnergyMonitor clauses that need the background sampler under the test's control: the polling
// path against the counter path, force_polling, cpu_refresh_period; and the CSV log appending to an
// existing file. The sampler runs on real time, so these tests hold it at a gate inside the
// backend: each tick waits there until the test has set the virtual time and the power it is to
// see, then goes on — every sample lands at a virtual time the test chose, on any machine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chase/energy_monitor.h"
#include "chase/error.h"
#include "chase/simulated_gpu.h"
#include "support/fake_cpu_backend.h"
#include "support/fake_gpu_backend.h"

namespace chase {
namespace {

using std::chrono::milliseconds;
using testing::FakeCpuBackend;
using testing::FakeGpuBackend;

// Holds every power read from a thread other than the test's at a gate the test opens one read
// at a time. Reads from the test's own thread (begin/end_window) pass straight through.
class SamplerGate {
 public:
  // Called in power_w() before the inner read.
  void pass() {
    if (std::this_thread::get_id() == test_thread_) return;
    std::unique_lock lock(mutex_);
    const long ticket = ++arrived_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_ || released_ >= ticket; });
  }
  // Waits until the sampler's `n`-th read is at the gate (every earlier tick is then complete).
  bool wait_for_arrival(long n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(30), [&] { return arrived_ >= n; });
  }
  void release_one() {
    std::lock_guard lock(mutex_);
    ++released_;
    changed_.notify_all();
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  long arrived() {
    std::lock_guard lock(mutex_);
    return arrived_;
  }

 private:
  const std::thread::id test_thread_ = std::this_thread::get_id();
  std::mutex mutex_;
  std::condition_variable changed_;
  long arrived_ = 0;
  long released_ = 0;
  bool open_ = false;
};

// A GPU backend whose power reads go through a SamplerGate; it may hide the inner energy counter.
class GatedGpus final : public GpuBackend {
 public:
  GatedGpus(std::shared_ptr<GpuBackend> inner, bool hide_counter) : inner_(std::move(inner)) {
    infos_ = inner_->gpus();
    if (hide_counter) {
      for (auto& info : infos_) info.has_energy_counter = false;
    }
  }
  std::string_view backend_name() const noexcept override { return "gated"; }
  const std::vector<GpuInfo>& gpus() const noexcept override { return infos_; }
  double energy_j(std::size_t gpu) override {
    if (!infos_[gpu].has_energy_counter) throw Error(ErrorCode::kNotSupported, "no counter");
    return inner_->energy_j(gpu);
  }
  double power_w(std::size_t gpu) override {
    gate.pass();
    return inner_->power_w(gpu);
  }
  double power_limit_w(std::size_t gpu) override { return inner_->power_limit_w(gpu); }
  void set_power_limit_w(std::size_t gpu, double w) override { inner_->set_power_limit_w(gpu, w); }

  SamplerGate gate;

 private:
  std::shared_ptr<GpuBackend> inner_;
  std::vector<GpuInfo> infos_;
};

// Opens the gate for good when the test leaves (also through a failed ASSERT), so the monitor's
// destructor can join its sampler. Declare it after the monitor.
struct OpenGateOnExit {
  SamplerGate& gate;
  ~OpenGateOnExit() { gate.open(); }
};

// Drives the gated sampler: `step(t, setup)` lets the sampler's next read happen at virtual time t
// after `setup` has set what it will read.
class SteppedSampler {
 public:
  SteppedSampler(SamplerGate& gate, ManualClock& clock) : gate_(gate), clock_(clock) {}
  template <typename Setup>
  void step(milliseconds at, Setup setup) {
    ASSERT_TRUE(gate_.wait_for_arrival(++reads_)) << "the sampler never ticked";
    clock_.advance(std::chrono::nanoseconds(at) - clock_.monotonic());
    setup();
    gate_.release_one();
  }
  // Waits until the last released read has been integrated (the next tick is at the gate).
  void settle() { ASSERT_TRUE(gate_.wait_for_arrival(reads_ + 1)) << "the sampler stopped"; }

 private:
  SamplerGate& gate_;
  ManualClock& clock_;
  long reads_ = 0;
};

TEST(EnergyMonitorSampling, PollingTracksTheCounterWithinTheTrapezoidsBound) {
  // Power steps 224 W → 150 W limit → 30 W idle, sampled every 5 ms of virtual time; a step
  // between two samples costs the trapezoid at most ΔP × 2.5 ms, and that is all it may cost.
  auto clock = std::make_shared<ManualClock>();
  auto simulated = make_simulated_gpus(1, synthetic_demo_profile(), clock);
  auto polled = std::make_shared<GatedGpus>(simulated, /*hide_counter=*/true);
  EnergyMonitorOptions options;
  options.clock = clock;
  options.polling_period = milliseconds(5);
  EnergyMonitor by_counter(simulated, nullptr, options);
  EnergyMonitor by_polling(polled, nullptr, options);
  OpenGateOnExit open_gate{polled->gate};
  SteppedSampler sampler(polled->gate, *clock);

  simulated->set_busy(0, true);
  const double busy_w = simulated->power_w(0);
  by_counter.begin_window("w");
  by_polling.begin_window("w");
  double low_w = 0;
  double idle_w = 0;
  for (int t = 5; t <= 700; t += 5) {
    sampler.step(milliseconds(t), [&] {
      // Each step falls on a sample: the trapezoid spreads it over the 5 ms before, its worst case.
      if (t == 300) {
        simulated->set_power_limit_w(0, 150);
        low_w = simulated->power_w(0);
      }
      if (t == 600) {
        simulated->set_busy(0, false);
        idle_w = simulated->power_w(0);
      }
    });
  }
  sampler.settle();
  const auto polled_m = by_polling.end_window("w");
  const auto counted_m = by_counter.end_window("w");

  EXPECT_EQ(polled_m.gpus[0].method, EnergyMethod::kPolling);
  EXPECT_EQ(counted_m.gpus[0].method, EnergyMethod::kCounter);
  EXPECT_DOUBLE_EQ(polled_m.time_s, 0.7);
  EXPECT_GT(counted_m.gpus[0].energy_j, 80.0);  // ~0.7 s at ~150 W: the test measures something
  const double bound = ((busy_w - low_w) + (low_w - idle_w)) * 0.0025;
  EXPECT_GT(bound, 0.0);
  EXPECT_NEAR(polled_m.gpus[0].energy_j, counted_m.gpus[0].energy_j, bound);
}

TEST(EnergyMonitorSampling, ForcePollingIntegratesPowerEvenWhereThereIsACounter) {
  auto clock = std::make_shared<ManualClock>();
  auto fake = std::make_shared<FakeGpuBackend>(1);  // has an energy counter
  auto gpus = std::make_shared<GatedGpus>(fake, /*hide_counter=*/false);
  EnergyMonitorOptions options;
  options.clock = clock;
  options.polling_period = milliseconds(10);
  options.force_polling = true;
  EnergyMonitor monitor(gpus, nullptr, options);
  OpenGateOnExit open_gate{gpus->gate};
  SteppedSampler sampler(gpus->gate, *clock);

  fake->set_power(0, 200);
  monitor.begin_window("w");                                         // sample at 0 s: 200 W
  sampler.step(milliseconds(10), [] {});                             // 200 W
  sampler.step(milliseconds(20), [&] { fake->set_power(0, 100); });  // 100 W
  sampler.settle();
  fake->add_energy(0, 1e6);  // the counter moves a lot; force_polling must not look at it
  clock->advance(std::chrono::nanoseconds(milliseconds(10)));
  const auto m = monitor.end_window("w");  // 100 W at 30 ms

  EXPECT_EQ(m.gpus[0].method, EnergyMethod::kPolling);
  // Trapezoids: 10 ms × 200 W + 10 ms × 150 W + 10 ms × 100 W.
  EXPECT_NEAR(m.gpus[0].energy_j, 2.0 + 1.5 + 1.0, 1e-9);
}

TEST(EnergyMonitorSampling, WithoutForcePollingTheCounterIsUsed) {
  auto fake = std::make_shared<FakeGpuBackend>(1);
  EnergyMonitor monitor(fake, nullptr, EnergyMonitorOptions{});
  monitor.begin_window("w");
  fake->add_energy(0, 42);
  const auto m = monitor.end_window("w");
  EXPECT_EQ(m.gpus[0].method, EnergyMethod::kCounter);
  EXPECT_DOUBLE_EQ(m.gpus[0].energy_j, 42);
}

// A CPU backend that counts the reads made from threads other than the test's.
class CountingCpus final : public FakeCpuBackend {
 public:
  CountingCpus() : FakeCpuBackend(1) {}
  double energy_j(std::size_t zone) override {
    if (std::this_thread::get_id() != test_thread_) {
      std::lock_guard lock(mutex_);
      ++background_reads_;
    }
    return FakeCpuBackend::energy_j(zone);
  }
  int background_reads() {
    std::lock_guard lock(mutex_);
    return background_reads_;
  }

 private:
  const std::thread::id test_thread_ = std::this_thread::get_id();
  std::mutex mutex_;
  int background_reads_ = 0;
};

TEST(EnergyMonitorSampling, CpuCountersAreReadEveryCpuRefreshPeriodOfClockTime) {
  auto clock = std::make_shared<ManualClock>();
  auto gpus = std::make_shared<GatedGpus>(std::make_shared<FakeGpuBackend>(1),
                                          /*hide_counter=*/true);
  auto cpus = std::make_shared<CountingCpus>();  // two zones: package and dram
  EnergyMonitorOptions options;
  options.clock = clock;
  options.polling_period = milliseconds(5);
  options.cpu_refresh_period = milliseconds(1000);
  EnergyMonitor monitor(gpus, cpus, options);
  OpenGateOnExit open_gate{gpus->gate};
  SteppedSampler sampler(gpus->gate, *clock);
  monitor.begin_window("w");

  // A tick reads the clock before its power read; what it decides about the CPU counters shows
  // once the tick after it is at the gate. So each check lets one tick pass at the time given.
  auto reads_after_a_tick_at = [&](int ms) {
    sampler.step(milliseconds(ms), [] {});
    sampler.step(milliseconds(ms), [] {});
    sampler.settle();
    return cpus->background_reads();
  };
  EXPECT_EQ(reads_after_a_tick_at(400), 0);
  EXPECT_EQ(reads_after_a_tick_at(999), 0);
  EXPECT_EQ(reads_after_a_tick_at(1000), 2) << "one refresh: both zones";
  EXPECT_EQ(reads_after_a_tick_at(1500), 2);
  EXPECT_EQ(reads_after_a_tick_at(1999), 2);
  EXPECT_EQ(reads_after_a_tick_at(2000), 4);
  monitor.end_window("w");
}

class EnergyMonitorCsvLog : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove(path_); }
  void measure(const std::string& name, double joules) {
    EnergyMonitorOptions options;
    options.clock = clock_;
    options.csv_log = path_;
    EnergyMonitor monitor(gpus_, nullptr, options);
    monitor.begin_window(name);
    gpus_->add_energy(0, joules);
    clock_->advance(Seconds(2));
    monitor.end_window(name);
  }
  std::vector<std::string> lines() const {
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  std::filesystem::path path_ = std::filesystem::temp_directory_path() /
                                ("chase_energy_append_" + std::to_string(::getpid()) + ".csv");
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::shared_ptr<FakeGpuBackend> gpus_ = std::make_shared<FakeGpuBackend>(1);
};

TEST_F(EnergyMonitorCsvLog, ASecondMonitorAppendsWithoutASecondHeader) {
  std::filesystem::remove(path_);
  measure("first", 10);
  measure("second", 20);
  EXPECT_THAT(lines(), ::testing::ElementsAre("start_time,window_name,elapsed_time,gpu0_energy",
                                              "0.000000,first,2,10", "2.000000,second,2,20"));
}

TEST_F(EnergyMonitorCsvLog, AnEmptyExistingFileGetsTheHeader) {
  std::ofstream(path_).flush();
  measure("only", 5);
  EXPECT_THAT(lines(), ::testing::ElementsAre("start_time,window_name,elapsed_time,gpu0_energy",
                                              "0.000000,only,2,5"));
}

TEST_F(EnergyMonitorCsvLog, AnUnwritableLogIsAClearErrorAtConstruction) {
  EnergyMonitorOptions options;
  options.csv_log = "/nonexistent-dir/chase/log.csv";
  try {
    EnergyMonitor monitor(gpus_, nullptr, options);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("/nonexistent-dir/chase/log.csv"));
  }
}

}  // namespace
}  // namespace chase
