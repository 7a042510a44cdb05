// Lookahead planning under a slowdown budget (contract: chase/planner.h).
#include "chase/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>

#include "chase/carbon.h"
#include "chase/error.h"

namespace chase {
namespace {

struct HullPoint {
  double limit_w;
  double throughput;  // work units per second
  double power_w;
};

// Cross product sign of (b − a) × (c − a) in the (X, P) plane: ≤ 0 means b is not below a–c.
double turn(const HullPoint& a, const HullPoint& b, const HullPoint& c) {
  return (b.throughput - a.throughput) * (c.power_w - a.power_w) -
         (b.power_w - a.power_w) * (c.throughput - a.throughput);
}

// The efficient frontier: the lower convex hull of (X, P) from the least power to the most work.
std::vector<HullPoint> efficient_frontier(const LimitProfile& profile) {
  std::vector<HullPoint> points;
  for (const auto& p : profile.points()) {
    points.push_back({p.power_limit_w, 1 / p.time_s, p.avg_power_w()});
  }
  std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) {
    return a.throughput != b.throughput ? a.throughput < b.throughput : a.power_w < b.power_w;
  });
  std::vector<HullPoint> hull;
  for (const auto& point : points) {
    if (!hull.empty() && hull.back().throughput == point.throughput) continue;  // same X, more P
    while (hull.size() >= 2 && turn(hull[hull.size() - 2], hull.back(), point) <= 0) {
      hull.pop_back();
    }
    hull.push_back(point);
  }
  // Points left of the least-power one are slower and hungrier: never worth running.
  const auto least_power =
      std::min_element(hull.begin(), hull.end(), [](const auto& a, const auto& b) {
        return a.power_w < b.power_w || (a.power_w == b.power_w && a.throughput > b.throughput);
      });
  hull.erase(hull.begin(), least_power);
  return hull;
}

void check_periods(const std::vector<PlanPeriod>& periods, double work) {
  if (periods.empty()) throw Error(ErrorCode::kInvalidArgument, "a plan needs at least one period");
  for (std::size_t t = 0; t < periods.size(); ++t) {
    const auto& p = periods[t];
    if (!(p.duration_s >= 0) || !std::isfinite(p.duration_s) || !(p.carbon_intensity >= 0) ||
        !std::isfinite(p.carbon_intensity)) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("plan period {}: duration {} s and intensity {} g/kWh must be finite "
                              "and non-negative",
                              t, p.duration_s, p.carbon_intensity));
    }
  }
  if (!(work >= 0) || !std::isfinite(work)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the work to plan must be finite and non-negative, not {}", work));
  }
}

// One step up a period's frontier, from hull point `level` to `level + 1`, and what it costs.
struct Move {
  double lambda;
  std::size_t period;
  std::size_t level;
};

std::vector<Move> moves_by_lambda(const std::vector<HullPoint>& hull,
                                  const std::vector<PlanPeriod>& periods) {
  std::vector<Move> moves;
  for (std::size_t t = 0; t < periods.size(); ++t) {
    if (periods[t].duration_s == 0) continue;
    for (std::size_t i = 0; i + 1 < hull.size(); ++i) {
      const double slope =
          (hull[i + 1].power_w - hull[i].power_w) / (hull[i + 1].throughput - hull[i].throughput);
      moves.push_back({periods[t].carbon_intensity * slope, t, i});
    }
  }
  // Stable: a period's own moves stay in hull order when their λ are equal (e.g. CI = 0).
  std::stable_sort(moves.begin(), moves.end(),
                   [](const Move& a, const Move& b) { return a.lambda < b.lambda; });
  return moves;
}

PlannedPeriod planned(const PlanPeriod& period, const HullPoint& first, const HullPoint& second,
                      double first_fraction) {
  PlannedPeriod out;
  out.power_limit_w = first.limit_w;
  out.second_limit_w = second.limit_w;
  out.first_fraction = first_fraction;
  const double t1 = first_fraction * period.duration_s;
  const double t2 = period.duration_s - t1;
  out.work = first.throughput * t1 + second.throughput * t2;
  out.energy_j = first.power_w * t1 + second.power_w * t2;
  out.carbon_g = emissions_g(out.energy_j, period.carbon_intensity);
  return out;
}

