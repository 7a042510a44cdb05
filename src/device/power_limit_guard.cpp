// PowerLimitGuard: remembers each GPU's limit before its first change and puts it back on scope
// exit, restore(), exit() and termination signals (contract: chase/power_limit_guard.h).
//
// How the pieces fit:
//  - GuardedLimits (one per guard, owned through a shared_ptr) maps GPU → original limit and the
//    limit it set; for backends whose limits outlive the process it also keeps the durable record
//    (LimitStateStore, chase/limit_state.h), written before the first change of each GPU.
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
#include <cmath>
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

// Tells every guard apart in the durable record, with the process's PID and start time.
std::atomic<std::uint64_t> guard_numbers{0};

std::optional<LimitStateStore> open_store(const GpuBackend& backend,
                                          const PowerLimitGuardOptions& options) {
  if (!options.durable || !backend.limits_outlive_process()) return std::nullopt;
  std::string why_none;
  auto directory =
      options.state_directory ? options.state_directory : default_limit_state_directory(&why_none);
  try {
    if (directory) return LimitStateStore(*directory);
  } catch (const Error& e) {
    why_none = e.what();
  }
  if (why_none.ends_with('.')) why_none.pop_back();
  static std::once_flag warned;  // once per process: every guard would say the same
  std::call_once(warned, [&] {
    spdlog::warn(
        "{}. GPU power limits are still restored on exit and on signals, but not after SIGKILL "
        "and not across processes: set CHASE_STATE_DIR to a writable directory",
        why_none);
  });
  return std::nullopt;
}

LimitRecord* find_record(std::vector<LimitRecord>& records, const std::string& uuid) {
  const auto found = std::find_if(records.begin(), records.end(),
                                  [&](const LimitRecord& r) { return r.uuid == uuid; });
  return found != records.end() ? &*found : nullptr;
}

bool same_limit(double a, double b) { return std::abs(a - b) < kLimitTolerance_w; }

class GuardedLimits : public std::enable_shared_from_this<GuardedLimits> {
 public:
  GuardedLimits(std::shared_ptr<GpuBackend> backend, const PowerLimitGuardOptions& options)
      : backend_(std::move(backend)),
        restore_to_(options.restore_to),
        store_(open_store(*backend_, options)),
        number_(guard_numbers.fetch_add(1)) {}

  void set_power_limit_w(std::size_t gpu, double watts);
  void restore();
  std::optional<double> original_limit_w(std::size_t gpu) const;
  GpuBackend& backend() const noexcept { return *backend_; }

  // For GuardRegistry::restore_all(): this guard's records, and restoring one of them.
  void collect_changes(std::vector<PendingRestore>& changes);
  void restore_change(std::size_t gpu, std::uint64_t sequence) noexcept;

 private:
  struct Original {
    double watts = 0;  // the limit found before this guard's first change
    double set_w = 0;  // the limit this guard set last
    std::uint64_t sequence = 0;
  };
  enum class Restore { kSet, kLeaveToHolder, kLeaveChanged };

  // Each expects mutex_ to be held.
  std::exception_ptr try_restore(std::size_t gpu, const Original& original) noexcept;
  void restore_or_leave(std::size_t gpu, const Original& original);
  bool restore_durably(std::size_t gpu, const Original& original, double found_w);
  void set_restored(std::size_t gpu, double found_w, double set_w, double target_w);
  void record_original(std::size_t gpu, double watts);
  void forget(std::size_t gpu) noexcept;
  void forget_all() noexcept;

  // The durable record (store_ set); failures are logged: the in-memory record still restores.
  void record_durably(std::size_t gpu, double original_w, double watts) noexcept;
  void note_set_durably(std::size_t gpu, double watts) noexcept;
  void forget_durably(std::size_t gpu) noexcept;
  bool is_me(const LimitHolder& holder) const;

  std::shared_ptr<GpuBackend> backend_;
  RestoreTarget restore_to_;
  std::optional<LimitStateStore> store_;
  std::uint64_t number_;
  mutable std::mutex mutex_;
  std::map<std::size_t, Original> originals_;
};

