// power_limit_guard_helper: a program the PowerLimitGuard process tests start, signal and observe.
//
//   power_limit_guard_helper <mode> <gpu>=<watts> ...
//
// Opens the real NVML backend (the tests point it at the fake NVML library), creates a guard, sets
// the given limits, prints "READY" (flushed), then, by mode:
//   wait    sleeps up to 30 s waiting for a signal (the guard's watcher restores and re-raises),
//   exit 0; ignore  as wait, but SIGHUP is ignored before the guard is created (it must stay
//   ignored); chain   installs its own SIGTERM handler before the guard; after the signal prints
//   "CHAINED" and
//           returns from main, so the guard's destructor restores; exit 0;
//   exit    waits for stdin to close, then calls std::exit(0) with the guard still alive (on the
//           heap, never deleted): the atexit hook restores;
//   throw   waits for stdin to close, then throws through the guard's scope; main catches: exit 4.
//   fork-exit    fork()s; the child calls std::exit(0) at once; the parent reports "CHILD EXITED"
//                (or "CHILD status S"), then waits for stdin to close and exits 0 (guard alive).
//   fork-signal  as fork-exit, but the child raises SIGTERM on itself; the parent reports "CHILD
//                KILLED BY S", or "CHILD HUNG" (and kills it) when it is still there after 10 s.
//   slow-restore sets limits through a backend whose restores print "RESTORING" and then take 30 s;
//                waits for a signal (the test sends a second one while it restores).
//   gone    sets the limits, waits for stdin to close, destroys the guard (restoring them),
//           prints "GONE" and waits for a signal: the handler left in place must pass it on.
// Exit status 2: bad usage; 3: a chase::Error (printed on stderr).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "chase/error.h"
#include "chase/nvml.h"
#include "chase/power_limit_guard.h"

namespace {

constexpr int kUsage = 2;
constexpr int kChaseError = 3;
constexpr int kThrown = 4;
constexpr auto kMaxWait = std::chrono::seconds(30);

using Limits = std::vector<std::pair<std::size_t, double>>;

struct ThrownOnPurpose : std::runtime_error {
  ThrownOnPurpose() : std::runtime_error("thrown on purpose") {}
};

// Reachable from a global, so LeakSanitizer does not report the guard "exit" mode never deletes.
chase::PowerLimitGuard* leaked_guard = nullptr;

volatile sig_atomic_t sigterm_seen = 0;

void note_sigterm(int /*signal*/) { sigterm_seen = 1; }

Limits parse_limits(int argc, char** argv) {
  Limits limits;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto equals = arg.find('=');
    if (equals == std::string::npos) throw std::invalid_argument("expected <gpu>=<watts>: " + arg);
    limits.emplace_back(std::stoul(arg.substr(0, equals)), std::stod(arg.substr(equals + 1)));
  }
  return limits;
}

void set_limits(chase::PowerLimitGuard& guard, const Limits& limits) {
  for (const auto& [gpu, watts] : limits) guard.set_power_limit_w(gpu, watts);
  std::cout << "READY" << std::endl;
}

void wait_for_stdin_to_close() {
  char buffer[64];
  while (::read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
  }
}

