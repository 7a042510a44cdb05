// TrainingController: profiling, then a limit per period by policy (contract: chase/training.h).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <thread>

#include "chase/carbon.h"
#include "chase/energy_monitor.h"
#include "chase/error.h"
#include "chase/limit_actuator.h"
#include "chase/limit_policy.h"
#include "chase/period_driver.h"
#include "chase/pushgateway.h"
#include "chase/training.h"
#include "common/bounded_input.h"
#include "common/json_fields.h"

namespace chase {
namespace {

constexpr double kNoIntensity = std::numeric_limits<double>::quiet_NaN();

void check_options(const TrainingOptions& options) {
  const auto kind = kind_of(options.policy);
  if (kind == PolicyKind::kOracle) {
    throw Error(ErrorCode::kInvalidArgument,
                "the oracle policy needs the true future of the carbon intensity, which only a "
                "simulator has; use the planner in training");
  }
  if (kind == PolicyKind::kPlanner && options.total_steps == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "the planner needs the job's total steps (epochs × steps per epoch)");
  }
}

PowerLimitOptimizerOptions profiling_options(const TrainingOptions& options,
                                             std::shared_ptr<Clock> clock,
                                             std::shared_ptr<LimitActuator> actuator,
                                             std::shared_ptr<EnergyMonitor> monitor) {
  auto profiling = options.profiling;
  profiling.clock = std::move(clock);
  profiling.actuator = std::move(actuator);
  profiling.monitor = std::move(monitor);
  if (const auto* chosen = std::get_if<StaticOptions>(&options.policy);
      chosen && chosen->selector) {
    profiling.selector = chosen->selector;
  }
  return profiling;
}

EnergyMonitorOptions monitor_options(const LimitActuator& actuator, std::shared_ptr<Clock> clock) {
  EnergyMonitorOptions monitor;
  monitor.gpus = actuator.gpus();
  monitor.clock = std::move(clock);
  return monitor;
}

// A static policy without a selector of its own chooses with the profiler's.
PolicyOptions policy_options(const TrainingOptions& options) {
  auto policy = options.policy;
  if (auto* chosen = std::get_if<StaticOptions>(&policy); chosen && !chosen->selector) {
    chosen->selector = options.profiling.selector;
  }
  return policy;
}

// How an idle pause waits when the caller gave no wait_until: a virtual clock is advanced, a real
// one slept on (in slices of at most a minute, so that the clock is read again).
std::function<void(UtcTime)> default_wait(const std::shared_ptr<Clock>& clock) {
  if (auto manual = std::dynamic_pointer_cast<ManualClock>(clock)) {
    return [manual](UtcTime until) {
      if (until > manual->utc_now()) manual->advance(until - manual->utc_now());
    };
  }
  return [clock](UtcTime until) {
    while (clock->utc_now() < until) {
      std::this_thread::sleep_for(
          std::min<UtcTime::duration>(until - clock->utc_now(), std::chrono::minutes(1)));
    }
  };
}

void write_resume_file(const std::filesystem::path& path, const ReleaseRequest& release) {
  const nlohmann::json doc = {{"resume_at", format_utc_time(release.resume_at)},
                              {"job_start", format_utc_time(release.job_start)},
                              {"steps_done", release.steps_done}};
  write_json_file_atomically(path, doc, "the resume file");
}

UtcTime time_field(const JsonFields& fields, std::string_view key) {
  const auto text = fields.text(key);
  const auto time = text ? parse_utc_time(*text) : std::nullopt;
  if (!time) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: '{}' must be a UTC time such as 2026-01-01T00:00:00Z",
                            fields.where(), key));
  }
  return *time;
}

}  // namespace

ReleaseRequest read_resume_file(const std::filesystem::path& path) {
  const auto text = detail::read_bounded_file(path);
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kParse,
                fmt::format("resume file {} is not JSON: {}", path.string(), e.what()));
  }
  const JsonFields fields(doc, path.string());
  ReleaseRequest release;
  release.resume_at = time_field(fields, "resume_at");
  release.job_start = time_field(fields, "job_start");
  const auto steps = fields.count("steps_done");
  if (!steps) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: 'steps_done' (a whole number) is missing", fields.where()));
  }
  release.steps_done = static_cast<std::size_t>(*steps);
  return release;
}