void warn_store_failure(const GpuInfo& gpu, const std::exception& e) {
  spdlog::warn("{}: the durable record of its power limit could not be updated: {}", describe(gpu),
               e.what());
}

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
  if (const auto found = originals_.find(gpu); found != originals_.end()) {
    backend_->set_power_limit_w(gpu, watts);  // the original is already recorded
    found->second.set_w = watts;
    note_set_durably(gpu, watts);
    return;
  }
  record_original(gpu, watts);
  try {
    backend_->set_power_limit_w(gpu, watts);
  } catch (...) {
    forget_durably(gpu);
    forget(gpu);  // the device kept its limit: nothing to restore
    throw;
  }
}

// Records before changing, so a signal, exit() or SIGKILL right after the change finds the record.
void GuardedLimits::record_original(std::size_t gpu, double watts) {
  checked_gpu(backend_->gpus(), gpu);
  const double limit = backend_->power_limit_w(gpu);
  if (originals_.empty()) GuardRegistry::instance().add(shared_from_this());
  originals_.emplace(gpu, Original{limit, watts, change_sequence.fetch_add(1)});
  record_durably(gpu, limit, watts);
}

bool GuardedLimits::is_me(const LimitHolder& holder) const {
  const LimitHolder me = this_process_holder(number_, 0);
  return holder.pid == me.pid && holder.start_time == me.start_time && holder.guard == number_;
}

void GuardedLimits::record_durably(std::size_t gpu, double original_w, double watts) noexcept {
  if (!store_) return;
  const GpuInfo& info = backend_->gpus()[gpu];
  if (info.uuid.empty()) return;
  try {
    store_->update([&](std::vector<LimitRecord>& records) {
      LimitRecord* record = find_record(records, info.uuid);
      if (record == nullptr) {
        records.push_back({info.uuid, original_w, watts, {}});
        record = &records.back();
      } else {
        const auto dead =
            std::erase_if(record->holders, [](const LimitHolder& h) { return !holder_alive(h); });
        if (record->holders.empty()) {
          spdlog::warn(
              "{}: a chase process that ended without restoring it (SIGKILL, OOM killer, "
              "preemption; {} holder(s)) left its power limit at {} W; the limit before it, {} W, "
              "is what will be restored",
              describe(info), dead, original_w, record->original_w);
        }
        record->last_set_w = watts;
      }
      record->holders.push_back(this_process_holder(number_, watts));
      return true;
    });
  } catch (const std::exception& e) {
    warn_store_failure(info, e);
  }
}

void GuardedLimits::note_set_durably(std::size_t gpu, double watts) noexcept {
  if (!store_) return;
  const GpuInfo& info = backend_->gpus()[gpu];
  try {
    store_->update([&](std::vector<LimitRecord>& records) {
      LimitRecord* record = find_record(records, info.uuid);
      if (record == nullptr) return false;
      for (auto& holder : record->holders) {
        if (is_me(holder)) holder.set_w = watts;
      }
      record->last_set_w = watts;
      return true;
    });
  } catch (const std::exception& e) {
    warn_store_failure(info, e);
  }
}