// ---- Deadline mode: the three-state dynamic programme for one multiplier λ (§3.7) ----

constexpr double kInfinity = std::numeric_limits<double>::infinity();

enum class JobState : std::uint8_t { kRunning = 0, kPaused = 1, kDone = 2 };
constexpr std::size_t kStates = 3;

struct RatePoint {
  double limit_w;
  double throughput;  // work units per second
  double power_w;
};

// For one period: which state each state at its end came from, and the limit a run uses.
struct Step {
  std::array<JobState, kStates> from{};
  std::size_t point = 0;
};

class PauseProgramme {
 public:
  PauseProgramme(const LimitProfile& profile, const std::vector<PlanPeriod>& periods,
                 const PauseOptions& pause, bool paused_now)
      : periods_(periods),
        pause_power_w_(pause_power_w(profile, pause)),
        resume_s_(pause.resume_s),
        resume_j_(resume_energy_j(profile, pause)),
        paused_now_(paused_now) {
    for (const auto& p : profile.points()) {
      points_.push_back({p.power_limit_w, 1 / p.time_s, p.avg_power_w()});
    }
    fastest_ = static_cast<std::size_t>(
        std::max_element(points_.begin(), points_.end(),
                         [](const auto& a, const auto& b) { return a.throughput < b.throughput; }) -
        points_.begin());
    lowest_limit_w_ =
        std::min_element(points_.begin(), points_.end(), [](const auto& a, const auto& b) {
          return a.limit_w < b.limit_w;
        })->limit_w;
    steps_.resize(periods_.size());
    end_ = periods_.size();
  }

  // Seconds of work a run in `period` gets, after a resume or not.
  double run_seconds(std::size_t period, bool resumed) const {
    return std::max(0.0, periods_[period].duration_s - (resumed ? resume_s_ : 0));
  }

  // Plans must end (be done) by period `end` (exclusive); `free_end`: or earlier, at no cost
  // after (the three-state programme). A fixed end (free_end false) makes the job run or pause
  // in every period before it.
  void set_end(std::size_t end, bool free_end) {
    end_ = std::min(end, periods_.size());
    free_end_ = free_end;
  }
  std::size_t size() const noexcept { return periods_.size(); }

  // The most work the periods up to the end allow: the fastest limit throughout, after a resume
  // when paused.
  double most_work() const {
    double work = 0;
    for (std::size_t t = 0; t < end_; ++t) {
      work += points_[fastest_].throughput * run_seconds(t, t == 0 && paused_now_);
    }
    return work;
  }

  // Solves min Σ carbon − λ·work over the periods; returns the work of the minimiser, whose
  // decisions are left in steps_ and final_.
  double solve(double lambda) {
    std::array<double, kStates> cost{paused_now_ ? kInfinity : 0, paused_now_ ? 0 : kInfinity,
                                     kInfinity};
    for (std::size_t t = 0; t < end_; ++t) {
      const auto& period = periods_[t];
      const double g_per_j = period.carbon_intensity / kJoulesPerKwh;
      // The best limit per second of running is the same after a resume (a shorter run).
      std::size_t best = 0;
      double best_rate = kInfinity;
      for (std::size_t k = 0; k < points_.size(); ++k) {
        const double rate = g_per_j * points_[k].power_w - lambda * points_[k].throughput;
        if (rate < best_rate) best_rate = rate, best = k;
      }
      const double run = best_rate * run_seconds(t, false);
      const double resumed = run_seconds(t, true) > 0
                                 ? best_rate * run_seconds(t, true) + g_per_j * resume_j_
                                 : kInfinity;
      const double paused = g_per_j * pause_power_w_ * period.duration_s;
      auto& step = steps_[t];
      step.point = best;
      std::array<double, kStates> next{};
      const auto pick = [&](JobState to, JobState from, double value) {
        const auto i = static_cast<std::size_t>(to);
        if (value < next[i]) next[i] = value, step.from[i] = from;
      };
      next.fill(kInfinity);
      pick(JobState::kRunning, JobState::kRunning, cost[0] + run);
      pick(JobState::kRunning, JobState::kPaused, cost[1] + resumed);
      pick(JobState::kPaused, JobState::kRunning, cost[0] + paused);
      pick(JobState::kPaused, JobState::kPaused, cost[1] + paused);
      if (free_end_) {
        pick(JobState::kDone, JobState::kRunning, cost[0]);
        pick(JobState::kDone, JobState::kPaused, cost[1]);
        pick(JobState::kDone, JobState::kDone, cost[2]);
      }
      cost = next;
    }
    final_ = static_cast<JobState>(std::min_element(cost.begin(), cost.end()) - cost.begin());
    double work = 0;
    for_each_state([&](std::size_t t, JobState state, JobState before) {
      if (state == JobState::kRunning) {
        work += points_[steps_[t].point].throughput * run_seconds(t, before == JobState::kPaused);
      }
    });
    return work;
  }

