#include "cli/child_process.h"

#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "chase/error.h"

extern char** environ;

namespace chase::cli {
namespace {

constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

sigset_t waited_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kForwardedSignals) sigaddset(&set, sig);
  sigaddset(&set, SIGCHLD);
  return set;
}

pid_t spawn(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  // The child starts with an empty signal mask and default dispositions, whatever ours are.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigset_t defaults = waited_signals();
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], nullptr, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (rc == ENOENT) {
    throw Error(ErrorCode::kNotFound,
                fmt::format("cannot run '{}': command not found (checked PATH)", argv[0]));
  }
  if (rc != 0) {
    throw Error(rc == EACCES ? ErrorCode::kPermissionDenied : ErrorCode::kInternal,
                fmt::format("cannot run '{}': {}", argv[0], std::strerror(rc)));
  }
  return pid;
}

// True once the child has ended; fills `outcome`.
bool reap(pid_t pid, CommandOutcome& outcome) {
  int status = 0;
  const pid_t r = waitpid(pid, &status, WNOHANG);
  if (r != pid) return false;
  if (WIFEXITED(status)) {
    outcome.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    outcome.signal = WTERMSIG(status);
    outcome.exit_code = 128 + outcome.signal;
  }
  return WIFEXITED(status) || WIFSIGNALED(status);
}

}  // namespace

void block_forwarded_signals() {
  const sigset_t set = waited_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

CommandOutcome run_command(const std::vector<std::string>& argv, std::chrono::nanoseconds tick,
                           const std::function<void()>& on_tick) {
  if (argv.empty()) throw Error(ErrorCode::kInvalidArgument, "no command given to run");
  const pid_t pid = spawn(argv);
  const sigset_t set = waited_signals();
  CommandOutcome outcome;
  auto next_tick = std::chrono::steady_clock::now() + tick;
  for (;;) {
    if (reap(pid, outcome)) return outcome;
    // Wait for a signal, at most until the next tick (or a second, to re-check the child).
    auto wait = tick.count() > 0 ? next_tick - std::chrono::steady_clock::now()
                                 : std::chrono::nanoseconds(std::chrono::seconds(1));
    if (wait < std::chrono::nanoseconds(0)) wait = std::chrono::nanoseconds(0);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
    timespec timeout{static_cast<time_t>(ns / 1'000'000'000),
                     static_cast<long>(ns % 1'000'000'000)};
    siginfo_t info{};
    const int sig = sigtimedwait(&set, &info, &timeout);
    if (sig > 0 && sig != SIGCHLD && info.si_code <= 0) {
      // Sent by a process (kill), not by the terminal: the command has not seen it yet.
      kill(pid, sig);
    }
    if (tick.count() > 0 && std::chrono::steady_clock::now() >= next_tick) {
      on_tick();
      next_tick += tick;
    }
  }
}

}  // namespace chase::cli
