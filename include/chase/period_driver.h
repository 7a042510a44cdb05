// chase/period_driver.h — the one control loop: period boundaries, planned switches inside a
// period and the hand-over from profiling to a policy, for live training and simulation alike.
//
// Contract: the caller owns the clock and the job; the driver owns the control periods. The
// caller implements ControlledJob — what the job has done (progress), its profile once measured,
// and "apply this limit" — and calls:
//   begin(now)                once, when the job starts: the policy's begin() and the first period;
//   poll(now, control_ready)  whenever time has moved (every training step; every simulated
//                             segment). In this order: when `now` has reached the period's end,
//                             the period ends and the next begins (its intensity fetched by the
//                             policy, a planned switch dropped); when `control_ready` is true for
//                             the first time (profiling is over, or there was none) the policy
//                             takes over at once, mid-period; otherwise at every new period the
//                             policy decides again; otherwise a planned switch that is due is
//                             applied.
//   end(now)                  once, when the job ends: the last period ends.
// A decision to pause (deadline mode) goes to ControlledJob::pause() instead of a limit.
// Periods are aligned to UTC multiples of the policy's period. next_event() is when poll() next
// has something to do (a simulator advances to it). Before control, decisions are not asked for.
// A policy that needs a profile, asked to decide without one (profiling was abandoned), is not
// asked: the job keeps its limit and the reason says why.
// The driver never throws for the job's own failures: apply_limit() reports them to the caller's
// report; an exception from the job's callbacks propagates unchanged.
//
// Thread safety: not thread-safe; one caller at a time.
#pragma once

#include <optional>

#include "chase/limit_policy.h"
#include "chase/limit_profile.h"
#include "chase/time.h"

namespace chase {

class ControlledJob {
 public:
  virtual ~ControlledJob() = default;
  // How far the job is, in its profile's work units.
  virtual JobProgress progress() const = 0;
  // The job's measured profile; null before profiling ends or when it was abandoned.
  virtual const LimitProfile* profile() const = 0;
  virtual double highest_limit_w() const = 0;
  // Runs the job at `watts` from now on. Failures are the job's to report (the driver goes on).
  virtual void apply_limit(double watts) = 0;
  // The policy repeats a choice it already made (LimitDecision::repeat): the job sets it again
  // when it is not in force (an earlier change failed). By default, apply_limit().
  virtual void keep_limit(double watts) { apply_limit(watts); }
  // Deadline mode: the policy pauses the job (LimitDecision::pause). The job pauses until a later
  // decision sets a limit again (apply_limit() on a paused job resumes it). By default the job
  // cannot pause and runs on at its limit.
  virtual void pause(const PauseDecision& /*decision*/) {}

  // Reporting hooks, called after the driver acted.
  virtual void period_began(UtcTime /*start*/, std::optional<double> /*intensity*/) {}
  virtual void period_ended(UtcTime /*end*/) {}
  virtual void decided(UtcTime /*now*/, const LimitDecision& /*decision*/) {}
  virtual void switched(UtcTime /*now*/, double /*limit_w*/) {}
};

class PeriodDriver {
 public:
  PeriodDriver(LimitPolicy& policy, ControlledJob& job) : policy_(policy), job_(job) {}

  void begin(UtcTime now);
  void poll(UtcTime now, bool control_ready);
  void end(UtcTime now);

  // The end of the current period or a planned switch in it, whichever comes first.
  UtcTime next_event() const noexcept;
  UtcTime period_end() const noexcept { return period_end_; }
  bool controlling() const noexcept { return controlling_; }

 private:
  void begin_period(UtcTime now);
  void decide(UtcTime now);

  LimitPolicy& policy_;
  ControlledJob& job_;
  UtcTime period_end_{};
  std::optional<LimitSwitch> planned_switch_;
  bool started_ = false;
  bool ended_ = false;
  bool controlling_ = false;
};

}  // namespace chase
