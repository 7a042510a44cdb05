// chase/power_limit_optimizer.h — profile every GPU power limit during the first steps of training,
// then run at the limit a selector picks (Zeus' just-in-time profiling, docs/ALGORITHMS.md §2).
//
// Contract: the training loop calls on_step_begin() before every step and on_epoch_end() after
// every epoch; the optimizer walks the candidate limits — the GPUs' maximum down to and including
// their minimum in steps of `limit_step_w` — as a state machine:
//   Ready:     the first `wait_steps` steps run untouched; the next step sets the first candidate
//              → Warmup.
//   Warmup:    `warmup_steps` steps at the candidate, then a measurement window opens → Profiling.
//   Profiling: `profile_steps` steps; the window closes and (limit, time, energy summed over the
//              GPUs — over all ranks' GPUs, time the slowest rank's, with a Coordinator) is
//              recorded; the next candidate is set → Warmup, or after the last one the
//              selector chooses, its limit is set → Done, and the profile is saved.
//   An epoch ending in Warmup or Profiling cancels any open window, sets the maximum limit back for
//   the epoch's end (evaluation, checkpointing) and retries the same candidate at the next step.
// Every GPU of the job must share the same limit constraints (kInvalidArgument otherwise). With
// `profile_dir` set, a profile saved for the same GPU model, GPU count, job id and batch size is
// loaded at construction: the optimizer starts in Done and sets the chosen limit at the first step
// (with a Coordinator, only when every rank found it; all ranks should see the same profile_dir,
// rank 0 writes it).
// All limit changes go through a LimitActuator (chase/limit_actuator.h) — the optimizer's own, or
// the one given in the options, shared with whoever controls the limits after profiling — whose
// PowerLimitGuard puts the limits found at construction back when the actuator is destroyed, at
// exit() and on SIGINT/SIGTERM/SIGHUP/SIGQUIT. The optimizer profiles; it does not control limits
// after the selector's choice (TrainingController's policies do, through the same actuator).
// Errors: a candidate limit a GPU refuses is skipped and reported (skipped_limits(); the ranks
// agree, so all of them skip it); profiling is abandoned when every candidate was refused, or when
// a GPU fails to measure (lost) — logged, the maximum limit is set and the optimizer is Done.
//
// Thread safety: not thread-safe; call it from the training loop's thread.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chase/coordinator.h"
#include "chase/energy_monitor.h"
#include "chase/gpu.h"
#include "chase/limit_actuator.h"
#include "chase/limit_profile.h"
#include "chase/selector.h"
#include "chase/time.h"

namespace chase {

enum class OptimizerState { kReady, kWarmup, kProfiling, kDone };
std::string_view to_string(OptimizerState state) noexcept;

struct PowerLimitOptimizerOptions {
  std::size_t wait_steps = 1;
  std::size_t warmup_steps = 10;
  std::size_t profile_steps = 40;
  double limit_step_w = 25;
  std::vector<std::size_t> gpus;  // backend GPU indices of the job; empty: all of them
  std::shared_ptr<const PowerLimitSelector> selector;  // null: zeus(η = 0.5)
  SelectionContext context;           // what the selector is given when profiling ends
  std::filesystem::path profile_dir;  // where profiles are saved and found; empty: not persisted
  std::string job_id;
  std::size_t batch_size = 0;
  std::shared_ptr<Clock> clock;  // null: the system clock
  // Data parallel over several ranks: each rank's optimizer drives its own `gpus` and the ranks
  // combine every window and agree on every choice. Null: one process drives all the job's GPUs.
  std::shared_ptr<Coordinator> coordinator;
  // The actuator to change limits through; null: the optimizer's own over `gpus` and
  // `coordinator` (both are then taken from the actuator given).
  std::shared_ptr<LimitActuator> actuator;
  // The monitor to measure windows with (it must measure the job's GPUs); null: the optimizer's
  // own. Sharing one lets a controller run one sampling thread, not two.
  std::shared_ptr<EnergyMonitor> monitor;
};

// A candidate limit profiling had to leave out, and why.
struct SkippedLimit {
  double power_limit_w = 0;
  std::string reason;
};

class PowerLimitOptimizer {
 public:
  PowerLimitOptimizer(std::shared_ptr<GpuBackend> gpus, PowerLimitOptimizerOptions options = {});
  ~PowerLimitOptimizer();
  PowerLimitOptimizer(const PowerLimitOptimizer&) = delete;
  PowerLimitOptimizer& operator=(const PowerLimitOptimizer&) = delete;

  void on_step_begin();
  void on_epoch_end();

  OptimizerState state() const noexcept;
  // Candidates, highest first.
  const std::vector<double>& candidate_limits() const noexcept;
  // The limit the optimizer last set (the maximum before it set any).
  double current_limit_w() const noexcept;
  // The profile measured (or loaded) once Done; nullopt before.
  const std::optional<LimitProfile>& profile() const noexcept;
  // The selector's verdict once Done (nullopt before, or when profiling was abandoned).
  const std::optional<Selection>& selection() const noexcept;
  bool loaded_saved_profile() const noexcept;
  // Where this job's profile is saved (empty without profile_dir).
  std::filesystem::path profile_path() const;

  // Candidates the GPUs refused while profiling, in order.
  const std::vector<SkippedLimit>& skipped_limits() const noexcept;
  const std::shared_ptr<LimitActuator>& actuator() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chase