void sleep_until(const volatile sig_atomic_t& flag) {
  const auto deadline = std::chrono::steady_clock::now() + kMaxWait;
  while (flag == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int run_wait(const std::shared_ptr<chase::GpuBackend>& backend, const Limits& limits) {
  chase::PowerLimitGuard guard(backend);
  set_limits(guard, limits);
  std::this_thread::sleep_for(kMaxWait);  // the signal should end the process long before
  return 0;
}

int run_interleave(const std::shared_ptr<chase::GpuBackend>& backend, const Limits& limits) {
  if (limits.empty()) throw std::invalid_argument("interleave needs at least one <gpu>=<watts>");
  chase::PowerLimitGuard first(backend);
  chase::PowerLimitGuard second(backend);
  first.set_power_limit_w(limits[0].first, limits[0].second);
  for (std::size_t i = 1; i < limits.size(); ++i) {
    const auto [gpu, watts] = limits[i];
    second.set_power_limit_w(gpu, (watts + backend->gpus().at(gpu).max_power_limit_w) / 2);
  }
  set_limits(first, Limits(limits.begin() + 1, limits.end()));
  std::this_thread::sleep_for(kMaxWait);
  return 0;
}

int run_chain(const std::shared_ptr<chase::GpuBackend>& backend, const Limits& limits) {
  struct sigaction action {};
  action.sa_handler = note_sigterm;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, nullptr);
  chase::PowerLimitGuard guard(backend);
  set_limits(guard, limits);
  sleep_until(sigterm_seen);
  if (sigterm_seen != 0) std::cout << "CHAINED" << std::endl;
  return 0;
}

int run_exit(const std::shared_ptr<chase::GpuBackend>& backend, const Limits& limits) {
  leaked_guard = new chase::PowerLimitGuard(backend);
  set_limits(*leaked_guard, limits);
  wait_for_stdin_to_close();
  std::exit(0);
}

int run_throw(const std::shared_ptr<chase::GpuBackend>& backend, const Limits& limits) {
  chase::PowerLimitGuard guard(backend);
  set_limits(guard, limits);
  wait_for_stdin_to_close();
  throw ThrownOnPurpose();
}

// Child processes of the fork modes: how the child ended, as the parent saw it.
std::string child_outcome(pid_t child) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (::waitpid(child, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      return "CHILD HUNG";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFSIGNALED(status)) return "CHILD KILLED BY " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "CHILD EXITED";
  return "CHILD status " + std::to_string(status);
}

int run_fork(const std::shared_ptr<chase::GpuBackend>& backend, const Limits& limits,
             bool by_signal) {
  chase::PowerLimitGuard guard(backend);
  set_limits(guard, limits);
  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error("fork failed");
  if (child == 0) {
    if (by_signal) ::raise(SIGTERM);
    std::exit(0);
  }
  std::cout << child_outcome(child) << std::endl;
  wait_for_stdin_to_close();
  return 0;
}

// A backend whose restores (every change after READY) announce themselves, then take 30 s.
class SlowRestoreBackend final : public chase::GpuBackend {
 public:
  explicit SlowRestoreBackend(std::shared_ptr<chase::GpuBackend> inner)
      : inner_(std::move(inner)) {}
  std::string_view backend_name() const noexcept override { return inner_->backend_name(); }
  const std::vector<chase::GpuInfo>& gpus() const noexcept override { return inner_->gpus(); }
  double energy_j(std::size_t gpu) override { return inner_->energy_j(gpu); }
  double power_w(std::size_t gpu) override { return inner_->power_w(gpu); }
  double power_limit_w(std::size_t gpu) override { return inner_->power_limit_w(gpu); }
  void set_power_limit_w(std::size_t gpu, double watts) override {
    if (ready) {
      const char text[] = "RESTORING\n";
      static_cast<void>(::write(STDOUT_FILENO, text, sizeof text - 1));
      std::this_thread::sleep_for(kMaxWait);
    }
    inner_->set_power_limit_w(gpu, watts);
  }
  std::atomic<bool> ready{false};

 private:
  std::shared_ptr<chase::GpuBackend> inner_;
};

int run_slow_restore(const std::shared_ptr<chase::GpuBackend>& backend, const Limits& limits) {
  auto slow = std::make_shared<SlowRestoreBackend>(backend);
  chase::PowerLimitGuard guard(slow);
  for (const auto& [gpu, watts] : limits) guard.set_power_limit_w(gpu, watts);
  slow->ready = true;
  std::cout << "READY" << std::endl;
  std::this_thread::sleep_for(kMaxWait);
  return 0;
}

int run_gone(const std::shared_ptr<chase::GpuBackend>& backend, const Limits& limits) {
  {
    chase::PowerLimitGuard guard(backend);
    set_limits(guard, limits);
    wait_for_stdin_to_close();
  }
  std::cout << "GONE" << std::endl;
  std::this_thread::sleep_for(kMaxWait);
  return 0;
}

int run(const std::string& mode, const Limits& limits) {
  if (mode == "ignore") ::signal(SIGHUP, SIG_IGN);
  const std::shared_ptr<chase::GpuBackend> backend = chase::open_nvml();
  if (mode == "wait" || mode == "ignore") return run_wait(backend, limits);
  if (mode == "interleave") return run_interleave(backend, limits);
  if (mode == "chain") return run_chain(backend, limits);
  if (mode == "exit") return run_exit(backend, limits);
  if (mode == "throw") return run_throw(backend, limits);
  if (mode == "fork-exit") return run_fork(backend, limits, false);
  if (mode == "fork-signal") return run_fork(backend, limits, true);
  if (mode == "slow-restore") return run_slow_restore(backend, limits);
  if (mode == "gone") return run_gone(backend, limits);
  throw std::invalid_argument("unknown mode '" + mode + "'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) throw std::invalid_argument("no mode");
    return run(argv[1], parse_limits(argc, argv));
  } catch (const ThrownOnPurpose&) {
    return kThrown;
  } catch (const chase::Error& e) {
    std::cerr << "power_limit_guard_helper: " << e.what() << '\n';
    return kChaseError;
  } catch (const std::exception& e) {
    std::cerr << "usage: power_limit_guard_helper wait|ignore|interleave|chain|exit|throw|"
                 "fork-exit|fork-signal|slow-restore|gone <gpu>=<watts> ... ("
              << e.what() << ")\n";
    return kUsage;
  }
}