// The change failed: this guard holds nothing; a record it created for nothing goes away.
void GuardedLimits::forget_durably(std::size_t gpu) noexcept {
  if (!store_) return;
  const GpuInfo& info = backend_->gpus()[gpu];
  const double found_w = originals_.at(gpu).watts;
  try {
    store_->update([&](std::vector<LimitRecord>& records) {
      LimitRecord* record = find_record(records, info.uuid);
      if (record == nullptr) return false;
      std::erase_if(record->holders, [&](const LimitHolder& h) { return is_me(h); });
      record->last_set_w = found_w;  // the device kept it: whoever set it last, it is in force
      if (record->holders.empty() && same_limit(record->original_w, found_w)) {
        std::erase_if(records, [&](const LimitRecord& r) { return r.uuid == info.uuid; });
      }
      return true;
    });
  } catch (const std::exception& e) {
    warn_store_failure(info, e);
  }
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
    if (auto failure = try_restore(gpu, original)) {
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

std::exception_ptr GuardedLimits::try_restore(std::size_t gpu, const Original& original) noexcept {
  try {
    restore_or_leave(gpu, original);
    return nullptr;
  } catch (const Error& e) {
    return std::make_exception_ptr(Error(e.code(), e.what() + original_hint(original.watts)));
  } catch (...) {
    return std::current_exception();
  }
}

// Restores `gpu` unless someone else changed its limit since this guard set it.
void GuardedLimits::restore_or_leave(std::size_t gpu, const Original& original) {
  const double found_w = backend_->power_limit_w(gpu);
  if (restore_durably(gpu, original, found_w)) return;
  const double target_w = restore_to_ == RestoreTarget::kDefault
                              ? backend_->gpus()[gpu].default_power_limit_w
                              : original.watts;
  set_restored(gpu, found_w, original.set_w, target_w);
}

// Sets `target_w` when the limit is still the `set_w` this guard set; otherwise leaves it, warning.
void GuardedLimits::set_restored(std::size_t gpu, double found_w, double set_w, double target_w) {
  if (!same_limit(found_w, set_w)) {
    spdlog::warn(
        "{}: its power limit is {} W, not the {} W chase set, so someone else (an administrator, "
        "another tool or a driver reload) changed it meanwhile; chase leaves it at {} W instead of "
        "restoring {} W",
        describe(backend_->gpus()[gpu]), found_w, set_w, found_w, target_w);
    return;
  }
  backend_->set_power_limit_w(gpu, target_w);
}

// The durable path; false when there is no durable record to follow (restore from memory then).
// The limit is changed under the store's lock, so the holders listed always match the device.
bool GuardedLimits::restore_durably(std::size_t gpu, const Original& original, double found_w) {
  if (!store_) return false;
  const GpuInfo& info = backend_->gpus()[gpu];
  bool followed = false;
  std::exception_ptr device_failure;
  // Changes the limit; on failure nothing is written, so the record still lists this guard.
  const auto set_or_keep = [&](double target_w) {
    try {
      set_restored(gpu, found_w, original.set_w, target_w);
      return true;
    } catch (...) {
      device_failure = std::current_exception();
      return false;
    }
  };
  try {
    store_->update([&](std::vector<LimitRecord>& records) {
      LimitRecord* record = find_record(records, info.uuid);
      const bool mine =
          record != nullptr && std::any_of(record->holders.begin(), record->holders.end(),
                                           [&](const LimitHolder& h) { return is_me(h); });
      if (!mine) return false;  // `chase limits restore` or a lost write: restore from memory
      followed = true;
      std::erase_if(record->holders,
                    [&](const LimitHolder& h) { return is_me(h) || !holder_alive(h); });
      const auto& others = record->holders;
      const bool left_to_other = std::any_of(others.begin(), others.end(), [&](const auto& h) {
        return same_limit(h.set_w, found_w) && !same_limit(original.set_w, found_w);
      });
      if (left_to_other) {
        // Another live process set this limit after us: it restores when it is done.
      } else if (!others.empty()) {
        // We set it last; the other holder expects its own limit back, and restores the original.
        if (!set_or_keep(others.back().set_w)) return false;
        record->last_set_w = others.back().set_w;
      } else {
        const double target_w = restore_to_ == RestoreTarget::kDefault ? info.default_power_limit_w
                                                                       : record->original_w;
        if (!set_or_keep(target_w)) return false;
      }
      if (record->holders.empty()) {
        std::erase_if(records, [&](const LimitRecord& r) { return r.uuid == info.uuid; });
      }
      return true;
    });
  } catch (const std::exception& e) {
    warn_store_failure(info, e);
  }
  // The device refused: the record stays, so `chase limits restore` can retry once we are gone.
  if (device_failure) std::rethrow_exception(device_failure);
  return followed;
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
  if (auto failure = try_restore(gpu, found->second)) log_failure(failure);
  forget(gpu);
}

}  // namespace

// ---- PowerLimitGuard ----------------------------------------------------------------------------

class PowerLimitGuard::Impl final : public GuardedLimits {
 public:
  using GuardedLimits::GuardedLimits;
};

PowerLimitGuard::PowerLimitGuard(std::shared_ptr<GpuBackend> backend,
                                 PowerLimitGuardOptions options) {
  if (!backend) {
    throw Error(ErrorCode::kInvalidArgument,
                "PowerLimitGuard needs a GPU backend, got a null pointer");
  }
  impl_ = std::make_shared<Impl>(std::move(backend), options);
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
