// The power-limit policies (contract: chase/limit_policy.h).
#include "chase/limit_policy.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "chase/error.h"

namespace chase {
namespace {

// Whole amounts (steps) print as integers, fractional ones (epochs) with two decimals.
std::string format_amount(double amount) {
  if (std::abs(amount - std::round(amount)) < 1e-6) return fmt::format("{:.0f}", amount);
  return fmt::format("{:.2f}", amount);
}

// The limits the planner may use: those at least as fast as the most energy-efficient one. A
// slower limit takes longer AND uses more energy for the same work, so finishing early at the
// efficient limit beats it in every period; but the planner fills every period up to the deadline
// (it has no "idle"), so with a generous slack it would otherwise crawl at a wasteful limit.
LimitProfile planning_profile(const LimitProfile& profile) {
  const auto& points = profile.points();
  const auto efficient =
      std::min_element(points.begin(), points.end(),
                       [](const auto& a, const auto& b) { return a.energy_j < b.energy_j; });
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
  const double fastest_rate =
      1 / std::min_element(profile.points().begin(), profile.points().end(),
                           [](const auto& a, const auto& b) { return a.time_s < b.time_s; })
              ->time_s;
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

void check_slowdown_budget(double budget) {
  if (!(budget >= 0) || !std::isfinite(budget)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the slowdown budget must be ≥ 0 (0.1 = 10 % longer), not {}", budget));
  }
}

void check_eta(double eta) {
  if (!(eta >= 0 && eta <= 1)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("eta must be in [0, 1] (the weight of energy or carbon), not {}", eta));
  }
}

// CI_max is a positive intensity, or 0 for "chosen by begin()": NaN, a negative or an infinite
// value is a caller's mistake, not a request for the default.
void check_max_carbon_intensity(double ci_max) {
  if (!std::isfinite(ci_max) || ci_max < 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("CI_max (max_carbon_intensity) must be a finite intensity > 0 in "
                            "gCO2eq/kWh, or 0 to take the day before's maximum; not {}",
                            ci_max));
  }
}

// The limit kept when a decision cannot be made.
LimitDecision keep(std::string reason) {
  LimitDecision decision;
  decision.reason = std::move(reason);
  return decision;
}

class FixedLimitPolicy final : public LimitPolicy {
 public:
  FixedLimitPolicy(FixedLimitOptions options, std::chrono::seconds period,
                   std::shared_ptr<CarbonSignal> carbon)
      : LimitPolicy(period, std::move(carbon)), options_(options) {
    if (!(options_.limit_w >= 0) || !std::isfinite(options_.limit_w)) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("a fixed limit must be a power in W (0: the highest), not {}",
                              options_.limit_w));
    }
  }
  PolicyKind kind() const noexcept override { return PolicyKind::kDefault; }
  bool needs_profile() const noexcept override { return false; }

  // The same limit every period: a change that failed is tried again at the next one.
  LimitDecision decide(const DecisionInput& input) override {
    LimitDecision decision;
    decision.repeat = decided_;
    decided_ = true;
    if (options_.limit_w > 0) {
      decision.limit_w = options_.limit_w;
      decision.reason = fmt::format("default: {} W throughout, no profiling", options_.limit_w);
    } else {
      decision.limit_w = input.highest_limit_w;
      decision.reason = "default: the highest limit, no profiling";
    }
    return decision;
  }

 private:
  FixedLimitOptions options_;
  bool decided_ = false;
};

class StaticPolicy final : public LimitPolicy {
 public:
  StaticPolicy(StaticOptions options, std::chrono::seconds period,
               std::shared_ptr<CarbonSignal> carbon)
      : LimitPolicy(period, std::move(carbon)),
        selector_(options.selector ? std::move(options.selector) : make_zeus_selector(0.5)) {}
  PolicyKind kind() const noexcept override { return PolicyKind::kStatic; }