  // The plan of the last solve().
  Plan plan(double lambda) const {
    Plan plan;
    plan.lambda = lambda;
    plan.periods.resize(periods_.size());
    for_each_state([&](std::size_t t, JobState state, JobState before) {
      auto& out = plan.periods[t];
      const auto& period = periods_[t];
      if (state == JobState::kRunning) {
        const auto& point = points_[steps_[t].point];
        out.resumes = before == JobState::kPaused;
        const double seconds = run_seconds(t, out.resumes);
        out.power_limit_w = out.second_limit_w = point.limit_w;
        out.work = point.throughput * seconds;
        out.energy_j = point.power_w * seconds + (out.resumes ? resume_j_ : 0);
      } else {
        out.paused = true;
        out.power_limit_w = out.second_limit_w = lowest_limit_w_;
        out.energy_j = state == JobState::kPaused ? pause_power_w_ * period.duration_s : 0;
      }
      out.carbon_g = emissions_g(out.energy_j, period.carbon_intensity);
      plan.work += out.work;
      plan.energy_j += out.energy_j;
      plan.carbon_g += out.carbon_g;
    });
    return plan;
  }

  // Every period at the fastest limit (the catch-up when the work cannot be done in time).
  Plan fastest_plan() const {
    Plan plan;
    plan.feasible = false;
    for (std::size_t t = 0; t < periods_.size(); ++t) {
      PlannedPeriod out;
      const auto& point = points_[fastest_];
      out.resumes = t == 0 && paused_now_;
      const double seconds = run_seconds(t, out.resumes);
      out.power_limit_w = out.second_limit_w = point.limit_w;
      out.work = point.throughput * seconds;
      out.energy_j = point.power_w * seconds + (out.resumes ? resume_j_ : 0);
      out.carbon_g = emissions_g(out.energy_j, periods_[t].carbon_intensity);
      plan.work += out.work;
      plan.energy_j += out.energy_j;
      plan.carbon_g += out.carbon_g;
      plan.periods.push_back(out);
    }
    return plan;
  }

  // A first guess of λ: the carbon of a unit of work at the fastest limit and the mean intensity.
  double typical_lambda() const {
    double sum = 0;
    for (const auto& p : periods_) sum += p.carbon_intensity;
    const double mean = sum / static_cast<double>(periods_.size());
    const double guess =
        mean / kJoulesPerKwh * points_[fastest_].power_w / points_[fastest_].throughput;
    return guess > 0 ? guess : 1e-9;
  }

 private:
  // Walks the last solution backwards, then calls f(period, state, state before) in order.
  template <typename F>
  void for_each_state(F&& f) const {
    std::vector<JobState> states(periods_.size(), JobState::kDone);  // after the end: done
    JobState state = final_;
    for (std::size_t t = end_; t-- > 0;) {
      states[t] = state;
      state = steps_[t].from[static_cast<std::size_t>(state)];
    }
    JobState before = paused_now_ ? JobState::kPaused : JobState::kRunning;
    for (std::size_t t = 0; t < periods_.size(); ++t) {
      f(t, states[t], before);
      before = states[t];
    }
  }

