// LimitPolicy: the per-period chase / planner decision (contract: chase/limit_policy.h).
#include "chase/limit_policy.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "chase/error.h"

namespace chase {
namespace {

double seconds_between(UtcTime from, UtcTime to) {
  return std::chrono::duration<double>(to - from).count();
}

UtcTime after_seconds(UtcTime time, double seconds) {
  return time + std::chrono::duration_cast<UtcTime::duration>(std::chrono::duration<double>(seconds));
}

// Whole amounts (steps) print as integers, fractional ones (epochs) with two decimals.
std::string format_amount(double amount) {
  if (std::abs(amount - std::round(amount)) < 1e-6) return fmt::format("{:.0f}", amount);
  return fmt::format("{:.2f}", amount);
}

void check_options(const LimitPolicyOptions& options, const CarbonSignal* carbon) {
  if (options.policy != "chase" && options.policy != "planner") {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("unknown limit policy '{}'; use chase or planner", options.policy));
  }
  if (!carbon) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the {} policy needs a carbon signal", options.policy));
  }
  if (options.period.count() <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "the control period must be positive");
  }
  if (!(options.slowdown_budget >= 0) || !std::isfinite(options.slowdown_budget)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the slowdown budget must be ≥ 0 (0.1 = 10 % longer), not {}",
                            options.slowdown_budget));
  }
}

// The limits the planner may use: those at least as fast as the most energy-efficient one. A
// slower limit takes longer AND uses more energy for the same work, so finishing early at the
// efficient limit beats it in every period; but the planner fills every period up to the deadline
// (it has no "idle"), so with a generous slack it would otherwise crawl at a wasteful limit.
LimitProfile planning_profile(const LimitProfile& profile) {
  const auto& points = profile.points();
  const auto efficient = std::min_element(
      points.begin(), points.end(), [](const auto& a, const auto& b) { return a.energy_j < b.energy_j; });
  std::vector<LimitMeasurement> kept;
  for (const auto& point : points) {
    if (point.time_s <= efficient->time_s) kept.push_back(point);
  }
  return LimitProfile(std::move(kept), profile.info(), profile.max_power_limit_w());
}

// The cheapest plan that runs without a pause from now to some period's end: the job may finish
// before the deadline, and the plan that fills every period up to the deadline is not always the
// cheapest (running fast through clean hours and finishing before dirty ones can beat crawling
// through them). Every prefix of `periods` long enough for the work is planned; `used` gets the
// number of periods of the best one. An infeasible plan (the last prefix's) when none is feasible.
Plan cheapest_plan(const LimitProfile& profile, const std::vector<PlanPeriod>& periods, double work,
                   std::size_t& used) {
  const double fastest_rate = 1 / std::min_element(profile.points().begin(), profile.points().end(),
                                                   [](const auto& a, const auto& b) {
                                                     return a.time_s < b.time_s;
                                                   })->time_s;
  std::optional<Plan> best;
  std::vector<PlanPeriod> prefix;
  double seconds = 0;
  for (const auto& period : periods) {
    prefix.push_back(period);
    seconds += period.duration_s;
    if (seconds * fastest_rate < work * (1 - 1e-12)) continue;  // too short even at full speed
    auto plan = plan_power_limits(profile, prefix, work);
    if (plan.feasible && (!best || plan.carbon_g < best->carbon_g)) {
      best = std::move(plan);
      used = prefix.size();
    }
  }
  if (best) return *best;
  used = periods.size();
  return plan_power_limits(profile, periods, work);
}

// CI_max (§3): the highest intensity of the day before `now` when the series holds that day (a
// signal with a forecaster holds its history); otherwise its highest value (a provider's forecast
// holds only the future); 0 for an empty series.
double day_before_maximum(const CarbonSeries& series, UtcTime now) {
  if (series.empty()) return 0;
  const auto day_before = series.max_between(now - std::chrono::hours(24), now);
  if (day_before && *day_before > 0) return *day_before;
  return *std::max_element(series.values().begin(), series.values().end());
}

}  // namespace

UtcTime period_end_after(UtcTime time, std::chrono::seconds period) {
  const auto since_epoch =
      std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch());
  const auto index = since_epoch.count() / period.count();
  return UtcTime(std::chrono::seconds((index + 1) * period.count()));
}

LimitPolicy::LimitPolicy(LimitPolicyOptions options, std::shared_ptr<CarbonSignal> carbon)
    : options_((check_options(options, carbon.get()), std::move(options))),
      carbon_(std::move(carbon)) {}

void LimitPolicy::begin(UtcTime now) {
  if (options_.policy != "chase" || options_.max_carbon_intensity > 0) return;
  try {
    options_.max_carbon_intensity = day_before_maximum(carbon_->forecast_series(), now);
  } catch (const Error& e) {
    spdlog::warn("no carbon forecast to normalise the chase cost: {}", e.what());
  }
  if (!(options_.max_carbon_intensity > 0)) {
    options_.max_carbon_intensity = 750;  // the published method's value
    spdlog::warn("chase: CI_max unknown; using the published 750 gCO2eq/kWh");
  }
}

