// PowerLimitGuard: remembers each GPU's limit before its first change and puts it back on scope
// exit, restore(), exit() and termination signals (contract: chase/power_limit_guard.h).
//
// How the pieces fit:
//  - GuardedLimits (one per guard, owned through a shared_ptr) maps GPU → original limit.
//  - GuardRegistry (process-wide, leaked) lists the guards that hold changed limits, for the two
//    paths that run without the guard's owner: the atexit hook and the signal watcher. It holds
//    shared_ptrs, so a guard's state and its backend stay alive for them.
//  - The signal handler does only async-signal-safe work: it chains to the program's own handler,
//    or writes the signal number to a pipe. A watcher thread reads the pipe, restores every
//    registered guard (ordinary code: locks, NVML, logging are fine there), then re-raises the
//    signal with its default action, so the process still dies of it.
//
// Lock order: a guard's mutex, then the registry's. The registry never locks a guard while holding
// its own mutex (it copies its list first), so the two cannot deadlock.

#include "chase/power_limit_guard.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "chase/error.h"

namespace chase {
namespace {

// ---- One guard's record -------------------------------------------------------------------------

class GuardedLimits;

// One recorded original, as the registry sees it when restoring on its own.
struct PendingRestore {
  std::shared_ptr<GuardedLimits> guard;
  std::size_t gpu = 0;
  std::uint64_t sequence = 0;
};

// Orders every change made by any guard: restoring the newest record first means a GPU changed by
// several guards ends at the oldest record, i.e. the limit before any of them.
std::atomic<std::uint64_t> change_sequence{0};

class GuardedLimits : public std::enable_shared_from_this<GuardedLimits> {
 public:
  explicit GuardedLimits(std::shared_ptr<GpuBackend> backend) : backend_(std::move(backend)) {}

  void set_power_limit_w(std::size_t gpu, double watts);
  void restore();
  std::optional<double> original_limit_w(std::size_t gpu) const;
  GpuBackend& backend() const noexcept { return *backend_; }

  // For GuardRegistry::restore_all(): this guard's records, and restoring one of them.
  void collect_changes(std::vector<PendingRestore>& changes);
  void restore_change(std::size_t gpu, std::uint64_t sequence) noexcept;

 private:
  struct Original {
    double watts = 0;
    std::uint64_t sequence = 0;
  };

  // Each expects mutex_ to be held.
  std::exception_ptr try_restore(std::size_t gpu, double watts) noexcept;
  void record_original(std::size_t gpu);
  void forget(std::size_t gpu) noexcept;
  void forget_all() noexcept;

  std::shared_ptr<GpuBackend> backend_;
  mutable std::mutex mutex_;
  std::map<std::size_t, Original> originals_;
};

std::string original_hint(double watts) {
  return fmt::format("; its power limit before chase changed it was {} W", watts);
}

void log_failure(const std::exception_ptr& failure) noexcept {
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
  } catch (...) {
    spdlog::error("restoring a GPU power limit failed with an unknown error");
  }
}

// ---- The process-wide registry ------------------------------------------------------------------

class GuardRegistry {
 public:
  static GuardRegistry& instance() {
    // Leaked on purpose: the atexit hook and the signal watcher use it during and after static
    // destruction.
    static auto* const registry = new GuardRegistry;
    return *registry;
  }

  // Installs the signal handlers, the watcher and the atexit hook the first time; throws
  // kInternal when they cannot be installed (the caller then leaves the limit alone).
  void add(std::shared_ptr<GuardedLimits> guard);
  // The caller must hold another reference to `guard` (it is not destroyed here).
  void remove(const GuardedLimits* guard) noexcept;
  // Restores every registered guard's limits, newest change first; failures are logged.
  void restore_all() noexcept;

 private:
  GuardRegistry() = default;

