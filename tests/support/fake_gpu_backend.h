// Test double for chase::GpuBackend: an in-memory GPU list whose counters, power and limits the
// test sets directly, with per-call failure injection. Deterministic; no threads, no clock.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "chase/error.h"
#include "chase/gpu.h"

namespace chase::testing {

class FakeGpuBackend : public GpuBackend {
 public:
  // n GPUs named "Fake GPU", limits [100, 300] W, default 300 W, with energy counters.
  explicit FakeGpuBackend(std::size_t n, bool energy_counters = true) {
    for (std::size_t i = 0; i < n; ++i) {
      GpuInfo info;
      info.index = i;
      info.hardware_index = static_cast<unsigned>(i);
      info.uuid = "GPU-fake-" + std::to_string(i);
      info.name = "Fake GPU";
      info.architecture = GpuArchitecture::kAmpere;
      info.min_power_limit_w = 100;
      info.max_power_limit_w = 300;
      info.default_power_limit_w = 300;
      info.has_energy_counter = energy_counters;
      infos_.push_back(info);
    }
    energy_.assign(n, 0.0);
    power_.assign(n, 0.0);
    limit_.assign(n, 300.0);
    fail_.assign(n, "");
  }

  std::string_view backend_name() const noexcept override { return "fake"; }
  const std::vector<GpuInfo>& gpus() const noexcept override { return infos_; }

  double energy_j(std::size_t gpu) override {
    std::lock_guard lock(mutex_);
    check(gpu);
    ++energy_reads;
    return energy_[gpu];
  }
  double power_w(std::size_t gpu) override {
    std::lock_guard lock(mutex_);
    check(gpu);
    ++power_reads;
    return power_[gpu];
  }
  double power_limit_w(std::size_t gpu) override {
    std::lock_guard lock(mutex_);
    check(gpu);
    return limit_[gpu];
  }
  void set_power_limit_w(std::size_t gpu, double watts) override {
    std::lock_guard lock(mutex_);
    check(gpu);
    check_power_limit(infos_[gpu], watts);
    if (fail_set_) {
      throw Error(ErrorCode::kPermissionDenied, describe(infos_[gpu]) + ": injected failure");
    }
    limit_[gpu] = watts;
    limit_changes.push_back({gpu, watts});
  }

  // Test controls.
  void set_energy(std::size_t gpu, double joules) {
    std::lock_guard lock(mutex_);
    energy_[gpu] = joules;
  }
  void add_energy(std::size_t gpu, double joules) {
    std::lock_guard lock(mutex_);
    energy_[gpu] += joules;
  }
  void set_power(std::size_t gpu, double watts) {
    std::lock_guard lock(mutex_);
    power_[gpu] = watts;
  }
  // Every later call on `gpu` throws kDeviceLost with `message` (empty: healthy again).
  void fail(std::size_t gpu, std::string message) {
    std::lock_guard lock(mutex_);
    fail_[gpu] = std::move(message);
  }
  // Marks `gpu` as found unhealthy when the backend opened (GpuInfo::state and problem). Call it
  // before handing the backend to the code under test: gpus() is fixed for a backend's lifetime.
  void make_unhealthy(std::size_t gpu, GpuState state, std::string problem) {
    infos_[gpu].state = state;
    infos_[gpu].problem = std::move(problem);
  }
  void fail_set_power_limit(bool fail) {
    std::lock_guard lock(mutex_);
    fail_set_ = fail;
  }

  struct LimitChange {
    std::size_t gpu;
    double watts;
  };
  std::vector<LimitChange> limit_changes;
  std::atomic<long> energy_reads{0};
  std::atomic<long> power_reads{0};

 private:
  void check(std::size_t gpu) const {
    checked_gpu(infos_, gpu);
    if (!fail_[gpu].empty())
      throw Error(ErrorCode::kDeviceLost, describe(infos_[gpu]) + ": " + fail_[gpu]);
  }

  std::mutex mutex_;
  std::vector<GpuInfo> infos_;
  std::vector<double> energy_, power_, limit_;
  std::vector<std::string> fail_;
  bool fail_set_ = false;
};

}  // namespace chase::testing
