// chase/limit_policy.h — the power-limit policies: one vocabulary for live training
// (TrainingController), simulation (simulate_carbon) and every front end.
//
// Contract: a policy is named by a PolicyKind and configured by one options struct per kind,
// held in the PolicyOptions variant:
//   default  FixedLimitOptions   one limit throughout (the GPUs' highest unless `limit_w` is set);
//                                no profiling;
//   static   StaticOptions       the selector's choice after profiling (zeus(η), energy, time,
//                                slowdown — docs/ALGORITHMS.md §3) stays for the whole run;
//   chase    ChaseOptions        chase(η, CI_max) re-solved every period with the intensity the
//                                carbon signal gives for the coming period (docs/ALGORITHMS.md §3);
//                                without an intensity the limit is kept;
//   planner  PlannerOptions      plan_power_limits() over the periods from now to the deadline —
//                                the job's start plus (1 + slowdown_budget) × the time the whole
//                                job takes at the highest limit — for the work still to do, with
//                                the signal's forecast (periods past the forecast get its mean);
//                                the first period's plan is returned, with a switch of limit
//                                inside the period when the plan splits it. When the work cannot
//                                be done by the deadline: the fastest limit. Two refinements: only
//                                limits at least as fast as the most energy-efficient one are
//                                planned (slower ones cost more time and more energy), and the
//                                cheapest of the plans ending at any period boundary up to the
//                                deadline is taken (docs/ALGORITHMS.md §3);
//                                Deadline mode (`pause` not kNone, docs/ALGORITHMS.md §3.7): the
//                                planner may also pause a period (plan_with_pauses over every
//                                limit); the deadline is hard — whenever the plan cannot finish
//                                in time every period runs at the fastest limit. A pause is not
//                                planned (the reason says why) when the idle power is above the
//                                power at the minimum limit or the resume time exceeds the slack.
//                                A decision to pause carries the planned resume time.
//   oracle   OracleOptions       the planner, fed the true future: only a simulator, which knows
//                                it, can run it (TrainingController refuses it).
// Names are parsed once, at the edge (parse_policy_kind / parse_policy: CLI, config, bindings), and
// printed by to_string / policy_label; nothing else compares policy names.
//
// A LimitPolicy is made from PolicyOptions by make_limit_policy() and is asked by the PeriodDriver
// (chase/period_driver.h), at the start of every control period and once when profiling ends,
// which limit the job should run at until the next period starts. It reads its own carbon signal:
// enter_period() fetches the intensity for the period that begins (refreshing the signal when
// due) and decide() uses it. Work is counted in the profile's work units (one profiling window, or
// one epoch in simulation); JobProgress says how many the job has and has done. Periods are
// aligned to UTC multiples of `period` (as CarbonSignal::forecast aligns them).
// CI_max is ChaseOptions::max_carbon_intensity when positive; when 0 (not given), begin(now) takes
// the highest intensity the signal's series holds for the day before `now` (docs/ALGORITHMS.md §3),
// or the series' highest value when it holds no past (a provider's forecast), or the published 750
// gCO2eq/kWh when the signal has no data. Bad options throw kInvalidArgument when the policy is
// made (η outside [0, 1], a CI_max that is negative, NaN or infinite, a negative or non-finite
// slowdown budget or fixed limit); signal failures are logged and turn into "limit kept" decisions,
// never exceptions.
//
// Thread safety: PolicyOptions are values. A LimitPolicy is not thread-safe (one caller at a
// time); the CarbonSignal it reads may be shared.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "chase/carbon_signal.h"
#include "chase/limit_profile.h"
#include "chase/planner.h"
#include "chase/selector.h"
#include "chase/time.h"

