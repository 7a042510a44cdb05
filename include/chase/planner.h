// chase/planner.h — lookahead power-limit planning under a slowdown budget (docs/ALGORITHMS.md §3).
//
// Contract: given a measured profile (per limit p: throughput X(p) = 1/T(p) work units per second,
// T and E being the time and energy of one unit of work — one profiling window — and power
// P(p) = E/T), a sequence of periods each with a duration and a carbon intensity, and the work the
// periods must complete, plan_power_limits() chooses how long to run each period at which limit so
// as to minimise the emissions Σ_t CI_t·P(p_t)·Δt subject to Σ_t X(p_t)·Δt ≥ work.
//
// Method: only limits on the lower convex hull of (X, P) can be optimal (a point above the hull is
// beaten by running part of the time at each neighbour). The Lagrangian min_p CI_t·P(p) − λ·X(p)
// splits by period; as λ grows each period climbs its hull at breakpoints
// λ = CI_t·ΔP/ΔX. Sweeping the breakpoints in ascending order adds work monotonically; the sweep
// stops when the work is met, the last period to move splitting its time between two neighbouring
// hull limits. The result is the exact optimum of the convex relaxation (the spec's bisection on λ
// finds the same λ), with at most one split period.
// When even the fastest limit everywhere cannot complete the work, every period runs at the fastest
// limit and `feasible` is false. Bad input (no periods, negative durations or intensities,
// non-finite numbers, negative work) throws kInvalidArgument.
//
// Deadline mode (plan_with_pauses, docs/ALGORITHMS.md §3.7): the planner may also pause a period —
// the GPUs idle at their minimum limit (PauseMode::kIdle, drawing idle_power_w each) or are
// released (kRelease: checkpoint and exit, drawing nothing) — and a resume after a pause costs
// resume_s seconds without work and resume_energy_j joules. Each period either runs at one limit
// or pauses; once the work is done the job ends and later periods cost nothing. The problem is no
// longer convex (the resume cost), so it is solved by Lagrangian relaxation: for a multiplier λ
// (grams per work unit) a three-state dynamic programme over the periods (running, paused, done)
// finds the plan minimising carbon − λ·work exactly; the work of that plan grows with λ, and a
// search on λ (warm-started from `lambda_hint`) finds the least λ whose plan does the work. When
// even the fastest limit in every period (less one resume when `paused_now`) cannot do the work,
// every period runs at the fastest limit and `feasible` is false. Bad pause options (a negative or
// non-finite idle power, resume time or energy) throw kInvalidArgument.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "chase/limit_profile.h"

namespace chase {

struct PlanPeriod {
  double duration_s = 0;
  double carbon_intensity = 0;  // gCO2eq/kWh expected over the period
};

struct PlannedPeriod {
  double power_limit_w = 0;   // the limit the period starts at (and mostly runs at)
  double second_limit_w = 0;  // the limit for the rest of a split period (= power_limit_w if none)
  double first_fraction = 1;  // share of the period at power_limit_w, in (0, 1]
  double work = 0;            // work units done in the period
  double energy_j = 0;
  double carbon_g = 0;
  bool paused = false;   // deadline mode: the period is paused (no work)
  bool resumes = false;  // deadline mode: the period starts by resuming from a pause
};

struct Plan {
  std::vector<PlannedPeriod> periods;
  double work = 0;  // planned work over all periods (≥ the work asked for when feasible)
  double energy_j = 0;
  double carbon_g = 0;
  double lambda = 0;  // the multiplier at the optimum (g per work unit, scaled by 3.6e6)
  bool feasible = true;
};

Plan plan_power_limits(const LimitProfile& profile, const std::vector<PlanPeriod>& periods,
                       double work);

// Throughput at the highest limit (the GPUs' default), in work units per second: a job of W units
// takes W / rate there, so a slowdown budget s gives it (1 + s)·W / rate seconds of periods.
double work_rate_at_highest_limit(const LimitProfile& profile);

// What a paused job does with its GPUs.
enum class PauseMode {
  kNone,     // never pause (power limits only)
  kIdle,     // keep the GPUs, held at their minimum limit, drawing idle_power_w each
  kRelease,  // checkpoint and exit: the GPUs are released and draw nothing for the job
};
// "none", "idle", "release".
std::string_view to_string(PauseMode mode) noexcept;
// Throws kInvalidArgument naming the unknown name and the known ones.
PauseMode parse_pause_mode(std::string_view name);

struct PauseOptions {
  PauseMode mode = PauseMode::kNone;
  double idle_power_w = 30;  // per GPU, while paused in kIdle mode
  double resume_s = 0;       // time a resume takes (reloading a checkpoint), without work
  // Energy of one resume, all GPUs; nullopt: resume_s at the profile's power at its lowest limit.
  std::optional<double> resume_energy_j = {};
};

// Throws kInvalidArgument for a negative or non-finite idle power, resume time or energy.
void check_pause_options(const PauseOptions& pause);
// The power the job's GPUs draw while paused (0 when released or never paused).
double pause_power_w(const LimitProfile& profile, const PauseOptions& pause);
// The energy of one resume.
double resume_energy_j(const LimitProfile& profile, const PauseOptions& pause);

Plan plan_with_pauses(const LimitProfile& profile, const std::vector<PlanPeriod>& periods,
                      double work, const PauseOptions& pause, bool paused_now,
                      double lambda_hint = 0);

}  // namespace chase
