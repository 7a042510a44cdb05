// The lookahead planner: optimality (KKT conditions, brute force over discrete plans), the convex
// hull, exact work, alternating clean/dirty periods, infeasibility and bad input.
#include "chase/planner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "chase/error.h"

namespace chase {
namespace {

// Work unit = one window; X = 1/T. 300 W: X 0.1, P 300; 200 W: X 0.09, P 180;
// 150 W: X 0.06, P 150 (above the hull between 200 and 100 W); 100 W: X 0.05, P 100.
LimitProfile hull_profile() {
  return LimitProfile(
      {{300, 10, 3000}, {200, 1 / 0.09, 180 / 0.09}, {150, 1 / 0.06, 150 / 0.06}, {100, 20, 2000}},
      {});
}

std::vector<PlanPeriod> periods(const std::vector<double>& intensities, double duration_s = 3600) {
  std::vector<PlanPeriod> out;
  for (const double ci : intensities) out.push_back({duration_s, ci});
  return out;
}

// Minimising CI·P − λ·X over the profile's points, for the KKT check.
double lagrangian_minimum(const LimitProfile& profile, double ci, double lambda) {
  double best = INFINITY;
  for (const auto& p : profile.points()) {
    best = std::min(best, ci * p.avg_power_w() - lambda / p.time_s);
  }
  return best;
}

double lagrangian_at(const LimitProfile& profile, double limit, double ci, double lambda) {
  for (const auto& p : profile.points()) {
    if (p.power_limit_w == limit) return ci * p.avg_power_w() - lambda / p.time_s;
  }
  ADD_FAILURE() << "no point at " << limit;
  return 0;
}

TEST(Planner, MeetsTheWorkExactlyWithAtMostOneSplitPeriod) {
  const auto profile = hull_profile();
  const auto ps = periods({400, 100, 250, 600});
  const double work = 0.075 * 4 * 3600;  // between all-at-100 W (0.05) and all-at-300 W (0.1)
  const auto plan = plan_power_limits(profile, ps, work);
  EXPECT_TRUE(plan.feasible);
  EXPECT_NEAR(plan.work, work, 1e-9 * work);
  int splits = 0;
  for (const auto& p : plan.periods) splits += p.first_fraction < 1 ? 1 : 0;
  EXPECT_LE(splits, 1);
}

TEST(Planner, EveryPeriodMinimisesItsLagrangianAtTheOptimum) {
  const auto profile = hull_profile();
  const auto ps = periods({400, 100, 250, 600, 0, 333});
  const auto plan = plan_power_limits(profile, ps, 0.08 * 6 * 3600);
  for (std::size_t t = 0; t < ps.size(); ++t) {
    SCOPED_TRACE(t);
    const double best = lagrangian_minimum(profile, ps[t].carbon_intensity, plan.lambda);
    const auto& p = plan.periods[t];
    EXPECT_NEAR(lagrangian_at(profile, p.power_limit_w, ps[t].carbon_intensity, plan.lambda), best,
                1e-6);
    EXPECT_NEAR(lagrangian_at(profile, p.second_limit_w, ps[t].carbon_intensity, plan.lambda), best,
                1e-6);
  }
}

TEST(Planner, NeverUsesALimitAboveTheHull) {
  const auto profile = hull_profile();
  for (const double fraction : {0.055, 0.07, 0.085, 0.095}) {
    const auto plan = plan_power_limits(profile, periods({100, 500, 300}), fraction * 3 * 3600);
    for (const auto& p : plan.periods) {
      EXPECT_NE(p.power_limit_w, 150);
      EXPECT_NE(p.second_limit_w, 150);
    }
  }
}

TEST(Planner, RunsFasterWhenCleanAndSlowerWhenDirty) {
  const auto plan =
      plan_power_limits(hull_profile(), periods({100, 600, 100, 600}), 0.075 * 4 * 3600);
  EXPECT_GT(plan.periods[0].work, plan.periods[1].work);
  EXPECT_GT(plan.periods[2].work, plan.periods[3].work);
  EXPECT_EQ(plan.periods[1].power_limit_w, 100);
}

TEST(Planner, NoWorkNeedsOnlyTheLeastPower) {
  const auto plan = plan_power_limits(hull_profile(), periods({100, 600}), 0);
  EXPECT_EQ(plan.lambda, 0);
  for (const auto& p : plan.periods) EXPECT_EQ(p.power_limit_w, 100);
}

TEST(Planner, TooMuchWorkRunsFastestEverywhereAndSaysSo) {
  const auto plan = plan_power_limits(hull_profile(), periods({100, 600}), 1e9);
  EXPECT_FALSE(plan.feasible);
  for (const auto& p : plan.periods) EXPECT_EQ(p.power_limit_w, 300);
}

TEST(Planner, BeatsOrMatchesEveryDiscretePlanThatDoesTheWork) {
  const auto profile = hull_profile();
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> ci(0, 800);
  for (int trial = 0; trial < 20; ++trial) {
    const auto ps = periods({ci(rng), ci(rng), ci(rng)}, 1800);
    const double work = std::uniform_real_distribution<double>(0.05, 0.1)(rng) * 3 * 1800;
    const auto plan = plan_power_limits(profile, ps, work);
    const auto& pts = profile.points();
    for (const auto& a : pts) {
      for (const auto& b : pts) {
        for (const auto& c : pts) {
          const LimitMeasurement* choice[3] = {&a, &b, &c};
          double done = 0, carbon = 0;
          for (int t = 0; t < 3; ++t) {
            done += ps[t].duration_s / choice[t]->time_s;
            carbon += choice[t]->avg_power_w() * ps[t].duration_s / 3.6e6 * ps[t].carbon_intensity;
          }
          if (done >= work) {
            EXPECT_LE(plan.carbon_g, carbon * (1 + 1e-9));
          }
        }
      }
    }
  }
}

TEST(Planner, WorkRateIsThatOfTheHighestLimit) {
  EXPECT_DOUBLE_EQ(work_rate_at_highest_limit(hull_profile()), 0.1);
}

TEST(Planner, BadInputIsAClearError) {
  const auto profile = hull_profile();
  EXPECT_THROW(plan_power_limits(profile, {}, 1), Error);
  EXPECT_THROW(plan_power_limits(profile, {{-1, 100}}, 1), Error);
  EXPECT_THROW(plan_power_limits(profile, {{10, -5}}, 1), Error);
  EXPECT_THROW(plan_power_limits(profile, {{10, NAN}}, 1), Error);
  EXPECT_THROW(plan_power_limits(profile, {{10, 100}}, -1), Error);
}

}  // namespace
}  // namespace chase