class TrainingController::Impl final : public ControlledJob {
 public:
  Impl(std::shared_ptr<GpuBackend> gpus, TrainingOptions options)
      : options_((check_options(options), std::move(options))),
        clock_(options_.clock ? options_.clock : system_clock()),
        policy_(make_limit_policy(policy_options(options_), options_.period, options_.carbon)),
        actuator_(std::make_shared<LimitActuator>(gpus, options_.profiling.gpus,
                                                  options_.profiling.coordinator)),
        monitor_(
            std::make_shared<EnergyMonitor>(gpus, nullptr, monitor_options(*actuator_, clock_))),
        optimizer_(gpus, profiling_options(options_, clock_, actuator_, monitor_)),
        driver_(*policy_, *this),
        wait_until_(options_.wait_until ? options_.wait_until : default_wait(clock_)),
        single_rank_(actuator_->coordinator().size() == 1),
        pushgateway_(options_.pushgateway
                         ? std::make_unique<PushgatewayReporter>(*options_.pushgateway)
                         : nullptr) {
    if (options_.resumed) steps_done_ = options_.resumed->steps_done;
  }

  ~Impl() override {
    if (period_open_) monitor_->cancel_window(period_window_name());
  }

  void on_train_begin() {
    if (started_) return;
    started_ = true;
    train_start_ = agreed_now();
    job_start_ = options_.resumed ? options_.resumed->job_start : train_start_;
    if (options_.carbon && !options_.carbon->status().has_data) options_.carbon->refresh();
    driver_.begin(train_start_);
  }

  void on_step_begin() {
    if (!started_) on_train_begin();
    if (policy_->needs_profile()) optimizer_.on_step_begin();
    note_limit();
    if (release_) return;  // released: the loop is checkpointing and exiting
    driver_.poll(agreed_now(), control_ready());
    hold_while_paused();
  }

  std::optional<ReleaseRequest> release_request() const { return release_; }

  void on_step_end() {
    ++steps_done_;
    ++current_.steps;
  }

  void on_epoch_end() {
    if (policy_->needs_profile()) optimizer_.on_epoch_end();
    note_limit();
  }

  void on_train_end() {
    if (!started_) return;
    driver_.end(clock_->utc_now());
    if (pushgateway_ && !final_pushed_) pushgateway_->push(training_run_metrics(report(), false));
    final_pushed_ = true;
  }

  RunReport report() const {
    RunReport report;
    report.policy = std::string(to_string(policy_->kind()));
    report.periods = periods_;
    report.profiled = policy_->needs_profile() && !optimizer_.loaded_saved_profile();
    report.skipped_limits = optimizer_.skipped_limits();
    report.release = release_;
    for (const auto& p : periods_) {
      report.paused_s += p.paused_s;
      report.time_s += p.time_s;
      report.steps += p.steps;
      report.energy_j += p.energy_j;
      if (std::isfinite(p.carbon_g)) report.carbon_g += p.carbon_g;
    }
    return report;
  }

  const PowerLimitOptimizer& optimizer() const noexcept { return optimizer_; }

  // ---- ControlledJob: what the period driver asks of the training job ----

  // The job's progress in the profile's work units (profiling windows).
  JobProgress progress() const override {
    JobProgress progress;
    progress.start = job_start_;
    progress.paused = paused_;
    progress.units_per_work = steps_per_window();
    progress.work_total = static_cast<double>(options_.total_steps) / progress.units_per_work;
    progress.work_done =
        static_cast<double>(std::min(options_.total_steps, steps_done_)) / progress.units_per_work;
    progress.unit = "steps";
    return progress;
  }

  const LimitProfile* profile() const override {
    return optimizer_.profile() ? &*optimizer_.profile() : nullptr;
  }

  double highest_limit_w() const override { return actuator_->max_limit_w(); }

  void apply_limit(double watts) override {
    paused_ = false;  // a limit after an idle pause: the loop runs again
    const auto change = actuator_->apply(watts);
    if (!change.ok) current_.limit_errors.push_back(change.note);
    note_limit();
  }

  // A repeated choice costs no collective across ranks while it is in force. With several ranks
  // the choice is rank-local until agreed, so every rank takes part in the agreement: skipping it
  // on one rank only would leave the others waiting in a collective it never joins.
  void keep_limit(double watts) override {
    if (watts != actuator_->current_limit_w() || actuator_->coordinator().size() > 1) {
      apply_limit(watts);
    }
  }

  void pause(const PauseDecision& decision) override {
    if (decision.mode == PauseMode::kRelease) {
      release(decision.resume_at);
      return;
    }
    if (actuator_->current_limit_w() != actuator_->min_limit_w()) {
      apply_limit(actuator_->min_limit_w());
    }
    paused_ = true;
  }

  void period_began(UtcTime start, std::optional<double> intensity) override {
    current_ = PeriodReport{};
    current_.start = start;
    current_.carbon_intensity = intensity.value_or(kNoIntensity);
    current_.limits_w.push_back(actuator_->current_limit_w());  // never empty from here on
    current_.reason = control_ready()
                          ? "no change"
                          : fmt::format("profiling ({})", to_string(optimizer_.state()));
    monitor_->begin_window(period_window_name());
    period_open_ = true;
  }

