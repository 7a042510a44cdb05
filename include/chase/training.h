// chase/training.h — carbon-aware GPU power limits inside a training loop.
//
// Contract: a TrainingController is called from the training loop — on_train_begin() once,
// on_step_begin()/on_step_end() around every step, on_epoch_begin()/on_epoch_end() around every
// epoch, on_train_end() once. It is three parts, each with its own header:
//   a PowerLimitOptimizer (`profiling`) that profiles every power limit just in time during the
//     first steps (not for the default policy, which needs no profile);
//   a LimitPolicy (`policy`, chase/limit_policy.h: default, static, chase or planner; the oracle
//     is refused — only a simulator knows the future) asked by a PeriodDriver
//     (chase/period_driver.h) at every period boundary, and at once when profiling ends;
//   a LimitActuator (chase/limit_actuator.h) through which every limit is set, shared with the
//     optimizer, owning the PowerLimitGuard (limits restored on destruction, exit and termination
//     signals) and the ranks' agreement.
// One EnergyMonitor measures both the profiling windows and the periods.
// Error policy: a limit change that fails after profiling never stops training — the job goes on at
// the limit in force, the failure is in the period's report (limit_errors) and the log, and the
// next period tries again. During profiling a limit the GPUs refuse is skipped and reported
// (RunReport::skipped_limits); a GPU that cannot be measured abandons profiling (maximum limit).
// Periods are aligned to UTC multiples of `period` (as CarbonSignal::forecast aligns them). With
// several ranks (profiling.coordinator of size > 1) every step agrees on rank 0's clock (one
// agree() per step, on_step_begin()), so all ranks cross a period boundary, decide and switch at
// the same step — each rank's own clock would put a boundary on different steps and leave one rank
// waiting in a collective the others have not reached (docs/MULTINODE.md). A rank lost makes that
// agreement throw kUnavailable from on_step_begin() on the others: a data-parallel job cannot go on
// without it, and the controller's guard restores the limits as it is destroyed. When
// the signal has no data the controller keeps the last limit it chose and says so in the report.
// The run report holds, per period: its time, steps, energy (the job's GPUs), intensity, emissions,
// the limits set and why (the candidates' costs for chase, the plan for the planner).
// Deadline mode (the planner's PauseOptions, docs/OPTIMIZATION.md "Deadline mode"): when the
// plan pauses, on_step_begin() acts on it before returning:
//   idle     it holds the loop — the GPUs at their minimum limit — until the planned resume time,
//            re-planning at every period boundary while it waits (`wait_until` waits; by default
//            a ManualClock is advanced and any other clock slept on), then sets the planned limit
//            and returns; the periods' reports show the time paused (PeriodReport::paused_s);
//   release  it returns at once with release_request() set: the loop should checkpoint and exit.
//            The request (and `on_release`, when given, is called with it) holds the planned resume
//            time, the job's original start and the steps done; `resume_file`, when given, gets it
//            as JSON (written atomically; read_resume_file() reads it) so that a scheduler can
//            start the job again at resume_at. The next run passes it as `resumed`, so that its
//            deadline and work count from the original job. For example:
//              controller.on_step_begin();
//              if (const auto release = controller.release_request()) {
//                save_checkpoint(model, release->steps_done);
//                controller.on_train_end();
//                return;  // restart at release->resume_at with options.resumed = *release
//              }
// A termination signal during a pause acts as during training: the limits are restored.
// Reporting: `on_period_end`, when given, is called on the loop's thread after every period closes
// (on_train_end() closes the last one) with the run's report so far, the period just ended last;
// an exception it throws is logged and dropped, never stopping training. With `pushgateway` set,
// the run's metrics (training_run_metrics(), chase/pushgateway.h) are pushed after every period
// and once more, as ended, at on_train_end(): the pushes are made by a background thread, so a
// slow or absent Pushgateway never holds the loop (only the controller's destruction waits, at
// most the push timeout, for the final push).
// Bad options throw kInvalidArgument at construction.
//
// Thread safety: not thread-safe; call it from the training loop's thread. report() may be called
// at any time from that thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "chase/carbon_signal.h"
#include "chase/gpu.h"
#include "chase/limit_policy.h"
#include "chase/power_limit_optimizer.h"
#include "chase/pushgateway.h"
#include "chase/selector.h"
#include "chase/time.h"

