// PowerLimitOptimizer: just-in-time power-limit profiling (contract:
// chase/power_limit_optimizer.h).
#include "chase/power_limit_optimizer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <utility>

#include "chase/energy_monitor.h"
#include "chase/error.h"
#include "chase/limit_actuator.h"

namespace chase {
namespace {

constexpr std::string_view kWindowPrefix = "__PowerLimitOptimizer_";

std::vector<double> candidates_between(double max_w, double min_w, double step_w) {
  if (!(step_w > 0) || !std::isfinite(step_w)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the power-limit step must be a positive number of W, not {}", step_w));
  }
  std::vector<double> limits;
  for (double limit = max_w; limit > min_w; limit -= step_w) limits.push_back(limit);
  limits.push_back(min_w);  // the minimum is always tried, even off the step grid
  return limits;
}

std::string file_safe(std::string_view text) {
  std::string safe;
  for (const char c : text) {
    safe += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
  }
  return safe.empty() ? "_" : safe;
}

}  // namespace

std::string_view to_string(OptimizerState state) noexcept {
  switch (state) {
    case OptimizerState::kReady:
      return "ready";
    case OptimizerState::kWarmup:
      return "warmup";
    case OptimizerState::kProfiling:
      return "profiling";
    case OptimizerState::kDone:
      return "done";
  }
  return "unknown";
}

class PowerLimitOptimizer::Impl {
 public:
  Impl(std::shared_ptr<GpuBackend> backend, PowerLimitOptimizerOptions options)
      : options_(std::move(options)),
        actuator_(options_.actuator ? options_.actuator
                                    : std::make_shared<LimitActuator>(backend, options_.gpus,
                                                                      options_.coordinator)),
        gpus_(actuator_->gpus()),
        monitor_(options_.monitor ? options_.monitor
                                  : std::make_shared<EnergyMonitor>(actuator_->backend(), nullptr,
                                                                    monitor_options())) {
    const auto& info = actuator_->first_gpu();
    max_limit_w_ = actuator_->max_limit_w();
    candidates_ =
        candidates_between(info.max_power_limit_w, info.min_power_limit_w, options_.limit_step_w);
    if (!options_.selector) options_.selector = make_zeus_selector(0.5);
    profile_info_.gpu_model = info.name;
    profile_info_.gpu_count = gpus_.size() * coordinator().size();
    profile_info_.job_id = options_.job_id;
    profile_info_.batch_size = options_.batch_size;
    profile_info_.steps_per_window = options_.profile_steps;
    load_saved_profile();
  }

  void on_step_begin() {
    ++steps_this_epoch_;
    // A failing GPU (lost, permission withdrawn) or an unusable measurement must not stop the
    // training it serves: profiling gives up and the job runs on at the maximum limit.
    try {
      advance_state();
    } catch (const Error& e) {
      abandon(e.what());
    }
  }

  void on_epoch_end() {
    try {
      end_epoch();
    } catch (const Error& e) {
      abandon(e.what());
    }
  }

  void advance_state() {
    switch (state_) {
      case OptimizerState::kReady:
        if (++steps_ > options_.wait_steps || retry_pending_) start_warmup();
        break;
      case OptimizerState::kWarmup:
        if (++steps_ > options_.warmup_steps) start_profiling();
        break;
      case OptimizerState::kProfiling:
        if (++steps_ > options_.profile_steps) finish_window();
        break;
      case OptimizerState::kDone:
        if (apply_choice_pending_) apply_choice();
        break;
    }
  }

  void end_epoch() {
    const auto epoch_steps = std::exchange(steps_this_epoch_, 0);
    if (state_ != OptimizerState::kWarmup && state_ != OptimizerState::kProfiling) return;
    if (state_ == OptimizerState::kProfiling) monitor_->cancel_window(window_name());
    // Setting a limit, warming up and profiling take warmup + profile + 1 steps of one epoch: a
    // job whose epochs are shorter would retry forever.
    const auto steps_needed = options_.warmup_steps + options_.profile_steps + 1;
    if (epoch_steps < steps_needed) {
      abandon(
          fmt::format("epochs of {} steps are too short to warm up ({}) and profile ({}) a "
                      "limit; lower warmup_steps and profile_steps",
                      epoch_steps, options_.warmup_steps, options_.profile_steps));
      return;
    }
    spdlog::info("epoch ended while profiling {} W; retrying it at the next step",
                 candidates_[next_candidate_]);
    set_limit(max_limit_w_);
    state_ = OptimizerState::kReady;
    retry_pending_ = true;
  }

