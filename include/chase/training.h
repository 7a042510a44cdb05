// chase/training.h — carbon-aware GPU power limits inside a training loop.
//
// Contract: a TrainingController is called from the training loop — on_train_begin() once,
// on_step_begin()/on_step_end() around every step, on_epoch_begin()/on_epoch_end() around every
// epoch, on_train_end() once — and first profiles every power limit just in time (a
// PowerLimitOptimizer with `profiling`), then keeps choosing the limit by `policy`:
//   "static"  the profiling selector's choice stays for the whole run (zeus, energy, time, ...);
//   "chase"   at every period boundary, chase(η, CI_max) is re-solved with the carbon signal's
//             intensity for the coming period (ALGORITHMS.md §3);
//   "planner" at every period boundary, plan_power_limits() is solved over the periods left until
//             the deadline — the start plus (1 + slowdown_budget) × the time the whole job takes at
//             the highest limit — for the steps still to do, with the signal's forecast (periods
//             past the forecast get its mean), and the first period's plan is applied, switching
//             limit inside the period when the plan splits it. Work done so far is what counts, so
//             the budget holds over the whole run. (The decision is LimitPolicy's, shared with the
//             simulator; chase/limit_policy.h has the planner's refinements.)
// Periods are aligned to UTC multiples of `period` (as CarbonSignal::forecast aligns them). When
// the signal has no data the controller keeps the last limit it chose and says so in the report.
// The run report holds, per period: its time, steps, energy (the job's GPUs), intensity, emissions,
// the limits set and why (the candidates' costs for "chase", the plan for "planner").
// All limit changes go through the optimizer's PowerLimitGuard (restored on destruction, exit and
// termination signals). Bad options throw kInvalidArgument at construction.
//
// Thread safety: not thread-safe; call it from the training loop's thread. report() may be called
// at any time from that thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "chase/carbon_signal.h"
#include "chase/gpu.h"
#include "chase/power_limit_optimizer.h"
#include "chase/selector.h"
#include "chase/time.h"

namespace chase {

struct TrainingOptions {
  PowerLimitOptimizerOptions profiling;  // its clock is the controller's clock
  std::string policy = "chase";          // "static", "chase" or "planner"
  double eta = 0.5;                      // chase: weight of carbon against time
  double max_carbon_intensity = 0;       // chase: CI_max; 0: the highest value the signal
                                         // holds for the day before training begins (its
                                         // forecast's highest when it holds no past)
  std::chrono::seconds period{std::chrono::minutes(30)};
  double slowdown_budget = 0.1;  // planner: finish within (1 + s) × the time at the highest limit
  std::size_t total_steps = 0;   // planner: the job's steps (epochs × steps per epoch)
  std::shared_ptr<CarbonSignal> carbon;  // required by "chase" and "planner"; optional otherwise
  std::shared_ptr<Clock> clock;          // null: the system clock
};

struct PeriodReport {
  UtcTime start{};
  UtcTime end{};
  double time_s = 0;
  std::size_t steps = 0;
  double energy_j = 0;
  double carbon_intensity = 0;        // g/kWh the signal gave for the period (NaN without data)
  double carbon_g = 0;                // energy_j at carbon_intensity (NaN without data)
  std::vector<double> limits_w;       // limits set during the period, in order
  std::string reason;                 // why those limits
  std::vector<Candidate> candidates;  // the cost table behind a "chase" choice
};

struct RunReport {
  std::string policy;
  std::vector<PeriodReport> periods;
  double time_s = 0;
  std::size_t steps = 0;
  double energy_j = 0;
  double carbon_g = 0;    // over the periods with an intensity
  bool profiled = false;  // false when a saved profile was reused
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

  const PowerLimitOptimizer& optimizer() const noexcept;
  RunReport report() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The report as JSON (keys: policy, time_s, steps, energy_j, carbon_g, profiled, periods[...]) and
// as a table for people.
std::string run_report_json(const RunReport& report);
void print_run_report(std::ostream& out, const RunReport& report);

}  // namespace chase