  // The selector's choice once, after profiling; later periods keep it (and set it again if a
  // change failed).
  LimitDecision decide(const DecisionInput& input) override {
    LimitDecision decision;
    if (choice_w_) {
      decision.repeat = true;
      decision.limit_w = choice_w_;
      decision.reason = fmt::format("static: {} W from profiling", *choice_w_);
      return decision;
    }
    auto selection = selector_->select(*input.profile);
    choice_w_ = selection.power_limit_w;
    decision.limit_w = selection.power_limit_w;
    decision.reason =
        fmt::format("static: {} chose {} W after profiling", selector_->describe(), *choice_w_);
    return decision;
  }

 private:
  std::shared_ptr<const PowerLimitSelector> selector_;
  std::optional<double> choice_w_;
};

std::shared_ptr<CarbonSignal> required_signal(std::shared_ptr<CarbonSignal> carbon,
                                              std::string_view policy) {
  if (!carbon) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the {} policy needs a carbon signal", policy));
  }
  return carbon;
}

class ChasePolicy final : public LimitPolicy {
 public:
  ChasePolicy(ChaseOptions options, std::chrono::seconds period,
              std::shared_ptr<CarbonSignal> carbon)
      : LimitPolicy(period, required_signal(std::move(carbon), to_string(PolicyKind::kChase))),
        options_(options) {
    check_eta(options_.eta);
    check_max_carbon_intensity(options_.max_carbon_intensity);
  }
  PolicyKind kind() const noexcept override { return PolicyKind::kChase; }

  void begin(UtcTime now) override {
    if (options_.max_carbon_intensity != 0) return;  // given (the constructor checked it)
    try {
      options_.max_carbon_intensity = day_before_maximum(carbon()->forecast_series(), now);
    } catch (const Error& e) {
      spdlog::warn("no carbon forecast to normalise the chase cost: {}", e.what());
    }
    if (!(options_.max_carbon_intensity > 0)) {
      options_.max_carbon_intensity = 750;  // the published method's value
      spdlog::warn("chase: CI_max unknown; using the published 750 gCO2eq/kWh");
    }
  }

  LimitDecision decide(const DecisionInput& input) override {
    if (!(options_.max_carbon_intensity > 0)) begin(input.now);  // begin() was not called
    const auto intensity = period_intensity();
    if (!intensity || !std::isfinite(*intensity)) {
      return keep("no carbon intensity for this period; limit kept");
    }
    if (!selector_) selector_ = make_chase_selector(options_.eta, options_.max_carbon_intensity);
    auto selection = selector_->select(*input.profile, {*intensity});
    LimitDecision decision;
    decision.limit_w = selection.power_limit_w;
    decision.candidates = std::move(selection.candidates);
    decision.reason = fmt::format("{} at {:.1f} gCO2eq/kWh", selector_->describe(), *intensity);
    return decision;
  }

 private:
  ChaseOptions options_;
  std::unique_ptr<PowerLimitSelector> selector_;
};

// The planner; the oracle is the same planner, fed a signal that knows the future.
class PlannerPolicy final : public LimitPolicy {
 public:
  PlannerPolicy(PolicyKind kind, double slowdown_budget, PauseOptions pause,
                std::chrono::seconds period, std::shared_ptr<CarbonSignal> carbon)
      : LimitPolicy(period, required_signal(std::move(carbon), to_string(kind))),
        kind_(kind),
        slowdown_budget_(slowdown_budget),
        pause_(pause) {
    check_slowdown_budget(slowdown_budget_);
    check_pause_options(pause_);
  }
  PolicyKind kind() const noexcept override { return kind_; }
  LimitDecision decide(const DecisionInput& input) override;

 private:
  std::vector<PlanPeriod> periods_until(UtcTime now, UtcTime deadline,
                                        std::size_t* forecast_periods = nullptr) const;
  // Why deadline mode may not pause this job ("" when it may).
  std::string pause_refusal(const LimitProfile& profile, const JobProgress& progress,
                            double slack_s) const;
  LimitDecision decide_with_pauses(const DecisionInput& input, UtcTime deadline,
                                   const std::string& left);

  PolicyKind kind_;
  double slowdown_budget_;
  PauseOptions pause_;
  double lambda_hint_ = 0;  // the last plan's multiplier: the next search starts there
  bool told_short_forecast_ = false;
};