  std::mutex mutex_;
  std::vector<std::shared_ptr<GuardedLimits>> guards_;
  bool protections_installed_ = false;
};

// ---- Signals ------------------------------------------------------------------------------------
// Everything the handler reads is written before the handlers are installed, and never after.

struct CaughtSignal {
  int number;
  const char* name;
  struct sigaction previous;  // the disposition before ours
};

CaughtSignal caught_signals[] = {{SIGINT, "SIGINT", {}},
                                 {SIGTERM, "SIGTERM", {}},
                                 {SIGHUP, "SIGHUP", {}},
                                 {SIGQUIT, "SIGQUIT", {}}};

int signal_pipe_write = -1;
// The process that installed the handlers: a fork()ed child has no watcher thread, and must not
// restore (or die for) its parent.
pid_t owner_pid = 0;
// Set by the first terminating signal; a second one while restoring terminates at once.
std::atomic<bool> terminating{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

const CaughtSignal* find_caught(int number) noexcept {
  for (const auto& caught : caught_signals) {
    if (caught.number == number) return &caught;
  }
  return nullptr;
}

bool is_program_handler(const struct sigaction& action) noexcept {
  if ((action.sa_flags & SA_SIGINFO) != 0) return true;
  return action.sa_handler != SIG_DFL && action.sa_handler != SIG_IGN;
}

bool is_ignored(const struct sigaction& action) noexcept {
  return (action.sa_flags & SA_SIGINFO) == 0 && action.sa_handler == SIG_IGN;
}

// Dies of `number` by its default action. Async-signal-safe (sigaction, pthread_sigmask, raise):
// used by the handler as well as by the watcher.
void terminate_with(int number) noexcept {
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  ::sigaction(number, &default_action, nullptr);
  sigset_t just_this;
  sigemptyset(&just_this);
  sigaddset(&just_this, number);
  ::pthread_sigmask(SIG_UNBLOCK, &just_this, nullptr);  // inside a handler, the signal is blocked
  ::raise(number);
}

void call_program_handler(const struct sigaction& previous, int number, siginfo_t* info,
                          void* context) {
  if ((previous.sa_flags & SA_SIGINFO) != 0) {
    previous.sa_sigaction(number, info, context);
  } else {
    previous.sa_handler(number);
  }
}

void on_signal(int number, siginfo_t* info, void* context) {
  const int saved_errno = errno;  // the interrupted code may be about to read errno
  const CaughtSignal* caught = find_caught(number);
  if (caught != nullptr && is_program_handler(caught->previous)) {
    // The program decides how to stop; its unwinding or exit() restores the limits.
    call_program_handler(caught->previous, number, info, context);
  } else if (::getpid() != owner_pid || terminating.exchange(true)) {
    terminate_with(number);
  } else {
    const auto byte = static_cast<unsigned char>(number);
    // Non-blocking pipe: should the write fail, dying unrestored beats hanging in a handler.
    if (::write(signal_pipe_write, &byte, 1) != 1) terminate_with(number);
  }
  errno = saved_errno;
}

const char* signal_name(int number) noexcept {
  const CaughtSignal* caught = find_caught(number);
  return caught != nullptr ? caught->name : "signal";
}

// The watcher thread: restores the limits for a terminating signal, then dies of it.
void watch_signals(int read_fd) {
  for (;;) {
    unsigned char byte = 0;
    const ssize_t count = ::read(read_fd, &byte, 1);
    if (count < 0 && errno == EINTR) continue;
    if (count != 1) {
      spdlog::error("the power-limit signal watcher stopped: {}", std::strerror(errno));
      return;
    }
    const int number = byte;
    spdlog::warn("received {}: restoring GPU power limits before terminating", signal_name(number));
    GuardRegistry::instance().restore_all();
    terminate_with(number);
    ::_exit(128 + number);  // not reached: every caught signal's default action terminates
  }
}

[[noreturn]] void throw_install_failure(const std::string& what, int error) {
  throw Error(
      ErrorCode::kInternal,
      fmt::format("cannot {} (needed to restore GPU power limits on a signal): {}; the power "
                  "limit was not changed",
                  what, std::strerror(error)));
}

void start_signal_watcher() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_install_failure("create the signal pipe", errno);
  ::fcntl(fds[1], F_SETFL, O_NONBLOCK);
  // The watcher inherits this mask: with every signal blocked it never runs a handler, so the
  // program's threads get the signals, and only its own raise() (after unblocking) reaches it.
  sigset_t all;
  sigset_t previous_mask;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous_mask);
  try {
    std::thread(watch_signals, fds[0]).detach();
  } catch (const std::system_error& e) {
    ::pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
    ::close(fds[0]);
    ::close(fds[1]);
    throw_install_failure("start the signal watcher thread", e.code().value());
  }
  ::pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
  signal_pipe_write = fds[1];
  owner_pid = ::getpid();
}

