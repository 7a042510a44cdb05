// chase/limit_policy.h — the per-period power-limit decision shared by live training
// (TrainingController) and simulation (simulate_carbon).
//
// Contract: a LimitPolicy is asked, at the start of every control period (and once when profiling
// ends mid-period), which limit the job should run at until the next period starts:
//   "chase"   chase(η, CI_max) re-solved with the intensity the carbon signal gives for the coming
//             period (ALGORITHMS.md §3); without an intensity the limit is kept;
//   "planner" plan_power_limits() over the periods from now to the deadline — the job's start plus
//             (1 + slowdown_budget) × the time the whole job takes at the highest limit — for the
//             work still to do, with the signal's forecast (periods past the forecast get its mean);
//             the first period's plan is returned, with a switch of limit inside the period when
//             the plan splits it. When the work cannot be done by the deadline: the fastest limit.
//             Two refinements: only limits at least as fast as the most energy-efficient one are
//             planned (slower ones cost more time and more energy), and the cheapest of the plans
//             ending at any period boundary up to the deadline is taken (finishing early through
//             clean hours can beat filling the budget through dirty ones).
// Work is counted in the profile's work units (one profiling window, or one epoch in simulation);
// JobProgress says how many the job has and has done, and how to name them in reasons.
// Periods are aligned to UTC multiples of `period` (as CarbonSignal::forecast aligns them).
// CI_max is `max_carbon_intensity` when positive; otherwise begin(now) takes the highest intensity
// the signal's series holds for the day before `now` (ALGORITHMS.md §3), or the series' highest
// value when it holds no past (a provider's forecast), or the published 750 gCO2eq/kWh when the
// signal has no data.
// Bad options throw kInvalidArgument at construction; signal failures are logged and turn into
// "limit kept" decisions, never exceptions.
//
// Thread safety: not thread-safe; one caller at a time. The CarbonSignal may be shared.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chase/carbon_signal.h"
#include "chase/limit_profile.h"
#include "chase/planner.h"
#include "chase/selector.h"
#include "chase/time.h"

namespace chase {

struct LimitPolicyOptions {
  std::string policy = "chase";     // "chase" or "planner"
  double eta = 0.5;                 // chase: weight of carbon against time
  double max_carbon_intensity = 0;  // chase: CI_max; 0: chosen by begin()
  std::chrono::seconds period{std::chrono::minutes(30)};
  double slowdown_budget = 0.1;  // planner: finish within (1 + s) × the time at the highest limit
};

struct JobProgress {
  UtcTime start{};              // when the job started: the planner's deadline counts from it
  double work_total = 0;        // work units of the whole job
  double work_done = 0;         // work units done so far
  double units_per_work = 1;    // how many `unit`s one work unit is (steps per window, ...)
  std::string unit = "steps";   // the name of the job's unit, for reasons
};

struct LimitSwitch {
  UtcTime at{};
  double limit_w = 0;
};

struct LimitDecision {
  std::optional<double> limit_w;              // the limit to set now; nullopt: keep the current one
  std::optional<LimitSwitch> planned_switch;  // a change of limit later in the same period
  std::string reason;
  std::vector<Candidate> candidates;  // the cost table behind a "chase" choice
};

class LimitPolicy {
 public:
  LimitPolicy(LimitPolicyOptions options, std::shared_ptr<CarbonSignal> carbon);

  // When the job begins at `now`: chooses CI_max for "chase" unless it was given.
  void begin(UtcTime now);
  // The intensity the signal gives for the period holding `now` (refreshing it when due);
  // nullopt when it has none.
  std::optional<double> coming_period_intensity() const;
  // The limit for the period starting at `now`, whose intensity is `coming_intensity`.
  LimitDecision decide(const LimitProfile& profile, UtcTime now,
                       std::optional<double> coming_intensity, const JobProgress& progress);

  const LimitPolicyOptions& options() const noexcept { return options_; }

 private:
  LimitDecision decide_chase(const LimitProfile& profile, std::optional<double> intensity);
  LimitDecision decide_plan(const LimitProfile& profile, UtcTime now, const JobProgress& progress);
  std::vector<PlanPeriod> periods_until(UtcTime now, UtcTime deadline) const;

  LimitPolicyOptions options_;
  std::shared_ptr<CarbonSignal> carbon_;
  std::unique_ptr<PowerLimitSelector> chase_selector_;
};

// The intensity `carbon` gives for the period of length `period` holding now (refreshing it when
// due); nullopt, with a warning, when it has none.
std::optional<double> coming_period_intensity(CarbonSignal& carbon, std::chrono::seconds period);

// The end of the period holding `time`, periods being UTC multiples of `period`.
UtcTime period_end_after(UtcTime time, std::chrono::seconds period);

}  // namespace chase