std::vector<PlanPeriod> PlannerPolicy::periods_until(UtcTime now, UtcTime deadline,
                                                     std::size_t* forecast_periods) const {
  std::vector<PlanPeriod> periods;
  for (UtcTime start = now; start < deadline;) {
    const UtcTime end = std::min(period_end_after(start, period()), deadline);
    periods.push_back({seconds_between(start, end), 0});
    start = end;
  }
  std::vector<CarbonPeriod> forecast;
  try {
    forecast = carbon()->forecast(periods.size(), period());
  } catch (const Error& e) {
    spdlog::warn("planner: no carbon forecast: {}", e.what());
  }
  if (forecast_periods) *forecast_periods = forecast.size();
  if (forecast.empty()) return {};
  double sum = 0;
  for (const auto& f : forecast) sum += f.g_per_kwh;
  const double mean = sum / static_cast<double>(forecast.size());
  for (std::size_t i = 0; i < periods.size(); ++i) {
    periods[i].carbon_intensity = i < forecast.size() ? forecast[i].g_per_kwh : mean;
  }
  return periods;
}

LimitDecision PlannerPolicy::decide(const DecisionInput& input) {
  const auto& profile = *input.profile;
  const auto now = input.now;
  const auto& progress = input.progress;
  LimitDecision decision;
  const double job_s_at_max = progress.work_total * profile.highest_limit_point().time_s;
  const UtcTime deadline = after_seconds(progress.start, (1 + slowdown_budget_) * job_s_at_max);
  const double work_left = std::max(0.0, progress.work_total - progress.work_done);
  const std::string left =
      fmt::format("{} {}", format_amount(work_left * progress.units_per_work), progress.unit);
  if (work_left <= 0) {
    decision.reason = fmt::format("planner: the job's {} are done; limit kept", progress.unit);
    return decision;
  }
  std::string no_pause;  // deadline mode refused: why (the plan is then limits only)
  if (pause_.mode != PauseMode::kNone && deadline > now) {
    auto paused = decide_with_pauses(input, deadline, left);
    if (paused.limit_w || paused.pause) return paused;
    no_pause = fmt::format("; no pause: {}", paused.reason);
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
    decision.reason = fmt::format(
        "planner: {} left cannot be done by the deadline; fastest limit{}", left, no_pause);
    return decision;
  }
  const auto& first = plan.periods.front();
  decision.limit_w = first.power_limit_w;
  if (first.first_fraction < 1 && first.second_limit_w != first.power_limit_w) {
    decision.planned_switch =
        LimitSwitch{after_seconds(now, first.first_fraction * periods.front().duration_s),
                    first.second_limit_w};
  }
  decision.reason = fmt::format(
      "planner: {} left, {:.0f} s to the deadline over {} periods, planned to end in {}; {} W{}{}",
      left, seconds_between(now, deadline), periods.size(), used, first.power_limit_w,
      decision.planned_switch ? fmt::format(" for {:.1f} %, then {} W", 100 * first.first_fraction,
                                            first.second_limit_w)
                              : "",
      no_pause);
  return decision;
}

std::string PlannerPolicy::pause_refusal(const LimitProfile& profile, const JobProgress& progress,
                                         double slack_s) const {
  const auto lowest = std::min_element(
      profile.points().begin(), profile.points().end(),
      [](const auto& a, const auto& b) { return a.power_limit_w < b.power_limit_w; });
  const double gpus = static_cast<double>(profile.info().gpu_count);
  if (pause_.mode == PauseMode::kIdle && pause_.idle_power_w > lowest->avg_power_w() / gpus) {
    return fmt::format(
        "the idle power {} W per GPU is above the {:.1f} W the GPUs draw at their "
        "minimum limit ({} W)",
        pause_.idle_power_w, lowest->avg_power_w() / gpus, lowest->power_limit_w);
  }
  if (!progress.paused && slack_s >= 0 && pause_.resume_s > slack_s) {  // < 0: catching up
    return fmt::format("a resume takes {} s, more than the {:.0f} s of slack left", pause_.resume_s,
                       slack_s);
  }
  return "";
}

