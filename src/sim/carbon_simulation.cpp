// One job over a carbon-intensity trace, period by period (contract: chase/carbon_simulation.h).
#include "chase/carbon_simulation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>

#include "chase/carbon_provider.h"
#include "chase/carbon_signal.h"
#include "chase/error.h"
#include "chase/forecast.h"
#include "chase/limit_policy.h"
#include "chase/selector.h"

namespace chase {
namespace {

constexpr double kNoIntensity = std::numeric_limits<double>::quiet_NaN();
constexpr auto kDay = std::chrono::hours(24);

double seconds_between(UtcTime from, UtcTime to) {
  return std::chrono::duration<double>(to - from).count();
}

UtcTime after_seconds(UtcTime time, double seconds) {
  return time + std::chrono::duration_cast<UtcTime::duration>(std::chrono::duration<double>(seconds));
}

std::string describe_trace(const CarbonSeries& carbon) {
  return carbon.source().empty() ? std::string("the carbon trace")
                                 : fmt::format("the carbon trace '{}'", carbon.source());
}

bool uses_signal(const std::string& policy) {
  return policy == "chase" || policy == "planner" || policy == "oracle";
}

void check_options(const LimitProfile& profile, const CarbonSeries& carbon,
                   const CarbonSimulationOptions& options) {
  const auto& policies = carbon_simulation_policies();
  if (std::find(policies.begin(), policies.end(), options.policy) == policies.end()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("unknown policy '{}'; use default, zeus, chase, planner or oracle",
                            options.policy));
  }
  if (!(options.epochs > 0) || !std::isfinite(options.epochs)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the job needs a positive number of epochs, not {}", options.epochs));
  }
  if (options.period.count() <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the control period must be positive, not {} s", options.period.count()));
  }
  if (!(options.eta >= 0 && options.eta <= 1)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("eta must be in [0, 1] (the weight of energy or carbon), not {}",
                            options.eta));
  }
  if (!(options.slowdown_budget >= 0) || !std::isfinite(options.slowdown_budget)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the slack must be ≥ 0 (0.1 = finish within 10 % of the default "
                            "time), not {}",
                            options.slowdown_budget));
  }
  if (carbon.empty()) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{} is empty", describe_trace(carbon)));
  }
  if (options.start < carbon.start() || options.start >= carbon.end()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the start {} is outside {}, which covers [{}, {}); choose a start "
                            "inside it",
                            format_utc_time(options.start), describe_trace(carbon),
                            format_utc_time(carbon.start()), format_utc_time(carbon.end())));
  }
  if (profile.points().empty()) {
    throw Error(ErrorCode::kInvalidArgument, "the job's profile has no power limits");
  }
}

// CI_max of the chase cost: the highest true intensity in the day before the start (§3).
double max_intensity_before(const CarbonSeries& carbon, UtcTime start) {
  const auto maximum = carbon.max_between(start - kDay, start);
  if (!maximum) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("chase needs the day before the start ({}) to set CI_max, and {} has "
                            "no point in it; start at least a day after {} or pass CI_max",
                            format_utc_time(start), describe_trace(carbon),
                            format_utc_time(carbon.start())));
  }
  return *maximum;
}

const LimitMeasurement& point_at(const LimitProfile& profile, double limit_w) {
  for (const auto& point : profile.points()) {
    if (point.power_limit_w == limit_w) return point;
  }
  throw Error(ErrorCode::kInternal, fmt::format("no profile point at {} W", limit_w));
}

// How the job runs during a segment: epochs per second and power.
struct Pace {
  double epoch_s = 0;
  double power_w = 0;
  double limit_w = 0;  // 0: profiling
};

class Simulation {
 public:
  Simulation(const LimitProfile& profile, const CarbonSeries& carbon,
             const CarbonSimulationOptions& options)
      : profile_(profile), carbon_(carbon), options_(options), now_(options.start) {
    result_.policy = options.policy;
    result_.forecast = "none";
  }

