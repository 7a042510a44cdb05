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
#include "chase/period_driver.h"
#include "chase/selector.h"
#include "chase/zeus_trace.h"

namespace chase {
namespace {

constexpr double kNoIntensity = std::numeric_limits<double>::quiet_NaN();
constexpr auto kDay = std::chrono::hours(24);

std::string describe_trace(const CarbonSeries& carbon) {
  return carbon.source().empty() ? std::string("the carbon trace")
                                 : fmt::format("the carbon trace '{}'", carbon.source());
}

bool uses_signal(PolicyKind kind) {
  return kind == PolicyKind::kChase || kind == PolicyKind::kPlanner || kind == PolicyKind::kOracle;
}

// The planners' slack; 0 for the other policies.
double slowdown_budget_of(const PolicyOptions& policy) {
  if (const auto* planner = std::get_if<PlannerOptions>(&policy)) return planner->slowdown_budget;
  if (const auto* oracle = std::get_if<OracleOptions>(&policy)) return oracle->slowdown_budget;
  return 0;
}

// The planners' pause options; kNone for the other policies.
PauseOptions pause_of(const PolicyOptions& policy) {
  if (const auto* planner = std::get_if<PlannerOptions>(&policy)) return planner->pause;
  if (const auto* oracle = std::get_if<OracleOptions>(&policy)) return oracle->pause;
  return {};
}

const LimitMeasurement& lowest_limit_point(const LimitProfile& profile) {
  return *std::min_element(
      profile.points().begin(), profile.points().end(),
      [](const auto& a, const auto& b) { return a.power_limit_w < b.power_limit_w; });
}

// Deadline mode's bad input: a deadline the job cannot meet, an idle power the GPUs cannot be
// held at, a resume that costs more than the slack.
void check_deadline_mode(const LimitProfile& profile, const CarbonSimulationOptions& options) {
  const auto pause = pause_of(options.policy);
  if (pause.mode == PauseMode::kNone) return;
  check_pause_options(pause);
  const double slack = slowdown_budget_of(options.policy);
  const double default_s = options.epochs * profile.highest_limit_point().time_s;
  const double fastest_epoch_s =
      std::min_element(profile.points().begin(), profile.points().end(),
                       [](const auto& a, const auto& b) { return a.time_s < b.time_s; })
          ->time_s;
  const double profiled = options.profiling_epoch ? std::min(1.0, options.epochs) : 0;
  const double shortest_s =
      profiling_epoch(profile).time_s * profiled + (options.epochs - profiled) * fastest_epoch_s;
  if ((1 + slack) * default_s < shortest_s) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the deadline (slack {}: {:.2f} h) is shorter than the job takes at "
                            "full speed after its profiling epoch ({:.2f} h); give a slack of at "
                            "least {:.4f}",
                            slack, (1 + slack) * default_s / 3600, shortest_s / 3600,
                            shortest_s / default_s - 1));
  }
  const auto& lowest = lowest_limit_point(profile);
  const double gpus = static_cast<double>(profile.info().gpu_count);
  if (pause.mode == PauseMode::kIdle && pause.idle_power_w > lowest.avg_power_w() / gpus) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the idle power {} W per GPU is above the {:.1f} W the job draws at "
                            "its minimum limit ({} W); give an idle power at most that",
                            pause.idle_power_w, lowest.avg_power_w() / gpus, lowest.power_limit_w));
  }
  const double slack_s = (1 + slack) * default_s - shortest_s;
  if (pause.resume_s > slack_s) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("a resume takes {} s, more than the job's {:.0f} s of slack: pausing "
                            "could never pay; give a larger slack, a shorter resume cost or "
                            "--pause none",
                            pause.resume_s, slack_s));
  }
}

void check_options(const LimitProfile& profile, const CarbonSeries& carbon,
                   const CarbonSimulationOptions& options) {
  if (!(options.epochs > 0) || !std::isfinite(options.epochs)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the job needs a positive number of epochs, not {}", options.epochs));
  }
  if (options.period.count() <= 0) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("the control period must be positive, not {} s", options.period.count()));
  }
  options.exogenous_publication.validate("the simulation");
  const double slack = slowdown_budget_of(options.policy);
  if (!(slack >= 0) || !std::isfinite(slack)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the slack must be ≥ 0 (0.1 = finish within 10 % of the default "
                            "time), not {}",
                            slack));
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
  check_deadline_mode(profile, options);
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
  double epoch_s = 0;  // +∞: no work (paused or resuming)
  double power_w = 0;
  double limit_w = 0;  // 0: profiling
};