LimitDecision PlannerPolicy::decide_with_pauses(const DecisionInput& input, UtcTime deadline,
                                                const std::string& left) {
  const auto& profile = *input.profile;
  const auto& progress = input.progress;
  const auto now = input.now;
  LimitDecision decision;
  std::size_t forecast_periods = 0;
  const auto periods = periods_until(now, deadline, &forecast_periods);
  if (periods.empty()) {
    // Nothing to plan with: never pause blind (the deadline is hard), run at the default.
    decision.limit_w = profile.highest_limit_point().power_limit_w;
    decision.reason = "planner: no carbon forecast; highest limit, no pause";
    return decision;
  }
  const double work_left = std::max(0.0, progress.work_total - progress.work_done);
  const double fastest_s =
      work_left * std::min_element(profile.points().begin(), profile.points().end(),
                                   [](const auto& a, const auto& b) { return a.time_s < b.time_s; })
                      ->time_s;
  const double slack_s = seconds_between(now, deadline) - fastest_s;
  if (auto refusal = pause_refusal(profile, progress, slack_s); !refusal.empty()) {
    return keep(std::move(refusal));  // limits only, saying why
  }
  const auto plan =
      plan_with_pauses(profile, periods, work_left, pause_, progress.paused, lambda_hint_);
  lambda_hint_ = plan.lambda;
  std::string forecast_note;
  if (forecast_periods < periods.size()) {
    forecast_note = fmt::format(
        "; the forecast covers {} of the {} periods to the deadline, the "
        "rest planned at its mean",
        forecast_periods, periods.size());
    if (!told_short_forecast_) {
      spdlog::warn(
          "planner: the carbon forecast reaches {} of the {} periods to the deadline; "
          "the rest is planned at its mean intensity",
          forecast_periods, periods.size());
      told_short_forecast_ = true;
    }
  }
  if (!plan.feasible) {
    const auto fastest =
        std::min_element(profile.points().begin(), profile.points().end(),
                         [](const auto& a, const auto& b) { return a.time_s < b.time_s; });
    decision.limit_w = fastest->power_limit_w;
    decision.reason = fmt::format(
        "planner: {} left, {:.0f} s to the deadline: catching up at the fastest limit{}", left,
        seconds_between(now, deadline), forecast_note);
    return decision;
  }
  const auto& first = plan.periods.front();
  if (first.paused) {
    double paused_s = 0;
    for (std::size_t t = 0; t < plan.periods.size() && plan.periods[t].paused; ++t) {
      paused_s += periods[t].duration_s;
    }
    decision.pause = PauseDecision{pause_.mode, after_seconds(now, paused_s)};
    decision.reason =
        fmt::format("planner: {} left, {:.0f} s to the deadline; pause ({}) until {}{}", left,
                    seconds_between(now, deadline), to_string(pause_.mode),
                    format_utc_time(decision.pause->resume_at), forecast_note);
    return decision;
  }
  decision.limit_w = first.power_limit_w;
  decision.reason =
      fmt::format("planner: {} left, {:.0f} s to the deadline over {} periods; {}{} W{}", left,
                  seconds_between(now, deadline), periods.size(), first.resumes ? "resume at " : "",
                  first.power_limit_w, forecast_note);
  return decision;
}

constexpr std::array<std::pair<PolicyKind, std::string_view>, 5> kPolicyNames{{
    {PolicyKind::kDefault, "default"},
    {PolicyKind::kStatic, "static"},
    {PolicyKind::kChase, "chase"},
    {PolicyKind::kPlanner, "planner"},
    {PolicyKind::kOracle, "oracle"},
}};

}  // namespace

// The variant lists its options in PolicyKind order.
static_assert(
    std::is_same_v<
        std::variant_alternative_t<static_cast<std::size_t>(PolicyKind::kOracle), PolicyOptions>,
        OracleOptions>);
static_assert(std::variant_size_v<PolicyOptions> == kPolicyNames.size());

PolicyKind kind_of(const PolicyOptions& options) noexcept {
  return static_cast<PolicyKind>(options.index());
}

