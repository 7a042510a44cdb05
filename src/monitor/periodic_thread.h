// Internal: a background thread that calls a function every `period` while it is active, and sleeps
// on a condition variable (no wake-ups at all) while inactive. Used by the monitors' samplers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace chase::detail {

class PeriodicThread {
 public:
  PeriodicThread(std::chrono::nanoseconds period, std::function<void()> tick, bool active)
      : period_(period), tick_(std::move(tick)), active_(active), thread_([this] { run(); }) {}

  ~PeriodicThread() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  void set_active(bool active) {
    {
      std::lock_guard lock(mutex_);
      if (active_ == active) return;
      active_ = active;
    }
    wake_.notify_all();
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    // The first tick comes one period after activation: whoever activates the thread has just
    // sampled, so an immediate tick would add nothing.
    auto next = std::chrono::steady_clock::now() + period_;
    while (!stopping_) {
      if (!active_) {
        wake_.wait(lock, [this] { return stopping_ || active_; });
        next = std::chrono::steady_clock::now() + period_;
        continue;
      }
      wake_.wait_until(lock, next, [this] { return stopping_ || !active_; });
      if (stopping_ || !active_) continue;
      lock.unlock();
      tick_();
      lock.lock();
      // Fixed-rate schedule; after a stall (e.g. a slow device), restart from now instead of
      // firing a burst of catch-up ticks.
      next += period_;
      const auto now = std::chrono::steady_clock::now();
      if (next < now) next = now;
    }
  }

  const std::chrono::nanoseconds period_;
  const std::function<void()> tick_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool active_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts after everything it uses is initialised
};

}  // namespace chase::detail
