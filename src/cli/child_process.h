// Internal (CLI): run a command without a shell, forward termination signals to it, and report how
// it ended — the way time(1) and perf stat do.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace chase::cli {

// Blocks SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGCHLD in the calling thread. Call it before any
// thread is created, so every thread inherits the mask and run_command() receives those signals
// synchronously (sigtimedwait) instead of through handlers.
void block_forwarded_signals();

struct CommandOutcome {
  int exit_code = 0;  // the command's exit status, or 128 + signal when a signal killed it
  int signal = 0;     // the signal that killed it, 0 if it exited
};

// Starts argv[0] (searched in PATH) with argv, waits for it, and returns how it ended. Signals sent
// to this process with kill() are forwarded to the command (terminal-generated ones already reach
// it through the process group). `on_tick` runs every `tick` while the command runs (no ticks when
// `tick` is zero). Throws chase::Error (kNotFound / kPermissionDenied) when the command cannot
// start. Precondition: block_forwarded_signals() was called.
CommandOutcome run_command(const std::vector<std::string>& argv, std::chrono::nanoseconds tick,
                           const std::function<void()>& on_tick);

}  // namespace chase::cli