std::string_view to_string(PolicyKind kind) noexcept {
  for (const auto& [known, name] : kPolicyNames) {
    if (known == kind) return name;
  }
  return "unknown";
}

std::string policy_label(const PolicyOptions& options) {
  if (const auto* chosen = std::get_if<StaticOptions>(&options); chosen && chosen->selector) {
    return std::string(chosen->selector->name());
  }
  if (std::holds_alternative<StaticOptions>(options)) return "zeus";  // the default selector
  return std::string(to_string(kind_of(options)));
}

PolicyKind parse_policy_kind(std::string_view name) {
  if (name == "zeus") return PolicyKind::kStatic;
  for (const auto& [kind, known] : kPolicyNames) {
    if (known == name) return kind;
  }
  throw Error(
      ErrorCode::kInvalidArgument,
      fmt::format("unknown policy '{}'; use default, static, zeus, chase, planner or oracle",
                  name));
}

PolicyOptions parse_policy(std::string_view name, const PolicyParameters& parameters) {
  return make_policy_options(parse_policy_kind(name), parameters);
}

PolicyOptions make_policy_options(PolicyKind kind, const PolicyParameters& parameters) {
  switch (kind) {
    case PolicyKind::kDefault:
      return FixedLimitOptions{parameters.limit_w};
    case PolicyKind::kStatic:
      return StaticOptions{make_zeus_selector(parameters.eta)};
    case PolicyKind::kChase:
      return ChaseOptions{parameters.eta, parameters.max_carbon_intensity};
    case PolicyKind::kPlanner:
      return PlannerOptions{parameters.slowdown_budget, parameters.pause};
    case PolicyKind::kOracle:
      return OracleOptions{parameters.slowdown_budget, parameters.pause};
  }
  throw Error(ErrorCode::kInternal, "unhandled policy kind");
}

UtcTime period_end_after(UtcTime time, std::chrono::seconds period) {
  const auto since_epoch =
      std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch());
  const auto index = since_epoch.count() / period.count();
  return UtcTime(std::chrono::seconds((index + 1) * period.count()));
}

LimitPolicy::LimitPolicy(std::chrono::seconds period, std::shared_ptr<CarbonSignal> carbon)
    : period_(period), carbon_(std::move(carbon)) {
  if (period_.count() <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the control period must be positive, not {} s", period_.count()));
  }
}

void LimitPolicy::begin(UtcTime) {}

std::optional<double> LimitPolicy::enter_period(UtcTime) {
  period_intensity_.reset();
  if (!carbon_) return period_intensity_;
  try {
    carbon_->refresh_if_due();
    const auto forecast = carbon_->forecast(1, period_);
    period_intensity_ = forecast.empty() ? carbon_->intensity_now() : forecast.front().g_per_kwh;
  } catch (const Error& e) {
    spdlog::warn("no carbon intensity for the coming period: {}", e.what());
  }
  return period_intensity_;
}

std::unique_ptr<LimitPolicy> make_limit_policy(const PolicyOptions& options,
                                               std::chrono::seconds period,
                                               std::shared_ptr<CarbonSignal> carbon) {
  return std::visit(
      [&](const auto& o) -> std::unique_ptr<LimitPolicy> {
        using Options = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<Options, FixedLimitOptions>) {
          return std::make_unique<FixedLimitPolicy>(o, period, std::move(carbon));
        } else if constexpr (std::is_same_v<Options, StaticOptions>) {
          return std::make_unique<StaticPolicy>(o, period, std::move(carbon));
        } else if constexpr (std::is_same_v<Options, ChaseOptions>) {
          return std::make_unique<ChasePolicy>(o, period, std::move(carbon));
        } else if constexpr (std::is_same_v<Options, PlannerOptions>) {
          return std::make_unique<PlannerPolicy>(PolicyKind::kPlanner, o.slowdown_budget, o.pause,
                                                 period, std::move(carbon));
        } else {
          return std::make_unique<PlannerPolicy>(PolicyKind::kOracle, o.slowdown_budget, o.pause,
                                                 period, std::move(carbon));
        }
      },
      options);
}

}  // namespace chase