  CarbonSimulationResult run() {
    if (uses_signal(options_.policy)) start_signal();
    period_end_ = period_end_after(now_, options_.period);
    period_forecast_ = coming_period_intensity();
    if (options_.policy == "default") {
      pace_ = pace_at(profile_.highest_limit_point().power_limit_w);
      record_decision("default: the highest limit, no profiling");
    } else {
      profile_first_epoch();
      if (work_done_ < options_.epochs) decide();
    }
    while (work_done_ < options_.epochs) {
      UtcTime until = period_end_;
      if (switch_ && switch_->at < until) until = switch_->at;
      advance(until, options_.epochs);
      if (work_done_ >= options_.epochs) break;
      if (switch_ && now_ >= switch_->at) {
        pace_ = pace_at(switch_->limit_w);
        switch_.reset();
        record_decision("planner: the planned switch inside the period");
      }
      if (now_ >= period_end_) {
        next_period();
        decide();
      }
    }
    return std::move(result_);
  }

 private:
  Pace pace_at(double limit_w) const {
    const auto& point = point_at(profile_, limit_w);
    return {point.time_s, point.avg_power_w(), limit_w};
  }

  // The profiling epoch at the mean time and energy over all limits (ALGORITHMS.md §6).
  void profile_first_epoch() {
    double time_s = 0;
    double energy_j = 0;
    for (const auto& point : profile_.points()) {
      time_s += point.time_s;
      energy_j += point.energy_j;
    }
    const auto count = static_cast<double>(profile_.points().size());
    pace_ = {time_s / count, energy_j / time_s, 0};
    const double profiling_work = std::min(1.0, options_.epochs);
    while (work_done_ < profiling_work) {
      advance(period_end_, profiling_work);
      if (now_ >= period_end_) next_period();
    }
  }

  void next_period() {
    period_end_ = period_end_after(now_, options_.period);
    period_forecast_ = coming_period_intensity();
  }

  // Runs at the current pace until `until` or until `work_goal` epochs are done.
  void advance(UtcTime until, double work_goal) {
    if (until > carbon_.end()) until = carbon_.end();
    if (now_ >= carbon_.end()) throw_trace_too_short();
    double duration_s = seconds_between(now_, until);
    double work = duration_s / pace_.epoch_s;
    UtcTime end = until;
    if (work_done_ + work >= work_goal) {
      work = work_goal - work_done_;
      duration_s = work * pace_.epoch_s;
      end = std::min(until, after_seconds(now_, duration_s));
      work_done_ = work_goal;
    } else {
      work_done_ += work;
    }
    if (duration_s <= 0) return;
    SimulationSegment segment;
    segment.start = now_;
    segment.duration_s = duration_s;
    segment.power_limit_w = pace_.limit_w;
    segment.profiling = pace_.limit_w == 0;
    segment.forecast_intensity = period_forecast_;
    segment.epochs = work;
    segment.energy_j = pace_.power_w * duration_s;
    segment.carbon_g = emissions_g(segment.energy_j, now_, end, carbon_);
    segment.carbon_intensity = segment.carbon_g / segment.energy_j * kJoulesPerKwh;
    result_.timeline.push_back(segment);
    result_.carbon_g += segment.carbon_g;
    result_.energy_j += segment.energy_j;
    result_.time_s += duration_s;
    result_.epochs += work;
    now_ = end;
    if (work_done_ < work_goal && now_ >= carbon_.end()) throw_trace_too_short();
  }

