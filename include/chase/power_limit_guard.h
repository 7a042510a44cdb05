// chase/power_limit_guard.h — change GPU power limits and always put them back.
//
// Contract: PowerLimitGuard::set_power_limit_w() remembers each GPU's limit before its first change
// and restores it when the guard is destroyed (scope exit or exception unwinding), when restore()
// is called, when the process exits through exit(), and when it receives SIGINT, SIGTERM, SIGHUP or
// SIGQUIT. For those signals the first guard to change a limit installs a handler, which stays in
// place afterwards (while no guard holds changed limits it only passes the signal on): if the
// signal's previous disposition was the default (terminate), a watcher thread restores every
// guarded limit and then re-raises the signal with its default action, so the process still dies of
// it; if the program had its own handler, that handler is chained to (the program decides how to
// stop, and unwinding or exit() restores the limits); ignored signals stay ignored. A fork()ed
// child (without exec) restores nothing of its parent's, neither at exit() nor on a signal. A
// second signal while restoring terminates at once. SIGKILL cannot be caught: after `kill -9`, run
// `chase` again with the same GPUs or reset the limits with nvidia-smi.
//
// Thread safety: one guard may be used from several threads; many guards may exist at once (each
// restores what it changed; two guards changing the same GPU restore in reverse order of creation).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>

#include "chase/gpu.h"

namespace chase {

class PowerLimitGuard {
 public:
  explicit PowerLimitGuard(std::shared_ptr<GpuBackend> backend);
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
