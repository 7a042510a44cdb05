// TrainingController: profiling, then a limit per period by policy (contract: chase/training.h).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

#include "chase/carbon.h"
#include "chase/energy_monitor.h"
#include "chase/error.h"
#include "chase/limit_policy.h"
#include "chase/training.h"

namespace chase {
namespace {

constexpr double kNoIntensity = std::numeric_limits<double>::quiet_NaN();

void check_options(const TrainingOptions& options) {
  const auto& policy = options.policy;
  if (policy != "static" && policy != "chase" && policy != "planner") {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("unknown policy '{}'; use static, chase or planner", policy));
  }
  if (policy != "static" && !options.carbon) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("the {} policy needs a carbon signal (TrainingOptions::carbon)", policy));
  }
  if (options.period.count() <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "the control period must be positive");
  }
  if (policy == "planner") {
    if (options.total_steps == 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  "the planner needs the job's total steps (epochs × steps per epoch)");
    }
    if (!(options.slowdown_budget >= 0) || !std::isfinite(options.slowdown_budget)) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("the slowdown budget must be ≥ 0 (0.1 = 10 % longer), not {}",
                              options.slowdown_budget));
    }
  }
}

PowerLimitOptimizerOptions profiling_options(const TrainingOptions& options,
                                             std::shared_ptr<Clock> clock) {
  auto profiling = options.profiling;
  profiling.clock = std::move(clock);
  return profiling;
}

EnergyMonitorOptions monitor_options(const TrainingOptions& options, std::shared_ptr<Clock> clock) {
  EnergyMonitorOptions monitor;
  monitor.gpus = options.profiling.gpus;
  monitor.clock = std::move(clock);
  return monitor;
}

}  // namespace

class TrainingController::Impl {
 public:
  Impl(std::shared_ptr<GpuBackend> gpus, TrainingOptions options)
      : options_((check_options(options), std::move(options))),
        clock_(options_.clock ? options_.clock : system_clock()),
        optimizer_(gpus, profiling_options(options_, clock_)),
        monitor_(gpus, nullptr, monitor_options(options_, clock_)),
        limit_policy_(make_limit_policy(options_)) {}

  ~Impl() {
    if (period_open_) monitor_.cancel_window(period_window_name());
  }

  void on_train_begin() {
    if (started_) return;
    started_ = true;
    train_start_ = clock_->utc_now();
    if (options_.carbon && !options_.carbon->status().has_data) options_.carbon->refresh();
    if (limit_policy_) limit_policy_->begin(train_start_);
    open_period(train_start_);
  }

  void on_step_begin() {
    if (!started_) on_train_begin();
    const bool profiling_was_done = optimizer_.state() == OptimizerState::kDone;
    optimizer_.on_step_begin();
    note_limit();
    const auto now = clock_->utc_now();
    if (now >= period_end_) {
      close_period(now);
      open_period(now);
      if (optimizer_.state() == OptimizerState::kDone) decide(now);
    } else if (!profiling_was_done && optimizer_.state() == OptimizerState::kDone) {
      decide(now);  // profiling just ended: the policy takes over mid-period
    } else if (planned_switch_ && now >= planned_switch_->at) {
      optimizer_.apply_limit(planned_switch_->limit_w);
      planned_switch_.reset();
      note_limit();
    }
  }

  void on_step_end() {
    ++steps_done_;
    ++current_.steps;
  }

  void on_epoch_end() {
    optimizer_.on_epoch_end();
    note_limit();
  }

  void on_train_end() {
    if (!started_ || ended_) return;
    ended_ = true;
    close_period(clock_->utc_now());
  }

  RunReport report() const {
    RunReport report;
    report.policy = options_.policy;
    report.periods = periods_;
    report.profiled = !optimizer_.loaded_saved_profile();
    for (const auto& p : periods_) {
      report.time_s += p.time_s;
      report.steps += p.steps;
      report.energy_j += p.energy_j;
      if (std::isfinite(p.carbon_g)) report.carbon_g += p.carbon_g;
    }
    return report;
  }

  const PowerLimitOptimizer& optimizer() const noexcept { return optimizer_; }

 private:
  std::string period_window_name() const { return fmt::format("period-{}", periods_.size()); }

  void open_period(UtcTime now) {
    current_ = PeriodReport{};
    current_.start = now;
    current_.carbon_intensity = coming_period_intensity().value_or(kNoIntensity);
    current_.limits_w.push_back(optimizer_.current_limit_w());  // never empty from here on
    current_.reason = optimizer_.state() == OptimizerState::kDone
                          ? "no change"
                          : fmt::format("profiling ({})", to_string(optimizer_.state()));
    period_end_ = period_end_after(now, options_.period);
    planned_switch_.reset();
    monitor_.begin_window(period_window_name());
    period_open_ = true;
  }