void install_signal_handlers() {
  for (auto& caught : caught_signals) {
    ::sigaction(caught.number, nullptr, &caught.previous);
    if (is_ignored(caught.previous)) continue;  // ignored signals stay ignored
    struct sigaction ours {};
    ours.sa_sigaction = on_signal;
    if (is_program_handler(caught.previous)) {
      // Keep the program's own semantics (restart, mask, one-shot) for the handler chained to.
      ours.sa_flags = caught.previous.sa_flags | SA_SIGINFO;
      ours.sa_mask = caught.previous.sa_mask;
    } else {
      // Restart interrupted calls: the program expected this signal to kill it, not to fail a read.
      ours.sa_flags = SA_SIGINFO | SA_RESTART;
      sigemptyset(&ours.sa_mask);
    }
    ::sigaction(caught.number, &ours, nullptr);
  }
}

// Covers exit() paths that skip destructors (a guard on the heap, exit() from deep inside).
void restore_at_exit() {
  if (::getpid() != owner_pid) return;  // a fork()ed child must not restore its parent's limits
  GuardRegistry::instance().restore_all();
}

void install_protections() {
  // Create spdlog's registry now, so it is destroyed after restore_at_exit (which may log) runs.
  spdlog::default_logger_raw();
  start_signal_watcher();
  install_signal_handlers();
  if (std::atexit(restore_at_exit) != 0) {
    spdlog::warn(
        "cannot register the exit hook: GPU power limits are not restored when the "
        "program calls exit() while a PowerLimitGuard is alive");
  }
}

// ---- GuardRegistry ------------------------------------------------------------------------------

void GuardRegistry::add(std::shared_ptr<GuardedLimits> guard) {
  std::lock_guard lock(mutex_);
  if (!protections_installed_) {
    install_protections();
    protections_installed_ = true;
  }
  guards_.push_back(std::move(guard));
}

void GuardRegistry::remove(const GuardedLimits* guard) noexcept {
  std::lock_guard lock(mutex_);
  std::erase_if(guards_, [guard](const auto& registered) { return registered.get() == guard; });
}

void GuardRegistry::restore_all() noexcept {
  try {
    std::vector<std::shared_ptr<GuardedLimits>> guards;
    {
      std::lock_guard lock(mutex_);
      guards = guards_;  // a copy: restoring locks each guard, which must not nest in our lock
    }
    std::vector<PendingRestore> changes;
    for (const auto& guard : guards) guard->collect_changes(changes);
    std::sort(changes.begin(), changes.end(),
              [](const auto& a, const auto& b) { return a.sequence > b.sequence; });
    for (const auto& change : changes) change.guard->restore_change(change.gpu, change.sequence);
  } catch (const std::exception& e) {  // only allocation can fail here; the limits stay changed
    spdlog::error("cannot restore GPU power limits: {}", e.what());
  }
}

// ---- GuardedLimits ------------------------------------------------------------------------------

void GuardedLimits::set_power_limit_w(std::size_t gpu, double watts) {
  std::lock_guard lock(mutex_);
  if (originals_.contains(gpu)) {
    backend_->set_power_limit_w(gpu, watts);  // the original is already recorded
    return;
  }
  record_original(gpu);
  try {
    backend_->set_power_limit_w(gpu, watts);
  } catch (...) {
    forget(gpu);  // the device kept its limit: nothing to restore
    throw;
  }
}