  void period_ended(UtcTime end) override {
    if (!period_open_) return;
    const auto measurement = monitor_->end_window(period_window_name());
    period_open_ = false;
    current_.end = end;
    current_.time_s = measurement.time_s;
    current_.energy_j = measurement.gpu_energy_j();
    current_.carbon_g = std::isfinite(current_.carbon_intensity)
                            ? emissions_g(current_.energy_j, current_.carbon_intensity)
                            : kNoIntensity;
    periods_.push_back(current_);
    report_period_end();
  }

  void decided(UtcTime, const LimitDecision& decision) override {
    if (!decision.reason.empty()) current_.reason = decision.reason;
    if (!decision.candidates.empty()) current_.candidates = decision.candidates;
  }

 private:
  // The time every rank acts on: rank 0's clock. Each rank's own clock would put a period boundary
  // between two steps on one rank and after the next step on another, and the rank that crossed
  // first would wait in the boundary's collective while the others go on training (a stall, or a
  // collective mixed up with the training's own). One agreement per step keeps every rank's
  // boundaries, decisions and planned switches at the same step; a single process pays nothing.
  UtcTime agreed_now() {
    const auto now = clock_->utc_now();
    if (single_rank_) return now;
    auto& coordinator = actuator_->coordinator();
    const double local_s = Seconds(now.time_since_epoch()).count();
    return UtcTime{} +
           std::chrono::duration_cast<UtcTime::duration>(Seconds(coordinator.agree(local_s)));
  }

  bool control_ready() const {
    return !policy_->needs_profile() || optimizer_.state() == OptimizerState::kDone;
  }

  // Idle pause: hold the loop until the plan runs again, re-planning at every period boundary
  // (the planned resume time is one, and a new forecast may move it).
  void hold_while_paused() {
    while (paused_) {
      const UtcTime before = clock_->utc_now();
      wait_until_(driver_.period_end());
      const UtcTime after = clock_->utc_now();
      current_.paused_s += seconds_between(before, after);
      driver_.poll(agreed_now(), true);  // every rank resumes (or pauses again) at the same step
    }
  }

  // Release: the loop is told to checkpoint and exit, and when to start again.
  void release(UtcTime resume_at) {
    release_ = ReleaseRequest{resume_at, job_start_, steps_done_};
    if (!options_.resume_file.empty()) {
      try {
        write_resume_file(options_.resume_file, *release_);
      } catch (const Error& e) {
        spdlog::error("deadline mode: {}; restart the job at {}", e.what(),
                      format_utc_time(resume_at));
      }
    }
    if (options_.on_release) options_.on_release(*release_);
  }

  // The hook and the Pushgateway hear of every closed period; neither may stop training.
  void report_period_end() {
    if (!options_.on_period_end && !pushgateway_) return;
    const RunReport so_far = report();
    if (pushgateway_) pushgateway_->push(training_run_metrics(so_far, true));
    if (!options_.on_period_end) return;
    try {
      options_.on_period_end(so_far);
    } catch (const std::exception& e) {
      spdlog::warn("training: the on_period_end hook threw ({}); training goes on", e.what());
    }
  }

  std::string period_window_name() const { return fmt::format("period-{}", periods_.size()); }

  // Records a limit change in the current period.
  void note_limit() {
    if (current_.limits_w.empty()) return;  // before the first period
    const double limit = actuator_->current_limit_w();
    if (limit != current_.limits_w.back()) current_.limits_w.push_back(limit);
  }

  double steps_per_window() const {
    const auto saved = optimizer_.profile() ? optimizer_.profile()->info().steps_per_window : 0;
    return static_cast<double>(saved > 0 ? saved : options_.profiling.profile_steps);
  }

  TrainingOptions options_;
  std::shared_ptr<Clock> clock_;
  std::unique_ptr<LimitPolicy> policy_;
  std::shared_ptr<LimitActuator> actuator_;
  std::shared_ptr<EnergyMonitor> monitor_;
  PowerLimitOptimizer optimizer_;
  PeriodDriver driver_;
  bool started_ = false;
  bool period_open_ = false;
  std::function<void(UtcTime)> wait_until_;
  const bool single_rank_;  // one process drives the whole job: no agreement per step
  std::unique_ptr<PushgatewayReporter> pushgateway_;  // null: no Pushgateway
  bool final_pushed_ = false;
  UtcTime train_start_{};
  UtcTime job_start_{};  // the original job's start (a resumed run's deadline counts from it)
  std::size_t steps_done_ = 0;
  bool paused_ = false;  // idle pause in force
  std::optional<ReleaseRequest> release_;
  PeriodReport current_;
  std::vector<PeriodReport> periods_;
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
std::optional<ReleaseRequest> TrainingController::release_request() const {
  return impl_->release_request();
}

}  // namespace chase