  std::filesystem::path profile_path() const {
    if (options_.profile_dir.empty()) return {};
    return options_.profile_dir /
           fmt::format("{}-x{}-{}-b{}.json", file_safe(profile_info_.gpu_model),
                       profile_info_.gpu_count, file_safe(profile_info_.job_id),
                       profile_info_.batch_size);
  }

  const std::shared_ptr<LimitActuator>& actuator() const noexcept { return actuator_; }

  OptimizerState state_ = OptimizerState::kReady;
  std::vector<double> candidates_;
  std::optional<LimitProfile> profile_;
  std::optional<Selection> selection_;
  std::vector<SkippedLimit> skipped_;
  bool loaded_ = false;

 private:
  EnergyMonitorOptions monitor_options() const {
    EnergyMonitorOptions monitor;
    monitor.gpus = gpus_;
    monitor.clock = options_.clock;
    return monitor;
  }

  std::string window_name() const {
    return fmt::format("{}{}", kWindowPrefix, candidates_[next_candidate_]);
  }

  Coordinator& coordinator() const { return actuator_->coordinator(); }

  void set_limit(double watts) { actuator_->set(watts); }

  // Sets the next candidate that every rank's GPUs accept; a limit a GPU refuses is skipped and
  // reported (the ranks agree, so that all of them skip it). Profiling is abandoned when no
  // candidate is left.
  void start_warmup() {
    retry_pending_ = false;
    while (next_candidate_ < candidates_.size()) {
      const double limit = candidates_[next_candidate_];
      std::string failure;
      try {
        set_limit(limit);
      } catch (const Error& e) {
        failure = e.what();
      }
      if (!coordinator().combine({0, 0, !failure.empty()}).failed) {
        state_ = OptimizerState::kWarmup;
        steps_ = 1;  // this step is the first one at the new limit
        return;
      }
      if (failure.empty()) failure = "another rank's GPU refused it";
      spdlog::warn("power-limit profiling skips {} W: {}", limit, failure);
      skipped_.push_back({limit, std::move(failure)});
      ++next_candidate_;
    }
    finish_profiling();
  }

  void start_profiling() {
    monitor_->begin_window(window_name());
    state_ = OptimizerState::kProfiling;
    steps_ = 1;
  }

  void finish_window() {
    const auto measurement = monitor_->end_window(window_name());
    const double limit = candidates_[next_candidate_];
    // Every rank reaches this point at the same step; they combine even when one failed, so that
    // all of them give up together instead of waiting for one another.
    const auto job = coordinator().combine(
        {measurement.time_s, measurement.gpu_energy_j(), !measurement.complete()});
    if (job.failed) {
      abandon(fmt::format("a GPU failed while profiling {} W", limit));
      return;
    }
    if (!(job.energy_j > 0) || !(job.time_s > 0)) {
      abandon(
          fmt::format("the window at {} W measured {} J in {} s, too little to compare limits; "
                      "raise profile_steps",
                      limit, job.energy_j, job.time_s));
      return;
    }
    measured_.push_back({limit, job.time_s, job.energy_j});
    if (++next_candidate_ < candidates_.size()) {
      start_warmup();
      return;
    }
    finish_profiling();
  }

  void finish_profiling() {
    if (measured_.empty()) {
      abandon("the GPUs refused every candidate limit");
      return;
    }
    profile_.emplace(measured_, profile_info_, max_limit_w_);
    if (coordinator().rank() == 0) save_profile();
    state_ = OptimizerState::kDone;
    choose();
    apply_choice();
  }