  const std::vector<PlanPeriod>& periods_;
  std::vector<RatePoint> points_;
  std::size_t fastest_ = 0;
  double lowest_limit_w_ = 0;
  double pause_power_w_;
  double resume_s_;
  double resume_j_;
  bool paused_now_;
  std::vector<Step> steps_;
  JobState final_ = JobState::kDone;
  std::size_t end_ = 0;
  bool free_end_ = true;
};

// The plan of the least λ whose minimiser does `work`: bracketed from `hint`, then bisected. The
// programme must be able to do the work (most_work() ≥ work).
Plan least_lambda_plan(PauseProgramme& programme, double work, double hint,
                       double relative_tolerance = 1e-4) {
  double hi = hint > 0 ? hint : programme.typical_lambda();
  double lo = 0;
  if (programme.solve(hi) >= work) {
    lo = hi / 2;
    for (int i = 0; i < 60 && programme.solve(lo) >= work; ++i) hi = lo, lo /= 2;
  } else {
    lo = hi;
    hi *= 2;
    for (int i = 0; i < 200 && programme.solve(hi) < work; ++i) lo = hi, hi *= 2;
  }
  for (int i = 0; i < 60 && hi - lo > relative_tolerance * hi; ++i) {
    const double mid = (lo + hi) / 2;
    (programme.solve(mid) >= work ? hi : lo) = mid;
  }
  programme.solve(hi);
  auto plan = programme.plan(hi);
  plan.feasible = plan.work >= work * (1 - 1e-9);
  return plan;
}

// What a plan would emit doing exactly `work` (its overshoot at its mean carbon per unit).
double score(const Plan& plan, double work) {
  return plan.work > 0 ? plan.carbon_g * std::min(1.0, work / plan.work) : plan.carbon_g;
}

// The last period a plan runs in, plus one.
std::size_t plan_end(const Plan& plan) {
  std::size_t end = 0;
  for (std::size_t t = 0; t < plan.periods.size(); ++t) {
    if (!plan.periods[t].paused) end = t + 1;
  }
  return end;
}

// Idle mode: the best of the plans that end at a fixed period (each a convex problem without a
// resume cost, so its multiplier's plan does about the work) — a coarse grid of ends from the
// earliest that can do the work to the free plan's end, then halving steps around the best. `best`
// (the free end's plan) stays only when no fixed end can do the work.
Plan best_fixed_end_plan(PauseProgramme& programme, double work, Plan best) {
  std::size_t earliest = 1;
  for (; earliest < programme.size(); ++earliest) {
    programme.set_end(earliest, false);
    if (programme.most_work() >= work * (1 - 1e-12)) break;
  }
  // The free plan overshoots, so it ends at least as late as the best end (in practice).
  const std::size_t latest = std::max(earliest, std::min(programme.size(), plan_end(best) + 2));
  // The free plan may overshoot by many periods (it is only a fallback, never compared).
  double best_score = kInfinity;
  std::size_t best_end = latest;
  const auto try_end = [&](std::size_t end) {
    if (end < earliest || end > programme.size()) return;
    programme.set_end(end, false);
    if (programme.most_work() < work * (1 - 1e-12)) return;
    auto plan = least_lambda_plan(programme, work, best.lambda, 1e-3);
    if (plan.feasible && score(plan, work) < best_score) {
      best_score = score(plan, work);
      best = std::move(plan);
      best_end = end;
    }
  };
  constexpr std::size_t kGrid = 6;
  const std::size_t spacing = std::max<std::size_t>(1, (latest - earliest) / kGrid);
  for (std::size_t end = earliest; end <= latest; end += spacing) try_end(end);
  for (std::size_t step = spacing / 2; step >= 1; step /= 2) {
    const std::size_t centre = best_end;
    try_end(centre + step);
    if (centre > step) try_end(centre - step);
  }
  programme.set_end(programme.size(), true);
  return best;
}

}  // namespace

void check_pause_options(const PauseOptions& pause) {
  const auto bad = [](double v) { return !(v >= 0) || !std::isfinite(v); };
  if (bad(pause.idle_power_w) || bad(pause.resume_s) ||
      (pause.resume_energy_j && bad(*pause.resume_energy_j))) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("pause options: the idle power ({} W), resume time ({} s) and resume "
                            "energy must be finite and non-negative",
                            pause.idle_power_w, pause.resume_s));
  }
}