// Records before changing, so a signal or exit() right after the change finds the record.
void GuardedLimits::record_original(std::size_t gpu) {
  const double limit = backend_->power_limit_w(gpu);
  if (originals_.empty()) GuardRegistry::instance().add(shared_from_this());
  originals_.emplace(gpu, Original{limit, change_sequence.fetch_add(1)});
}

void GuardedLimits::forget(std::size_t gpu) noexcept {
  originals_.erase(gpu);
  if (originals_.empty()) GuardRegistry::instance().remove(this);
}

void GuardedLimits::forget_all() noexcept {
  originals_.clear();
  GuardRegistry::instance().remove(this);
}

void GuardedLimits::restore() {
  std::lock_guard lock(mutex_);
  std::exception_ptr first_failure;
  for (const auto& [gpu, original] : originals_) {
    if (auto failure = try_restore(gpu, original.watts)) {
      if (first_failure) {
        log_failure(failure);  // only the first is thrown; the others must not go unreported
      } else {
        first_failure = std::move(failure);
      }
    }
  }
  forget_all();  // a failed restore is reported once, not retried at exit
  if (first_failure) std::rethrow_exception(first_failure);
}

std::exception_ptr GuardedLimits::try_restore(std::size_t gpu, double watts) noexcept {
  try {
    backend_->set_power_limit_w(gpu, watts);
    return nullptr;
  } catch (const Error& e) {
    return std::make_exception_ptr(Error(e.code(), e.what() + original_hint(watts)));
  } catch (...) {
    return std::current_exception();
  }
}

std::optional<double> GuardedLimits::original_limit_w(std::size_t gpu) const {
  std::lock_guard lock(mutex_);
  const auto found = originals_.find(gpu);
  if (found == originals_.end()) return std::nullopt;
  return found->second.watts;
}

void GuardedLimits::collect_changes(std::vector<PendingRestore>& changes) {
  std::lock_guard lock(mutex_);
  for (const auto& [gpu, original] : originals_) {
    changes.push_back({shared_from_this(), gpu, original.sequence});
  }
}

void GuardedLimits::restore_change(std::size_t gpu, std::uint64_t sequence) noexcept {
  std::lock_guard lock(mutex_);
  const auto found = originals_.find(gpu);
  // Gone or replaced: the owner restored it meanwhile.
  if (found == originals_.end() || found->second.sequence != sequence) return;
  if (auto failure = try_restore(gpu, found->second.watts)) log_failure(failure);
  forget(gpu);
}

}  // namespace

// ---- PowerLimitGuard ----------------------------------------------------------------------------

class PowerLimitGuard::Impl final : public GuardedLimits {
 public:
  using GuardedLimits::GuardedLimits;
};

PowerLimitGuard::PowerLimitGuard(std::shared_ptr<GpuBackend> backend) {
  if (!backend) {
    throw Error(ErrorCode::kInvalidArgument,
                "PowerLimitGuard needs a GPU backend, got a null pointer");
  }
  impl_ = std::make_shared<Impl>(std::move(backend));
}

PowerLimitGuard::~PowerLimitGuard() {
  try {
    impl_->restore();
  } catch (const std::exception& e) {
    spdlog::error("could not restore every GPU power limit: {}", e.what());
  } catch (...) {
    spdlog::error("could not restore every GPU power limit: unknown error");
  }
}

void PowerLimitGuard::set_power_limit_w(std::size_t gpu, double watts) {
  impl_->set_power_limit_w(gpu, watts);
}

void PowerLimitGuard::restore() { impl_->restore(); }

std::optional<double> PowerLimitGuard::original_limit_w(std::size_t gpu) const {
  return impl_->original_limit_w(gpu);
}

GpuBackend& PowerLimitGuard::backend() const noexcept { return impl_->backend(); }

}  // namespace chase
