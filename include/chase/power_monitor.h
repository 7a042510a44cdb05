// chase/power_monitor.h — a per-GPU power timeline sampled in the background, in bounded memory.
//
// Contract: from construction to destruction a background thread samples power_w() of each
// monitored GPU every `period`. Each GPU keeps its latest `max_samples` samples (a ring buffer:
// memory is bounded however long the job runs; the oldest samples are dropped and counted).
// energy_j() integrates the retained samples over a time range with the trapezoid rule. A GPU that
// fails to answer is recorded (last_error) and skipped for that tick, never fatal to the thread.
//
// Thread safety: all methods may be called concurrently with the sampler and with each other.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chase/gpu.h"
#include "chase/time.h"

namespace chase {

struct PowerSample {
  UtcTime time;
  double power_w = 0;
};

struct PowerMonitorOptions {
  // Empty: all healthy GPUs; a selected unhealthy one throws its problem.
  std::vector<std::size_t> gpus;
  std::chrono::milliseconds period{100};
  std::size_t max_samples = 36'000;  // per GPU: one hour at 100 ms
  std::shared_ptr<Clock> clock;      // null: the system clock
};

class PowerMonitor {
 public:
  PowerMonitor(std::shared_ptr<GpuBackend> gpus, PowerMonitorOptions options = {});
  ~PowerMonitor();
  PowerMonitor(const PowerMonitor&) = delete;
  PowerMonitor& operator=(const PowerMonitor&) = delete;

  // Takes one sample of every monitored GPU now (the thread calls this every period).
  void sample_now();
  // Retained samples of backend GPU `gpu`, oldest first, optionally within [from, to].
  std::vector<PowerSample> timeline(std::size_t gpu) const;
  std::vector<PowerSample> timeline(std::size_t gpu, UtcTime from, UtcTime to) const;
  std::optional<PowerSample> latest(std::size_t gpu) const;
  // Trapezoid integral of the retained samples within [from, to], in J.
  double energy_j(std::size_t gpu, UtcTime from, UtcTime to) const;
  std::size_t dropped_samples(std::size_t gpu) const;
  std::string last_error(std::size_t gpu) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chase
