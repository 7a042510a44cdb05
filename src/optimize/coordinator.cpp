// Coordinators (contract: chase/coordinator.h).
#include "chase/coordinator.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "chase/error.h"

namespace chase {
namespace {

class SingleProcessCoordinator final : public Coordinator {
 public:
  std::size_t rank() const noexcept override { return 0; }
  std::size_t size() const noexcept override { return 1; }
  Window combine(const Window& local) override { return local; }
  double agree(double value) override { return value; }
};

// Where the in-process ranks meet: one collective at a time, like a reusable barrier whose last
// arrival computes the result for everyone.
class Meeting {
 public:
  Meeting(std::size_t ranks, std::chrono::milliseconds timeout)
      : ranks_(ranks), timeout_(timeout), windows_(ranks), values_(ranks) {}

  Coordinator::Window combine(std::size_t rank, const Coordinator::Window& local) {
    std::unique_lock lock(mutex_);
    windows_[rank] = local;
    meet(lock, "combine", [this] {
      Coordinator::Window job;
      for (const auto& w : windows_) {
        job.time_s = std::max(job.time_s, w.time_s);
        job.energy_j += w.energy_j;
        job.failed = job.failed || w.failed;
      }
      window_result_ = job;
    });
    return window_result_;
  }

  double agree(std::size_t rank, double value) {
    std::unique_lock lock(mutex_);
    values_[rank] = value;
    meet(lock, "agree", [this] { value_result_ = values_[0]; });
    return value_result_;
  }

 private:
  // Waits until every rank has arrived; the last one runs `compute` and wakes the others.
  template <typename Compute>
  void meet(std::unique_lock<std::mutex>& lock, const char* what, Compute compute) {
    if (broken_) throw broken_error(what);
    const auto generation = generation_;
    if (++arrived_ == ranks_) {
      compute();
      arrived_ = 0;
      ++generation_;
      all_arrived_.notify_all();
      return;
    }
    if (!all_arrived_.wait_for(lock, timeout_,
                               [&] { return generation_ != generation || broken_; }) ||
        broken_) {
      broken_ = true;
      all_arrived_.notify_all();
      throw broken_error(what);
    }
  }

  Error broken_error(const char* what) const {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("{} of {} ranks did not complete within {} ms: a rank stopped "
                             "profiling or died",
                             what, ranks_, timeout_.count()));
  }

  const std::size_t ranks_;
  const std::chrono::milliseconds timeout_;
  std::mutex mutex_;
  std::condition_variable all_arrived_;
  std::size_t arrived_ = 0;
  std::size_t generation_ = 0;
  bool broken_ = false;
  std::vector<Coordinator::Window> windows_;
  std::vector<double> values_;
  Coordinator::Window window_result_;
  double value_result_ = 0;
};

class InProcessCoordinator final : public Coordinator {
 public:
  InProcessCoordinator(std::shared_ptr<Meeting> meeting, std::size_t rank, std::size_t size)
      : meeting_(std::move(meeting)), rank_(rank), size_(size) {}
  std::size_t rank() const noexcept override { return rank_; }
  std::size_t size() const noexcept override { return size_; }
  Window combine(const Window& local) override { return meeting_->combine(rank_, local); }
  double agree(double value) override { return meeting_->agree(rank_, value); }

 private:
  std::shared_ptr<Meeting> meeting_;
  std::size_t rank_;
  std::size_t size_;
};

}  // namespace

std::shared_ptr<Coordinator> make_single_process_coordinator() {
  return std::make_shared<SingleProcessCoordinator>();
}

std::vector<std::shared_ptr<Coordinator>> make_in_process_coordinators(
    std::size_t ranks, std::chrono::milliseconds timeout) {
  if (ranks == 0) throw Error(ErrorCode::kInvalidArgument, "a job has at least one rank");
  auto meeting = std::make_shared<Meeting>(ranks, timeout);
  std::vector<std::shared_ptr<Coordinator>> coordinators;
  for (std::size_t rank = 0; rank < ranks; ++rank) {
    coordinators.push_back(std::make_shared<InProcessCoordinator>(meeting, rank, ranks));
  }
  return coordinators;
}

}  // namespace chase