  [[noreturn]] void throw_trace_too_short() const {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} ends at {}, before the job started at {} finished ({:.2f} of {} "
                            "epochs done); start earlier, run fewer epochs or use a longer trace",
                            describe_trace(carbon_), format_utc_time(carbon_.end()),
                            format_utc_time(options_.start), work_done_, options_.epochs));
  }

  void start_signal() {
    clock_ = std::make_shared<ManualClock>(options_.start);
    CarbonSignalOptions signal;
    signal.clock = clock_;
    signal.refresh_interval = options_.period;
    const double default_job_s = options_.epochs * profile_.highest_limit_point().time_s;
    const auto planning_span = std::chrono::seconds(static_cast<std::int64_t>(
        std::ceil((1 + options_.slowdown_budget) * default_job_s)));
    // Chase needs the coming period (two, in case a decision lands mid-period and the next
    // boundary finds the refresh not yet due); the planners need everything up to the deadline.
    signal.horizon = options_.policy == "chase" ? 2 * options_.period
                                                : planning_span + 2 * options_.period;
    if (options_.policy == "oracle") {
      result_.forecast = "perfect";
    } else {
      signal.forecaster = make_forecaster(options_.forecast_model);
      result_.forecast = std::string(signal.forecaster->name());
      const auto resolution = carbon_.resolution();
      const auto steps = static_cast<std::size_t>(
          (signal.horizon.count() + resolution.count() - 1) / resolution.count());
      signal.history_window = options_.fit_history +
                              resolution * static_cast<std::int64_t>(
                                               signal.forecaster->history_needed(steps));
    }
    signal_ = std::make_shared<CarbonSignal>(
        make_replay_provider(carbon_, clock_, "trace"), std::move(signal));
    if (!signal_->refresh()) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("the {} policy has no carbon forecast at the start {}: {}; start "
                              "later in {}, after enough history for the forecaster",
                              options_.policy, format_utc_time(options_.start),
                              signal_->status().stale_reason, describe_trace(carbon_)));
    }
    LimitPolicyOptions policy;
    policy.policy = options_.policy == "oracle" ? "planner" : options_.policy;
    policy.eta = options_.eta;
    policy.period = options_.period;
    policy.slowdown_budget = options_.slowdown_budget;
    if (options_.policy == "chase") {
      policy.max_carbon_intensity = options_.max_carbon_intensity > 0
                                        ? options_.max_carbon_intensity
                                        : max_intensity_before(carbon_, options_.start);
      result_.max_carbon_intensity = policy.max_carbon_intensity;
    }
    policy_ = std::make_unique<LimitPolicy>(std::move(policy), signal_);
    policy_->begin(options_.start);
  }

  void sync_clock() {
    if (clock_) clock_->advance(now_ - clock_->utc_now());
  }

  double coming_period_intensity() {
    if (!policy_) return kNoIntensity;
    sync_clock();
    return policy_->coming_period_intensity().value_or(kNoIntensity);
  }

  void decide() {
    if (options_.policy == "zeus") {
      if (!result_.decisions.empty()) return;  // static: chosen once, after profiling
      const auto selector = make_zeus_selector(options_.eta);
      pace_ = pace_at(selector->select(profile_).power_limit_w);
      record_decision(fmt::format("{} after profiling", selector->describe()));
      return;
    }
    if (!policy_) return;
    sync_clock();
    JobProgress progress;
    progress.start = options_.start;
    progress.work_total = options_.epochs;
    progress.work_done = work_done_;
    progress.unit = "epochs";
    auto decision = policy_->decide(
        profile_, now_,
        std::isfinite(period_forecast_) ? std::optional<double>(period_forecast_) : std::nullopt,
        progress);
    if (decision.limit_w) {
      pace_ = pace_at(*decision.limit_w);
    } else if (pace_.limit_w == 0) {
      pace_ = pace_at(profile_.highest_limit_point().power_limit_w);  // after profiling
    }
    switch_ = decision.planned_switch;
    record_decision(std::move(decision.reason));
  }

  void record_decision(std::string reason) {
    result_.decisions.push_back({now_, pace_.limit_w, std::move(reason)});
  }

  const LimitProfile& profile_;
  const CarbonSeries& carbon_;
  const CarbonSimulationOptions& options_;
  UtcTime now_;
  UtcTime period_end_{};
  double period_forecast_ = kNoIntensity;
  double work_done_ = 0;
  Pace pace_;
  std::optional<LimitSwitch> switch_;
  std::shared_ptr<ManualClock> clock_;
  std::shared_ptr<CarbonSignal> signal_;
  std::unique_ptr<LimitPolicy> policy_;
  CarbonSimulationResult result_;
};

}  // namespace

const std::vector<std::string>& carbon_simulation_policies() {
  static const std::vector<std::string> policies{"default", "zeus", "chase", "planner", "oracle"};
  return policies;
}

CarbonSimulationResult simulate_carbon(const LimitProfile& epochs, const CarbonSeries& carbon,
                                       const CarbonSimulationOptions& options) {
  check_options(epochs, carbon, options);
  return Simulation(epochs, carbon, options).run();
}

}  // namespace chase
