// Lookahead planning under a slowdown budget (contract: chase/planner.h).
#include "chase/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
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

}  // namespace

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