namespace chase {

// Deadline mode, release: the loop should checkpoint and exit; the job runs again at resume_at.
struct ReleaseRequest {
  UtcTime resume_at{};  // the plan's next running period
  UtcTime job_start{};  // the original job's start: its deadline counts from it
  std::size_t steps_done = 0;
};

// Reads a resume file a released run wrote. Throws kIo (missing, unreadable) or kParse (naming
// the field).
ReleaseRequest read_resume_file(const std::filesystem::path& path);

struct RunReport;

struct TrainingOptions {
  // Its clock is the controller's clock; a static policy's selector, when given, is its selector.
  PowerLimitOptimizerOptions profiling;
  PolicyOptions policy = ChaseOptions{};
  std::chrono::seconds period{std::chrono::minutes(30)};
  std::size_t total_steps = 0;           // planner: the job's steps (epochs × steps per epoch)
  std::shared_ptr<CarbonSignal> carbon;  // required by chase and planner; optional otherwise
  std::shared_ptr<Clock> clock;          // null: the system clock
  // Deadline mode (the planner's PauseOptions):
  std::function<void(UtcTime)> wait_until =
      {};  // idle: blocks until the time given; null: see above
  std::function<void(const ReleaseRequest&)> on_release = {};  // release: called once
  std::filesystem::path resume_file = {};                      // release: written when not empty
  std::optional<ReleaseRequest> resumed = {};                  // this run continues a released job
  // Reporting (see above):
  std::function<void(const RunReport&)> on_period_end = {};
  std::optional<PushgatewayOptions> pushgateway = {};
};

struct PeriodReport {
  UtcTime start{};
  UtcTime end{};
  double time_s = 0;
  std::size_t steps = 0;
  double energy_j = 0;
  double carbon_intensity = 0;            // g/kWh the signal gave for the period (NaN without data)
  double carbon_g = 0;                    // energy_j at carbon_intensity (NaN without data)
  std::vector<double> limits_w;           // limits set during the period, in order
  std::string reason;                     // why those limits
  std::vector<Candidate> candidates;      // the cost table behind a chase choice
  std::vector<std::string> limit_errors;  // limit changes the GPUs refused (the job went on)
  double paused_s = 0;                    // deadline mode: time the loop was held (idle)
};

struct RunReport {
  std::string policy;  // to_string(PolicyKind)
  std::vector<PeriodReport> periods;
  double time_s = 0;
  std::size_t steps = 0;
  double energy_j = 0;
  double carbon_g = 0;    // over the periods with an intensity
  bool profiled = false;  // false when a saved profile was reused (or none was needed)
  double paused_s = 0;    // deadline mode: time the loop was held (idle pauses)
  std::optional<ReleaseRequest> release = {};  // deadline mode: the run was released
  std::vector<SkippedLimit> skipped_limits;    // candidates profiling left out
};

class TrainingController {
 public:
  TrainingController(std::shared_ptr<GpuBackend> gpus, TrainingOptions options);
  ~TrainingController();
  TrainingController(const TrainingController&) = delete;
  TrainingController& operator=(const TrainingController&) = delete;

  void on_train_begin();
  void on_epoch_begin();
  void on_epoch_end();
  void on_step_begin();
  void on_step_end();
  void on_train_end();

  // Deadline mode, release: set once the plan released the GPUs (checkpoint and exit).
  std::optional<ReleaseRequest> release_request() const;

  const PowerLimitOptimizer& optimizer() const noexcept;
  RunReport report() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The report as JSON (keys: policy, time_s, steps, energy_j, carbon_g, profiled, paused_s, release
// (when released), periods[...]) and
// as a table for people.
std::string run_report_json(const RunReport& report);
void print_run_report(std::ostream& out, const RunReport& report);

}  // namespace chase
