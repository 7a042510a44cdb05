// chase/run_client.h — a training script's side of `chase run` (docs/RECURRING.md): which batch
// size this run trains with, and one report per epoch whose answer says go on or stop.
//
//   auto run = chase::RunClient::from_environment();            // batch size: run.batch_size()
//   if (run.report(epoch, accuracy).stop) break;                 // after each epoch
//
// Contract: from_environment() reads what chase run put in the environment (CHASE_RUN_SOCKET,
// CHASE_JOB, CHASE_BATCH_SIZE, CHASE_RUN_ID, CHASE_PROFILE, CHASE_POWER_LIMIT_W) and throws
// kUnavailable naming the missing variable when the process was not started by chase run.
// report() sends epoch N's metric (and, optionally, the script's own energy and time so far, for a
// job that accounts for itself, like a replayed trace) and returns chase run's verdict: stop when
// the target is reached, max epochs are done, or another epoch would pass the cost limit. A NaN or
// infinite metric, an epoch reported twice, or a report after the run ended throw the store's error
// (kInvalidArgument / kAlreadyExists); chase run gone throws kUnavailable.
// report_profile() hands chase run the power-limit profile of a profiling run (profiling() is
// true: the first run of this batch size) and returns the limit the job's selector chose, which
// chase run saves so that later runs of this batch size skip profiling.
//
// Thread safety: a RunClient holds no connection; calls may come from any thread, one at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "chase/limit_profile.h"

namespace chase {

struct RunVerdict {
  bool stop = false;
  std::string outcome;  // what the run ends as when it stops: "reached", "stopped_early", "failed"
  std::string reason;
};

// A script's own account of the run so far, all epochs together.
struct RunAccount {
  double energy_j = 0;
  double time_s = 0;
};

class RunClient {
 public:
  static RunClient from_environment();

  const std::string& job() const noexcept { return job_; }
  std::size_t batch_size() const noexcept { return batch_size_; }
  std::int64_t run_id() const noexcept { return run_id_; }
  bool profiling() const noexcept { return profiling_; }
  std::optional<double> power_limit_w() const noexcept { return power_limit_w_; }

  RunVerdict report(std::size_t epoch, double metric,
                    const std::optional<RunAccount>& account = std::nullopt) const;
  double report_profile(const LimitProfile& profile) const;

 private:
  std::string socket_;
  std::string job_;
  std::size_t batch_size_ = 0;
  std::int64_t run_id_ = 0;
  bool profiling_ = false;
  std::optional<double> power_limit_w_;
};

}  // namespace chase