  void close_period(UtcTime now) {
    if (!period_open_) return;
    const auto measurement = monitor_.end_window(period_window_name());
    period_open_ = false;
    current_.end = now;
    current_.time_s = measurement.time_s;
    current_.energy_j = measurement.gpu_energy_j();
    current_.carbon_g = std::isfinite(current_.carbon_intensity)
                            ? emissions_g(current_.energy_j, current_.carbon_intensity)
                            : kNoIntensity;
    periods_.push_back(current_);
  }

  // Records a limit change in the current period.
  void note_limit() {
    const double limit = optimizer_.current_limit_w();
    if (limit != current_.limits_w.back()) current_.limits_w.push_back(limit);
  }

  std::optional<double> coming_period_intensity() const {
    if (!options_.carbon) return std::nullopt;
    return chase::coming_period_intensity(*options_.carbon, options_.period);
  }

  void decide(UtcTime now) {
    if (options_.policy == "static") {
      const auto& selection = optimizer_.selection();
      current_.reason = selection
                            ? fmt::format("static: {} W from profiling", selection->power_limit_w)
                            : "static: profiling was abandoned; maximum limit";
      return;
    }
    if (!optimizer_.profile()) {
      current_.reason = "profiling was abandoned; maximum limit";
      return;
    }
    const double intensity = current_.carbon_intensity;
    auto decision = limit_policy_->decide(
        *optimizer_.profile(), now,
        std::isfinite(intensity) ? std::optional<double>(intensity) : std::nullopt, progress());
    if (decision.limit_w) optimizer_.apply_limit(*decision.limit_w);
    planned_switch_ = decision.planned_switch;
    current_.reason = std::move(decision.reason);
    if (!decision.candidates.empty()) current_.candidates = std::move(decision.candidates);
    note_limit();
  }

  double steps_per_window() const {
    const auto saved = optimizer_.profile()->info().steps_per_window;
    return static_cast<double>(saved > 0 ? saved : options_.profiling.profile_steps);
  }

  // The job's progress in the profile's work units (profiling windows).
  JobProgress progress() const {
    JobProgress progress;
    progress.start = train_start_;
    progress.units_per_work = steps_per_window();
    progress.work_total = static_cast<double>(options_.total_steps) / progress.units_per_work;
    progress.work_done =
        static_cast<double>(std::min(options_.total_steps, steps_done_)) / progress.units_per_work;
    progress.unit = "steps";
    return progress;
  }

  static std::unique_ptr<LimitPolicy> make_limit_policy(const TrainingOptions& options) {
    if (options.policy == "static") return nullptr;
    LimitPolicyOptions policy;
    policy.policy = options.policy;
    policy.eta = options.eta;
    policy.max_carbon_intensity = options.max_carbon_intensity;
    policy.period = options.period;
    policy.slowdown_budget = options.slowdown_budget;
    return std::make_unique<LimitPolicy>(std::move(policy), options.carbon);
  }

  TrainingOptions options_;
  std::shared_ptr<Clock> clock_;
  PowerLimitOptimizer optimizer_;
  EnergyMonitor monitor_;
  std::unique_ptr<LimitPolicy> limit_policy_;
  bool started_ = false;
  bool ended_ = false;
  bool period_open_ = false;
  UtcTime train_start_{};
  UtcTime period_end_{};
  std::size_t steps_done_ = 0;
  PeriodReport current_;
  std::vector<PeriodReport> periods_;
  std::optional<LimitSwitch> planned_switch_;
};

TrainingController::TrainingController(std::shared_ptr<GpuBackend> gpus, TrainingOptions options)
    : impl_(std::make_unique<Impl>(std::move(gpus), std::move(options))) {}
TrainingController::~TrainingController() = default;

void TrainingController::on_train_begin() { impl_->on_train_begin(); }
void TrainingController::on_epoch_begin() {}
void TrainingController::on_epoch_end() { impl_->on_epoch_end(); }
void TrainingController::on_step_begin() { impl_->on_step_begin(); }
void TrainingController::on_step_end() { impl_->on_step_end(); }
void TrainingController::on_train_end() { impl_->on_train_end(); }
const PowerLimitOptimizer& TrainingController::optimizer() const noexcept {
  return impl_->optimizer();
}
RunReport TrainingController::report() const { return impl_->report(); }

}  // namespace chase
