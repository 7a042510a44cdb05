// PeriodDriver: control periods, planned switches and the hand-over from profiling (contract:
// chase/period_driver.h).
#include "chase/period_driver.h"

#include <algorithm>

namespace chase {

void PeriodDriver::begin(UtcTime now) {
  if (started_) return;
  started_ = true;
  policy_.begin(now);
  begin_period(now);
}

void PeriodDriver::poll(UtcTime now, bool control_ready) {
  if (!started_) begin(now);
  if (ended_) return;
  const bool boundary = now >= period_end_;
  if (boundary) {
    job_.period_ended(now);
    begin_period(now);
  }
  if (control_ready && !controlling_) {
    controlling_ = true;  // profiling is over: the policy takes over at once, mid-period
    decide(now);
  } else if (boundary && controlling_) {
    decide(now);
  } else if (controlling_ && planned_switch_ && now >= planned_switch_->at) {
    const double limit = planned_switch_->limit_w;
    planned_switch_.reset();
    job_.apply_limit(limit);
    job_.switched(now, limit);
  }
}

void PeriodDriver::end(UtcTime now) {
  if (!started_ || ended_) return;
  ended_ = true;
  job_.period_ended(now);
}

UtcTime PeriodDriver::next_event() const noexcept {
  if (planned_switch_) return std::min(period_end_, planned_switch_->at);
  return period_end_;
}

void PeriodDriver::begin_period(UtcTime now) {
  period_end_ = period_end_after(now, policy_.period());
  planned_switch_.reset();
  const auto intensity = policy_.enter_period(now);
  job_.period_began(now, intensity);
}

void PeriodDriver::decide(UtcTime now) {
  const auto* profile = job_.profile();
  LimitDecision decision;
  if (policy_.needs_profile() && !profile) {
    decision.reason = "profiling was abandoned; maximum limit";
  } else {
    decision = policy_.decide({now, profile, job_.highest_limit_w(), job_.progress()});
  }
  if (decision.pause) {
    job_.pause(*decision.pause);
  } else if (decision.limit_w) {
    decision.repeat ? job_.keep_limit(*decision.limit_w) : job_.apply_limit(*decision.limit_w);
  }
  planned_switch_ = decision.planned_switch;
  job_.decided(now, decision);
}

}  // namespace chase
