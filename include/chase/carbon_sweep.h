// chase/carbon_sweep.h — an experiment over simulate_carbon(): every policy over η and slack values
// and many start times, summarised against the default limit, each policy's gap to the oracle, and
// the planner given Chase's own slowdown. Plan, then run; the result holds every run and the
// aggregates, and front ends only render it.
//
// Contract: plan_carbon_sweep(options) spreads `starts` start times evenly from `from` to `to`
// (each floored to a whole hour, so that it meets an hourly trace at a clean point) and lists the
// first round of configurations, in this order:
//   [0]  the default policy: the baseline every change is measured against;
//   zeus(η) for each η of `etas`, then chase(η) for each η (labels "zeus eta=0.5", ...);
//   for each slack of `slacks`: the planner and the oracle with that slowdown budget
//        ("planner slack=0.1", "oracle slack=0.1"), each planner measured against its oracle.
// Every configuration takes `base` (period, epochs, forecast model, fit history) with its own
// policy and start, and `parameters` for what the sweep does not vary (CI_max; the planner's and
// oracle's η; the default's limit).
// run_carbon_sweep(plan, epochs, carbon) runs every (configuration, start) pair, then adds, for
// each zeus and chase configuration P, the planner and the oracle given P's mean slowdown as their
// slack ("planner @zeus eta=0.5", "oracle @..."), and for each chase configuration also given the
// slowdown P incurred from each start ("planner =chase eta=0.5", "oracle =..."), and runs those.
// Deadline mode (parameters.pause): the planners and oracles of `slacks` pause; those matched to a
// zeus or chase slowdown never do (limits only).
// Aggregates, per configuration and in % of the default's run from the same start, averaged over
// the starts: the carbon change and the time change; and the gap to its oracle, the mean of
// (carbon − oracle's carbon) / default carbon, in percentage points. Oracles: a planner or oracle
// of a slack its slack's oracle; the "@P" pair the oracle @P; zeus P the oracle @P; chase P and
// its "=" pair the oracle =P (the oracle that took exactly as long from every start). The default
// has none.
// Configurations refer to each other by index into CarbonSweepResult::configs, never by label;
// policies are compared by PolicyKind.
// Errors: plan_carbon_sweep throws kInvalidArgument (naming the values) for no starts or `to`
// before `from`; run_carbon_sweep rethrows the first simulation's error (simulate_carbon's
// contract, chase/carbon_simulation.h) after every thread has stopped.
//
// Thread safety: plans and results are values. run_carbon_sweep() is reentrant: it runs the
// simulations on `threads` threads of its own (each simulation owns its state) and only reads
// `epochs` and `carbon`, which must not change while it runs.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "chase/carbon.h"
#include "chase/carbon_simulation.h"
#include "chase/limit_policy.h"
#include "chase/limit_profile.h"
#include "chase/time.h"

namespace chase {

struct CarbonSweepOptions {
  CarbonSimulationOptions base;  // period, epochs, forecast model; policy and start are the sweep's
  PolicyParameters parameters;   // what the sweep does not vary
  std::vector<double> etas{0.5, 0.24};
  std::vector<double> slacks{0.02, 0.05, 0.1, 0.2};
  std::size_t starts = 12;
  UtcTime from{};
  UtcTime to{};
  int threads = 1;  // simulations run in parallel (at least one)
};

// How a derived planner or oracle configuration took its slack from another configuration.
enum class SlowdownMatch {
  kNone,      // its own slack (a first-round configuration)
  kMean,      // "@": the other's mean slowdown over the starts
  kPerStart,  // "=": from each start, the slowdown the other incurred from it
};

// One policy with its parameters, run from every start.
struct CarbonSweepConfig {
  std::string label;  // for reports: "default", "chase eta=0.5", "planner @chase eta=0.5", ...
  PolicyKind kind = PolicyKind::kDefault;
  PolicyParameters parameters;      // slowdown_budget: the mean slack of a kPerStart configuration
  CarbonSimulationOptions options;  // the policy of `parameters`; start: the first start
  std::vector<double> slack_per_start;  // kPerStart: the slack of each start's run
  SlowdownMatch match = SlowdownMatch::kNone;
  std::optional<std::size_t> slowdown_of;    // kMean, kPerStart: whose slowdown it was given
  std::vector<CarbonSimulationResult> runs;  // one per start (empty in a plan)
  double carbon_change_percent = 0;          // mean over starts, % vs the default
  double time_change_percent = 0;
  std::optional<std::size_t> oracle;  // the configuration its gap is measured against
  double gap_to_oracle_pp = 0;        // meaningful when `oracle` is set
};

// A chase configuration against the planner given its slowdown.
struct ChaseVsPlanner {
  std::size_t chase = 0;
  std::size_t planner = 0;
  SlowdownMatch match = SlowdownMatch::kMean;
  // The planner's carbon change minus chase's, in percentage points (negative: the planner cuts
  // more).
  double planner_excess_pp = 0;
  // Whether the planner cuts at least as much carbon; a hundredth of a percentage point is a tie
  // (the two then run the same limits, up to rounding).
  bool planner_cuts_at_least_as_much = false;
};

struct CarbonSweepPlan {
  CarbonSweepOptions options;
  std::vector<UtcTime> starts;
  std::vector<CarbonSweepConfig> configs;  // the first round; [0] the default
};

struct CarbonSweepResult {
  CarbonSweepOptions options;
  std::vector<UtcTime> starts;
  std::vector<CarbonSweepConfig> configs;   // the plan's, then the derived ones; [0] the default
  std::vector<ChaseVsPlanner> comparisons;  // per chase configuration: "@" then "="

  const CarbonSweepConfig& baseline() const { return configs.front(); }
};

CarbonSweepPlan plan_carbon_sweep(const CarbonSweepOptions& options);

CarbonSweepResult run_carbon_sweep(const CarbonSweepPlan& plan, const LimitProfile& epochs,
                                   const CarbonSeries& carbon);

}  // namespace chase