constexpr double kNoWork = std::numeric_limits<double>::infinity();

// The job as the period driver sees it: a fluid over the trace, in virtual time.
class Simulation final : public ControlledJob {
 public:
  Simulation(const LimitProfile& profile, const CarbonSeries& carbon,
             const CarbonSimulationOptions& options)
      : profile_(profile),
        carbon_(carbon),
        options_(options),
        kind_(kind_of(options.policy)),
        now_(options.start) {
    result_.policy = policy_label(options.policy);
    result_.forecast = "none";
  }

  CarbonSimulationResult run() {
    auto signal = uses_signal(kind_) ? start_signal() : nullptr;
    policy_ = make_limit_policy(policy_options(), options_.period, std::move(signal));
    PeriodDriver driver(*policy_, *this);
    driver.begin(now_);
    if (policy_->needs_profile() && options_.profiling_epoch) profile_first_epoch(driver);
    if (work_done_ < options_.epochs) poll(driver);
    while (work_done_ < options_.epochs) {
      advance(driver.next_event(), options_.epochs);
      if (work_done_ >= options_.epochs) break;
      poll(driver);
      if (options_.on_progress) options_.on_progress(work_done_);
    }
    driver.end(now_);
    return std::move(result_);
  }

  // ---- ControlledJob ----

  JobProgress progress() const override {
    JobProgress progress;
    progress.start = options_.start;
    progress.work_total = options_.epochs;
    progress.work_done = work_done_;
    progress.unit = "epochs";
    progress.paused = paused_;
    return progress;
  }
  const LimitProfile* profile() const override { return &profile_; }
  double highest_limit_w() const override { return profile_.highest_limit_point().power_limit_w; }
  void apply_limit(double watts) override {
    if (paused_) {  // a resume: reloading first, then the limit
      paused_ = false;
      ++result_.resumes;
      resume_left_s_ = pause_.resume_s;
    }
    pace_ = pace_at(watts);
  }

  void pause(const PauseDecision&) override {
    paused_ = true;
    resume_left_s_ = 0;
    pace_ = {kNoWork, pause_power_w(profile_, pause_), lowest_limit_point(profile_).power_limit_w};
  }

  void period_began(UtcTime, std::optional<double> intensity) override {
    period_forecast_ = intensity.value_or(kNoIntensity);
  }

  void decided(UtcTime, const LimitDecision& decision) override {
    if (pace_.limit_w == 0) pace_ = pace_at(highest_limit_w());  // profiling ended, limit kept
    if (!decision.repeat) record_decision(decision.reason);
  }

  void switched(UtcTime, double) override {
    record_decision("planner: the planned switch inside the period");
  }

 private:
  // CI_max of the chase cost is the trace's own (the true day before the start), unless given.
  PolicyOptions policy_options() {
    auto policy = options_.policy;
    if (auto* chase = std::get_if<ChaseOptions>(&policy)) {
      if (chase->max_carbon_intensity == 0) {  // 0: not given (other values: checked by the policy)
        chase->max_carbon_intensity = max_intensity_before(carbon_, options_.start);
      }
      result_.max_carbon_intensity = chase->max_carbon_intensity;
    }
    return policy;
  }

  void poll(PeriodDriver& driver, bool control_ready = true) {
    sync_clock();
    driver.poll(now_, control_ready);
  }

  Pace pace_at(double limit_w) const {
    const auto& point = point_at(profile_, limit_w);
    return {point.time_s, point.avg_power_w(), limit_w};
  }

  // The profiling epoch (profiling_epoch(): the Zeus artifact's semantics).
  void profile_first_epoch(PeriodDriver& driver) {
    const auto epoch = profiling_epoch(profile_);
    pace_ = {epoch.time_s, epoch.avg_power_w, 0};
    const double profiling_work = std::min(1.0, options_.epochs);
    while (work_done_ < profiling_work) {
      advance(driver.period_end(), profiling_work);
      if (now_ >= driver.period_end()) poll(driver, false);
    }
  }