std::string_view to_string(PauseMode mode) noexcept {
  switch (mode) {
    case PauseMode::kNone:
      return "none";
    case PauseMode::kIdle:
      return "idle";
    case PauseMode::kRelease:
      return "release";
  }
  return "unknown";
}

PauseMode parse_pause_mode(std::string_view name) {
  for (const auto mode : {PauseMode::kNone, PauseMode::kIdle, PauseMode::kRelease}) {
    if (to_string(mode) == name) return mode;
  }
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("unknown pause mode '{}'; use none, idle or release", name));
}

double pause_power_w(const LimitProfile& profile, const PauseOptions& pause) {
  if (pause.mode != PauseMode::kIdle) return 0;
  return pause.idle_power_w * static_cast<double>(profile.info().gpu_count);
}

double resume_energy_j(const LimitProfile& profile, const PauseOptions& pause) {
  if (pause.resume_energy_j) return *pause.resume_energy_j;
  if (profile.points().empty()) return 0;
  const auto lowest = std::min_element(
      profile.points().begin(), profile.points().end(),
      [](const auto& a, const auto& b) { return a.power_limit_w < b.power_limit_w; });
  return pause.resume_s * lowest->avg_power_w();
}

Plan plan_with_pauses(const LimitProfile& profile, const std::vector<PlanPeriod>& periods,
                      double work, const PauseOptions& pause, bool paused_now, double lambda_hint) {
  check_periods(periods, work);
  check_pause_options(pause);
  if (profile.points().empty()) {
    throw Error(ErrorCode::kInvalidArgument, "a plan needs a profile with at least one limit");
  }
  PauseProgramme programme(profile, periods, pause, paused_now);
  if (work > programme.most_work() * (1 + 1e-12)) return programme.fastest_plan();
  if (work <= 0) {
    programme.solve(0);
    return programme.plan(0);
  }
  auto best = least_lambda_plan(programme, work, lambda_hint);
  // Idle pauses cost power but the time after the job's end does not: the end is a choice the
  // multiplier cannot make smoothly (a duality gap), so ends are also tried one by one.
  if (pause_power_w(profile, pause) > 0) best = best_fixed_end_plan(programme, work, best);
  return best;
}

double work_rate_at_highest_limit(const LimitProfile& profile) {
  return 1 / profile.highest_limit_point().time_s;
}

Plan plan_power_limits(const LimitProfile& profile, const std::vector<PlanPeriod>& periods,
                       double work) {
  check_periods(periods, work);
  const auto hull = efficient_frontier(profile);
  std::vector<std::size_t> level(periods.size(), 0);
  double planned_work = 0;
  for (const auto& period : periods) planned_work += hull[0].throughput * period.duration_s;

  Plan plan;
  std::optional<std::size_t> split_period;
  double split_fraction = 1;  // share of the split period at the upper point
  if (planned_work < work) {
    bool met = false;
    for (const auto& move : moves_by_lambda(hull, periods)) {
      const double gain = (hull[move.level + 1].throughput - hull[move.level].throughput) *
                          periods[move.period].duration_s;
      plan.lambda = move.lambda;
      if (planned_work + gain >= work) {
        split_period = move.period;
        split_fraction = (work - planned_work) / gain;
        met = true;
        break;
      }
      level[move.period] = move.level + 1;
      planned_work += gain;
    }
    plan.feasible = met;
  }

  for (std::size_t t = 0; t < periods.size(); ++t) {
    const auto& at = hull[level[t]];
    if (split_period == t && split_fraction < 1) {
      plan.periods.push_back(planned(periods[t], hull[level[t] + 1], at, split_fraction));
    } else if (split_period == t) {
      plan.periods.push_back(planned(periods[t], hull[level[t] + 1], hull[level[t] + 1], 1));
    } else {
      plan.periods.push_back(planned(periods[t], at, at, 1));
    }
    plan.work += plan.periods.back().work;
    plan.energy_j += plan.periods.back().energy_j;
    plan.carbon_g += plan.periods.back().carbon_g;
  }
  return plan;
}

}  // namespace chase