  void choose() {
    selection_ = options_.selector->select(*profile_, options_.context);
    selection_->power_limit_w = coordinator().agree(selection_->power_limit_w);
  }

  void apply_choice() {
    apply_choice_pending_ = false;
    set_limit(selection_->power_limit_w);
    spdlog::info("power limit {} W chosen by {}", selection_->power_limit_w,
                 options_.selector->describe());
  }

  void abandon(const std::string& why) {
    spdlog::warn("power-limit profiling abandoned: {}; running at the maximum limit", why);
    state_ = OptimizerState::kDone;
    apply_choice_pending_ = false;
    for (const auto& name : monitor_->open_windows()) {
      if (name.starts_with(kWindowPrefix)) monitor_->cancel_window(name);  // only its own
    }
    try {
      set_limit(max_limit_w_);
    } catch (const Error& e) {
      spdlog::error("{}", e.what());
    }
  }

  void load_saved_profile() {
    const auto path = profile_path();
    if (path.empty()) return;
    bool loaded = false;
    if (std::filesystem::exists(path)) {
      try {
        profile_.emplace(load_limit_profile_json(path));
        loaded = true;
      } catch (const Error& e) {
        spdlog::warn("ignoring the saved profile: {}; profiling again", e.what());
      }
    }
    // Ranks reuse a profile only if every one of them found it; otherwise all profile again.
    if (coordinator().combine({0, 0, !loaded}).failed) {
      profile_.reset();
      return;
    }
    loaded_ = true;
    state_ = OptimizerState::kDone;
    choose();
    apply_choice_pending_ = true;  // limits change at the first step, not at construction
  }

  void save_profile() const {
    const auto path = profile_path();
    if (path.empty()) return;
    try {
      std::filesystem::create_directories(path.parent_path());
      save_limit_profile(*profile_, path);
    } catch (const std::exception& e) {
      spdlog::warn("could not save the power-limit profile to {}: {}", path.string(), e.what());
    }
  }

  PowerLimitOptimizerOptions options_;
  std::shared_ptr<LimitActuator> actuator_;
  std::vector<std::size_t> gpus_;
  std::shared_ptr<EnergyMonitor> monitor_;
  LimitProfileInfo profile_info_;
  double max_limit_w_ = 0;
  std::size_t steps_ = 0;  // steps in the current state
  std::size_t steps_this_epoch_ = 0;
  std::size_t next_candidate_ = 0;
  bool retry_pending_ = false;
  bool apply_choice_pending_ = false;
  std::vector<LimitMeasurement> measured_;
};

PowerLimitOptimizer::PowerLimitOptimizer(std::shared_ptr<GpuBackend> gpus,
                                         PowerLimitOptimizerOptions options)
    : impl_(std::make_unique<Impl>(std::move(gpus), std::move(options))) {}
PowerLimitOptimizer::~PowerLimitOptimizer() = default;

void PowerLimitOptimizer::on_step_begin() { impl_->on_step_begin(); }
void PowerLimitOptimizer::on_epoch_end() { impl_->on_epoch_end(); }
OptimizerState PowerLimitOptimizer::state() const noexcept { return impl_->state_; }
const std::vector<double>& PowerLimitOptimizer::candidate_limits() const noexcept {
  return impl_->candidates_;
}
double PowerLimitOptimizer::current_limit_w() const noexcept {
  return impl_->actuator()->current_limit_w();
}
const std::optional<LimitProfile>& PowerLimitOptimizer::profile() const noexcept {
  return impl_->profile_;
}
const std::optional<Selection>& PowerLimitOptimizer::selection() const noexcept {
  return impl_->selection_;
}
bool PowerLimitOptimizer::loaded_saved_profile() const noexcept { return impl_->loaded_; }
std::filesystem::path PowerLimitOptimizer::profile_path() const { return impl_->profile_path(); }
const std::vector<SkippedLimit>& PowerLimitOptimizer::skipped_limits() const noexcept {
  return impl_->skipped_;
}
const std::shared_ptr<LimitActuator>& PowerLimitOptimizer::actuator() const noexcept {
  return impl_->actuator();
}

}  // namespace chase
