// chase/power_limit_guard.h — change GPU power limits and always put them back.
//
// Contract: PowerLimitGuard::set_power_limit_w() remembers each GPU's limit before its first change
// and restores it when the guard is destroyed (scope exit or exception unwinding), when restore()
// is called, when the process exits through exit(), and when it receives SIGINT, SIGTERM, SIGHUP or
// SIGQUIT.
//
// Durable record: for a backend whose limits outlive the process (NVML), the first change of a GPU
// is preceded by a record in the LimitStateStore (chase/limit_state.h; $CHASE_STATE_DIR, else
// $XDG_RUNTIME_DIR/chase, else /run/chase as root): the limit before any chase process changed it,
// and this guard as one of its holders. So after a SIGKILL the next guard changing that GPU — or
// `chase limits restore` — restores the true original, not the cap the killed process left; and of
// two processes changing one GPU, the last one to restore puts back the original (an earlier one
// puts back the limit the remaining holder set). When the store cannot be used the guard logs a
// warning and restores from memory only.
//
// Before restoring, the guard checks that the limit is still the one it set; when it is not (an
// administrator, another tool or a driver reload changed it) it leaves it and logs a warning.
// PowerLimitGuardOptions::restore_to = RestoreTarget::kDefault restores the GPU's default limit
// instead of the one found before the change.
//
// Signals: for SIGINT, SIGTERM, SIGHUP and SIGQUIT the first guard to change a limit installs a
// handler, which stays in place afterwards (while no guard holds changed limits it only passes the
// signal on): if the signal's previous disposition was the default (terminate), a watcher thread
// restores every guarded limit and then re-raises the signal with its default action, so the
// process still dies of it; if the program had its own handler, that handler is chained to (the
// program decides how to stop, and unwinding or exit() restores the limits); ignored signals stay
// ignored. A fork()ed child (without exec) restores nothing of its parent's, neither at exit() nor
// on a signal. A second signal while restoring terminates at once. SIGKILL cannot be caught: after
// `kill -9`, run `chase limits restore` (or any chase run that changes the same GPUs restores the
// original).
//
// Thread safety: one guard may be used from several threads; many guards may exist at once (each
// restores what it changed; two guards changing the same GPU restore in reverse order of creation).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>

#include "chase/gpu.h"
#include "chase/limit_state.h"

namespace chase {

struct PowerLimitGuardOptions {
  RestoreTarget restore_to = RestoreTarget::kOriginal;
  // Keep the durable record (only for backends whose limits outlive the process).
  bool durable = true;
  // The record's directory; nullopt: default_limit_state_directory().
  std::optional<std::filesystem::path> state_directory;
};

class PowerLimitGuard {
 public:
  explicit PowerLimitGuard(std::shared_ptr<GpuBackend> backend,
                           PowerLimitGuardOptions options = {});
  ~PowerLimitGuard();  // restores; failures are logged, never thrown
  PowerLimitGuard(const PowerLimitGuard&) = delete;
  PowerLimitGuard& operator=(const PowerLimitGuard&) = delete;

  void set_power_limit_w(std::size_t gpu, double watts);
  // Restores every changed limit now; tries all GPUs, then throws the first failure, if any.
  void restore();
  // The limit found before this guard first changed `gpu`; nullopt when unchanged.
  std::optional<double> original_limit_w(std::size_t gpu) const;
  GpuBackend& backend() const noexcept;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;  // shared with the process-wide registry used by signal handlers
};

}  // namespace chase
