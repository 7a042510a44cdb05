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
#include "chase/planner.h"
#include "chase/training.h"

namespace chase {
namespace {

constexpr double kNoIntensity = std::numeric_limits<double>::quiet_NaN();

double seconds_between(UtcTime from, UtcTime to) {
  return std::chrono::duration<double>(to - from).count();
}

// The end of the period holding `time`, periods being UTC multiples of `period`.
UtcTime period_end_after(UtcTime time, std::chrono::seconds period) {
  const auto since_epoch =
      std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch());
  const auto index = since_epoch.count() / period.count();
  return UtcTime(std::chrono::seconds((index + 1) * period.count()));
}

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
        monitor_(gpus, nullptr, monitor_options(options_, clock_)) {}

  ~Impl() {
    if (period_open_) monitor_.cancel_window(period_window_name());
  }

  void on_train_begin() {
    if (started_) return;
    started_ = true;
    train_start_ = clock_->utc_now();
    if (options_.carbon && !options_.carbon->status().has_data) options_.carbon->refresh();
    if (options_.policy == "chase") choose_max_intensity();
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
  struct PlannedSwitch {
    UtcTime at;
    double limit_w;
  };

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
    try {
      options_.carbon->refresh_if_due();
      const auto forecast = options_.carbon->forecast(1, options_.period);
      if (!forecast.empty()) return forecast.front().g_per_kwh;
      return options_.carbon->intensity_now();
    } catch (const Error& e) {
      spdlog::warn("no carbon intensity for the coming period: {}", e.what());
      return std::nullopt;
    }
  }

  void choose_max_intensity() {
    if (options_.max_carbon_intensity > 0) return;
    try {
      const auto series = options_.carbon->forecast_series();
      if (!series.empty()) {
        options_.max_carbon_intensity =
            *std::max_element(series.values().begin(), series.values().end());
      }
    } catch (const Error& e) {
      spdlog::warn("no carbon forecast to normalise the chase cost: {}", e.what());
    }
    if (!(options_.max_carbon_intensity > 0)) {
      options_.max_carbon_intensity = 750;  // the published method's value
      spdlog::warn("chase: CI_max unknown; using the published 750 gCO2eq/kWh");
    }
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
    if (options_.policy == "chase") {
      decide_chase();
    } else {
      decide_plan(now);
    }
    note_limit();
  }

  void decide_chase() {
    if (!std::isfinite(current_.carbon_intensity)) {
      current_.reason = "no carbon intensity for this period; limit kept";
      return;
    }
    if (!chase_selector_) {
      chase_selector_ = make_chase_selector(options_.eta, options_.max_carbon_intensity);
    }
    const auto selection =
        chase_selector_->select(*optimizer_.profile(), {current_.carbon_intensity});
    optimizer_.apply_limit(selection.power_limit_w);
    current_.candidates = selection.candidates;
    current_.reason = fmt::format("{} at {:.1f} gCO2eq/kWh", chase_selector_->describe(),
                                  current_.carbon_intensity);
  }

  double steps_per_window() const {
    const auto saved = optimizer_.profile()->info().steps_per_window;
    return static_cast<double>(saved > 0 ? saved : options_.profiling.profile_steps);
  }

  // The periods from now to the deadline, each with the signal's intensity (its mean past the
  // forecast's end); empty when the signal has nothing.
  std::vector<PlanPeriod> periods_until(UtcTime now, UtcTime deadline) const {
    std::vector<PlanPeriod> periods;
    for (UtcTime start = now; start < deadline;) {
      const UtcTime end = std::min(period_end_after(start, options_.period), deadline);
      periods.push_back({seconds_between(start, end), 0});
      start = end;
    }
    std::vector<CarbonPeriod> forecast;
    try {
      forecast = options_.carbon->forecast(periods.size(), options_.period);
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

  void decide_plan(UtcTime now) {
    const auto& profile = *optimizer_.profile();
    const double step_s_at_max = profile.highest_limit_point().time_s / steps_per_window();
    const double job_s_at_max = static_cast<double>(options_.total_steps) * step_s_at_max;
    const UtcTime deadline =
        train_start_ + std::chrono::duration_cast<UtcTime::duration>(std::chrono::duration<double>(
                           (1 + options_.slowdown_budget) * job_s_at_max));
    const auto steps_left = options_.total_steps - std::min(options_.total_steps, steps_done_);
    if (steps_left == 0) {
      current_.reason = "planner: the job's steps are done; limit kept";
      return;
    }
    const auto periods = deadline > now ? periods_until(now, deadline) : std::vector<PlanPeriod>{};
    if (deadline > now && periods.empty()) {
      current_.reason = "planner: no carbon forecast; limit kept";
      return;
    }
    const double work = static_cast<double>(steps_left) / steps_per_window();
    const auto plan = deadline > now ? plan_power_limits(profile, periods, work) : Plan{};
    if (plan.periods.empty() || !plan.feasible) {
      const auto fastest =
          std::min_element(profile.points().begin(), profile.points().end(),
                           [](const auto& a, const auto& b) { return a.time_s < b.time_s; });
      optimizer_.apply_limit(fastest->power_limit_w);
      current_.reason = fmt::format(
          "planner: {} steps cannot be done by the deadline; fastest limit", steps_left);
      return;
    }
    const auto& first = plan.periods.front();
    optimizer_.apply_limit(first.power_limit_w);
    if (first.first_fraction < 1 && first.second_limit_w != first.power_limit_w) {
      planned_switch_ = PlannedSwitch{
          now + std::chrono::duration_cast<UtcTime::duration>(std::chrono::duration<double>(
                    first.first_fraction * periods.front().duration_s)),
          first.second_limit_w};
    }
    current_.reason =
        fmt::format("planner: {} steps left, {:.0f} s to the deadline over {} periods; {} W{}",
                    steps_left, seconds_between(now, deadline), periods.size(), first.power_limit_w,
                    planned_switch_ ? fmt::format(" for {:.1f} %, then {} W",
                                                  100 * first.first_fraction, first.second_limit_w)
                                    : "");
  }

  TrainingOptions options_;
  std::shared_ptr<Clock> clock_;
  PowerLimitOptimizer optimizer_;
  EnergyMonitor monitor_;
  std::unique_ptr<PowerLimitSelector> chase_selector_;
  bool started_ = false;
  bool ended_ = false;
  bool period_open_ = false;
  UtcTime train_start_{};
  UtcTime period_end_{};
  std::size_t steps_done_ = 0;
  PeriodReport current_;
  std::vector<PeriodReport> periods_;
  std::optional<PlannedSwitch> planned_switch_;
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
