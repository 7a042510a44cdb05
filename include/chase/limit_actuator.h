// chase/limit_actuator.h — the one place a job's GPU power limits are changed.
//
// Contract: a LimitActuator drives one job's GPUs (`gpus`: backend indices; empty: all healthy
// ones), which must share power-limit constraints (kInvalidArgument otherwise, as for no GPU at
// all). It owns the job's PowerLimitGuard — every limit it changes comes back when the actuator is
// destroyed, at exit() and on SIGINT/SIGTERM/SIGHUP/SIGQUIT — and the ranks' agreement: apply()
// first agrees with the other ranks on the value (rank 0's wins, chase/coordinator.h), so data-
// parallel ranks never run different limits.
// Its error policy:
//   set(watts)   for profiling: throws the backend's chase::Error (the profiler skips that limit);
//   apply(watts) for control: never throws for a GPU's or a rank's failure (ranks that cannot
//                agree keep the limit in force). When a GPU refuses the change,
//                the GPUs already changed go back to the limit in force, which stays; the failure
//                is logged and returned (LimitChange), and current_limit_w() is unchanged, so the
//                next apply() of the same value tries again. Out-of-range values are clamped to
//                the GPUs' range and say so in LimitChange::note.
// current_limit_w() is the limit the actuator last set on every GPU (the highest limit before it
// set any).
//
// Thread safety: not thread-safe; one caller at a time (the training loop's thread).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "chase/coordinator.h"
#include "chase/gpu.h"
#include "chase/power_limit_guard.h"

namespace chase {

struct LimitChange {
  double requested_w = 0;  // after agreement across ranks
  double limit_w = 0;      // the limit in force afterwards
  bool ok = true;
  std::string note;  // the failure or the clamp, for reports; empty when all went as asked
};

class LimitActuator {
 public:
  LimitActuator(std::shared_ptr<GpuBackend> backend, std::vector<std::size_t> gpus = {},
                std::shared_ptr<Coordinator> coordinator = nullptr);
  LimitActuator(const LimitActuator&) = delete;
  LimitActuator& operator=(const LimitActuator&) = delete;

  void set(double watts);
  LimitChange apply(double watts);

  double current_limit_w() const noexcept { return current_limit_w_; }
  double min_limit_w() const noexcept { return min_limit_w_; }
  double max_limit_w() const noexcept { return max_limit_w_; }
  const std::vector<std::size_t>& gpus() const noexcept { return gpus_; }
  const GpuInfo& first_gpu() const;
  Coordinator& coordinator() const noexcept { return *coordinator_; }
  const std::shared_ptr<GpuBackend>& backend() const noexcept { return backend_; }

 private:
  void set_all(double watts);

  std::shared_ptr<GpuBackend> backend_;
  std::vector<std::size_t> gpus_;
  std::shared_ptr<Coordinator> coordinator_;
  PowerLimitGuard guard_;
  double min_limit_w_ = 0;
  double max_limit_w_ = 0;
  double current_limit_w_ = 0;
};

}  // namespace chase