std::optional<double> coming_period_intensity(CarbonSignal& carbon, std::chrono::seconds period) {
  try {
    carbon.refresh_if_due();
    const auto forecast = carbon.forecast(1, period);
    if (!forecast.empty()) return forecast.front().g_per_kwh;
    return carbon.intensity_now();
  } catch (const Error& e) {
    spdlog::warn("no carbon intensity for the coming period: {}", e.what());
    return std::nullopt;
  }
}

std::optional<double> LimitPolicy::coming_period_intensity() const {
  return chase::coming_period_intensity(*carbon_, options_.period);
}

LimitDecision LimitPolicy::decide(const LimitProfile& profile, UtcTime now,
                                  std::optional<double> coming_intensity,
                                  const JobProgress& progress) {
  if (options_.policy == "chase") {
    if (!(options_.max_carbon_intensity > 0)) begin(now);  // begin() was not called
    return decide_chase(profile, coming_intensity);
  }
  return decide_plan(profile, now, progress);
}

LimitDecision LimitPolicy::decide_chase(const LimitProfile& profile,
                                        std::optional<double> intensity) {
  LimitDecision decision;
  if (!intensity || !std::isfinite(*intensity)) {
    decision.reason = "no carbon intensity for this period; limit kept";
    return decision;
  }
  if (!chase_selector_) {
    chase_selector_ = make_chase_selector(options_.eta, options_.max_carbon_intensity);
  }
  auto selection = chase_selector_->select(profile, {*intensity});
  decision.limit_w = selection.power_limit_w;
  decision.candidates = std::move(selection.candidates);
  decision.reason = fmt::format("{} at {:.1f} gCO2eq/kWh", chase_selector_->describe(), *intensity);
  return decision;
}

std::vector<PlanPeriod> LimitPolicy::periods_until(UtcTime now, UtcTime deadline) const {
  std::vector<PlanPeriod> periods;
  for (UtcTime start = now; start < deadline;) {
    const UtcTime end = std::min(period_end_after(start, options_.period), deadline);
    periods.push_back({seconds_between(start, end), 0});
    start = end;
  }
  std::vector<CarbonPeriod> forecast;
  try {
    forecast = carbon_->forecast(periods.size(), options_.period);
  } catch (const Error& e) {
    spdlog::warn("planner: no carbon forecast: {}", e.what());
  }
  if (forecast.empty()) return {};
  double sum = 0;
  for (const auto& f : forecast) sum += f.g_per_kwh;
  const double mean = sum / static_cast<double>(forecast.size());
  for (std::size_t i = 0; i < periods.size(); ++i) {
    periods[i].carbon_intensity = i < forecast.size() ? forecast[i].g_per_kwh : mean;
  }
  return periods;
}

LimitDecision LimitPolicy::decide_plan(const LimitProfile& profile, UtcTime now,
                                       const JobProgress& progress) {
  LimitDecision decision;
  const double job_s_at_max = progress.work_total * profile.highest_limit_point().time_s;
  const UtcTime deadline =
      after_seconds(progress.start, (1 + options_.slowdown_budget) * job_s_at_max);
  const double work_left = std::max(0.0, progress.work_total - progress.work_done);
  const std::string left =
      fmt::format("{} {}", format_amount(work_left * progress.units_per_work), progress.unit);
  if (work_left <= 0) {
    decision.reason = fmt::format("planner: the job's {} are done; limit kept", progress.unit);
    return decision;
  }
  const auto periods = deadline > now ? periods_until(now, deadline) : std::vector<PlanPeriod>{};
  if (deadline > now && periods.empty()) {
    decision.reason = "planner: no carbon forecast; limit kept";
    return decision;
  }
  std::size_t used = 0;
  const auto plan =
      deadline > now ? cheapest_plan(planning_profile(profile), periods, work_left, used) : Plan{};
  if (plan.periods.empty() || !plan.feasible) {
    const auto fastest =
        std::min_element(profile.points().begin(), profile.points().end(),
                         [](const auto& a, const auto& b) { return a.time_s < b.time_s; });
    decision.limit_w = fastest->power_limit_w;
    decision.reason =
        fmt::format("planner: {} left cannot be done by the deadline; fastest limit", left);
    return decision;
  }
  const auto& first = plan.periods.front();
  decision.limit_w = first.power_limit_w;
  if (first.first_fraction < 1 && first.second_limit_w != first.power_limit_w) {
    decision.planned_switch = LimitSwitch{
        after_seconds(now, first.first_fraction * periods.front().duration_s),
        first.second_limit_w};
  }
  decision.reason = fmt::format(
      "planner: {} left, {:.0f} s to the deadline over {} periods, planned to end in {}; {} W{}",
      left, seconds_between(now, deadline), periods.size(), used, first.power_limit_w,
      decision.planned_switch
          ? fmt::format(" for {:.1f} %, then {} W", 100 * first.first_fraction, first.second_limit_w)
          : "");
  return decision;
}

}  // namespace chase