  // Runs at the current pace until `until` or until `work_goal` epochs are done; a resume due
  // first takes its time (and ends the call early).
  void advance(UtcTime until, double work_goal) {
    if (until > carbon_.end()) until = carbon_.end();
    if (now_ >= carbon_.end()) throw_trace_too_short();
    const bool resuming = resume_left_s_ > 0;
    const Pace pace =
        resuming ? Pace{kNoWork, resume_energy_j(profile_, pause_) / pause_.resume_s, pace_.limit_w}
                 : pace_;
    if (resuming) {
      until = std::min(until, after_seconds(now_, resume_left_s_));
      resume_left_s_ = std::max(0.0, resume_left_s_ - seconds_between(now_, until));
    }
    double duration_s = seconds_between(now_, until);
    double work = duration_s / pace.epoch_s;
    UtcTime end = until;
    if (work_done_ + work >= work_goal) {
      work = work_goal - work_done_;
      duration_s = work * pace.epoch_s;
      end = std::min(until, after_seconds(now_, duration_s));
      work_done_ = work_goal;
    } else {
      work_done_ += work;
    }
    if (duration_s <= 0) return;
    SimulationSegment segment;
    segment.start = now_;
    segment.duration_s = duration_s;
    segment.power_limit_w = pace.limit_w;
    segment.profiling = pace.limit_w == 0;
    segment.paused = paused_;
    segment.resuming = resuming;
    segment.forecast_intensity = period_forecast_;
    segment.epochs = work;
    segment.energy_j = pace.power_w * duration_s;
    segment.carbon_g = emissions_g(segment.energy_j, now_, end, carbon_);
    segment.carbon_intensity = segment.energy_j > 0
                                   ? segment.carbon_g / segment.energy_j * kJoulesPerKwh
                                   : emissions_g(kJoulesPerKwh, now_, end, carbon_);  // the mean
    if (paused_) result_.paused_s += duration_s;
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

  // The signal the policy reads: a replay of the trace on a clock the simulation advances, with a
  // forecaster learning from its past (or, for the oracle, the trace's own future).
  std::shared_ptr<CarbonSignal> start_signal() {
    clock_ = std::make_shared<ManualClock>(options_.start);
    CarbonSignalOptions signal;
    signal.clock = clock_;
    signal.refresh_interval = options_.period;
    const double default_job_s = options_.epochs * profile_.highest_limit_point().time_s;
    const auto planning_span = std::chrono::seconds(static_cast<std::int64_t>(
        std::ceil((1 + slowdown_budget_of(options_.policy)) * default_job_s)));
    // Chase needs the coming period (two, in case a decision lands mid-period and the next
    // boundary finds the refresh not yet due); the planners need everything up to the deadline.
    signal.horizon =
        kind_ == PolicyKind::kChase ? 2 * options_.period : planning_span + 2 * options_.period;
    if (kind_ == PolicyKind::kOracle) {
      result_.forecast = "perfect";
    } else {
      // A trace loaded with its day-ahead columns (weather, generation forecasts) lends them to
      // the forecaster for the hours they are published ahead (options_.exogenous_publication).
      ForecasterOptions forecaster;
      forecaster.use_exogenous = !carbon_.exogenous().empty();
      signal.forecaster = make_forecaster(options_.forecast_model, forecaster);
      if (forecaster.use_exogenous) {
        signal.inputs_forecaster = make_forecaster(options_.forecast_model, forecaster);
        signal.inputs_refit_interval = options_.inputs_refit_interval;
      }
      result_.forecast = std::string(signal.forecaster->name());
      const auto resolution = carbon_.resolution();
      const auto steps = static_cast<std::size_t>(
          (signal.horizon.count() + resolution.count() - 1) / resolution.count());
      signal.history_window =
          options_.fit_history +
          resolution * static_cast<std::int64_t>(signal.forecaster->history_needed(steps));
    }
    auto carbon_signal = std::make_shared<CarbonSignal>(
        make_replay_provider(carbon_, clock_, "trace", options_.exogenous_publication),
        std::move(signal));
    if (!carbon_signal->refresh()) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("the {} policy has no carbon forecast at the start {}: {}; start "
                              "later in {}, after enough history for the forecaster",
                              to_string(kind_), format_utc_time(options_.start),
                              carbon_signal->status().stale_reason, describe_trace(carbon_)));
    }
    return carbon_signal;
  }

  void sync_clock() {
    if (clock_) clock_->advance(now_ - clock_->utc_now());
  }

  void record_decision(std::string reason) {
    result_.decisions.push_back({now_, pace_.limit_w, std::move(reason)});
  }

  const LimitProfile& profile_;
  const CarbonSeries& carbon_;
  const CarbonSimulationOptions& options_;
  PolicyKind kind_;
  UtcTime now_;
  double period_forecast_ = kNoIntensity;
  double work_done_ = 0;
  Pace pace_;
  PauseOptions pause_ = pause_of(options_.policy);
  bool paused_ = false;
  double resume_left_s_ = 0;
  std::shared_ptr<ManualClock> clock_;
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