namespace chase {

enum class PolicyKind { kDefault, kStatic, kChase, kPlanner, kOracle };

struct FixedLimitOptions {
  double limit_w = 0;  // 0: the highest limit
};
struct StaticOptions {
  std::shared_ptr<const PowerLimitSelector> selector;  // null: zeus(η = 0.5)
};
struct ChaseOptions {
  double eta = 0.5;                 // weight of carbon against time, in [0, 1]
  double max_carbon_intensity = 0;  // CI_max; 0: chosen by begin()
};
struct PlannerOptions {
  double slowdown_budget = 0.1;  // finish within (1 + s) × the time at the highest limit
  PauseOptions pause = {};       // deadline mode when pause.mode is not kNone
};
struct OracleOptions {
  double slowdown_budget = 0.1;
  PauseOptions pause = {};
};

using PolicyOptions =
    std::variant<FixedLimitOptions, StaticOptions, ChaseOptions, PlannerOptions, OracleOptions>;

PolicyKind kind_of(const PolicyOptions& options) noexcept;
// "default", "static", "chase", "planner", "oracle".
std::string_view to_string(PolicyKind kind) noexcept;
// The name a report shows: the kind, except a static policy, which is named by its selector
// ("zeus", "energy", "time", "slowdown").
std::string policy_label(const PolicyOptions& options);

// The parameters a front end collects for whichever policy its user names.
struct PolicyParameters {
  double eta = 0.5;                 // zeus and chase
  double slowdown_budget = 0.1;     // planner and oracle
  double max_carbon_intensity = 0;  // chase
  double limit_w = 0;               // default
  PauseOptions pause = {};          // planner and oracle: deadline mode
};
// The one parser of policy names: "default", "static" (= zeus(η)), "zeus", "chase", "planner",
// "oracle". Throws kInvalidArgument naming the unknown name and the known ones.
PolicyKind parse_policy_kind(std::string_view name);
PolicyOptions parse_policy(std::string_view name, const PolicyParameters& parameters = {});
// The options of a `kind` with the parameters it takes (static: zeus(η)).
PolicyOptions make_policy_options(PolicyKind kind, const PolicyParameters& parameters);

struct JobProgress {
  UtcTime start{};             // when the job started: the planner's deadline counts from it
  double work_total = 0;       // work units of the whole job
  double work_done = 0;        // work units done so far
  double units_per_work = 1;   // how many `unit`s one work unit is (steps per window, ...)
  std::string unit = "steps";  // the name of the job's unit, for reasons
  bool paused = false;         // deadline mode: the job is paused now (a run must resume first)
};

struct LimitSwitch {
  UtcTime at{};
  double limit_w = 0;
};

// What a policy decides from.
struct DecisionInput {
  UtcTime now{};
  const LimitProfile* profile = nullptr;  // null: the job was not profiled (or profiling failed)
  double highest_limit_w = 0;             // the job's GPUs' highest limit
  JobProgress progress;
};

// Deadline mode: pause until `resume_at` (the plan's next running period; re-planned every period).
struct PauseDecision {
  PauseMode mode = PauseMode::kIdle;
  UtcTime resume_at{};
};

struct LimitDecision {
  std::optional<double> limit_w;              // the limit to set now; nullopt: keep the current one
  std::optional<LimitSwitch> planned_switch;  // a change of limit later in the same period
  std::optional<PauseDecision> pause = {};    // deadline mode: pause now (limit_w is then unset)
  std::string reason;
  std::vector<Candidate> candidates;  // the cost table behind a "chase" choice
  // Nothing new: the choice already made (a default or static policy's later periods), set again
  // so that a change that failed is retried; simulators do not record it as a decision.
  bool repeat = false;
};

class LimitPolicy {
 public:
  virtual ~LimitPolicy() = default;

  virtual PolicyKind kind() const noexcept = 0;
  // False for policies that decide without a profile (default).
  virtual bool needs_profile() const noexcept { return true; }
  // When the job begins at `now` (chase chooses CI_max here unless it was given).
  virtual void begin(UtcTime now);
  // A period begins at `now`: fetches the signal's intensity for it (nullopt without a signal or
  // data, with a warning) and keeps it for decide(). Returns it, for reports.
  std::optional<double> enter_period(UtcTime now);
  std::optional<double> period_intensity() const noexcept { return period_intensity_; }
  virtual LimitDecision decide(const DecisionInput& input) = 0;

  std::chrono::seconds period() const noexcept { return period_; }
  const std::shared_ptr<CarbonSignal>& carbon() const noexcept { return carbon_; }

 protected:
  LimitPolicy(std::chrono::seconds period, std::shared_ptr<CarbonSignal> carbon);

 private:
  std::chrono::seconds period_;
  std::shared_ptr<CarbonSignal> carbon_;
  std::optional<double> period_intensity_;
};

// Makes the policy `options` describes. `carbon` is required by chase, planner and oracle and
// optional otherwise (then only reported). Throws kInvalidArgument on bad options.
std::unique_ptr<LimitPolicy> make_limit_policy(const PolicyOptions& options,
                                               std::chrono::seconds period,
                                               std::shared_ptr<CarbonSignal> carbon);

// The end of the period holding `time`, periods being UTC multiples of `period`.
UtcTime period_end_after(UtcTime time, std::chrono::seconds period);

}  // namespace chase
