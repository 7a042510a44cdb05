#include "chase/energy_monitor.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>

#include "chase/error.h"
#include "monitor/periodic_thread.h"

namespace chase {

std::string_view to_string(EnergyMethod method) noexcept {
  switch (method) {
    case EnergyMethod::kCounter:
      return "counter";
    case EnergyMethod::kPolling:
      return "polling";
    case EnergyMethod::kEstimate:
      return "estimate";
  }
  return "unknown";
}

double Measurement::gpu_energy_j() const {
  double sum = 0;
  for (const auto& gpu : gpus) {
    if (gpu.error.empty() || gpu.lost_after_s) sum += gpu.energy_j;
  }
  return sum;
}

double Measurement::cpu_energy_j() const {
  double sum = 0;
  for (const auto& cpu : cpus) {
    if (cpu.error.empty() || cpu.partial) sum += cpu.energy_j;
  }
  return sum;
}

bool Measurement::below_resolution() const {
  return std::any_of(gpus.begin(), gpus.end(), [](const auto& g) { return g.below_resolution; });
}

bool Measurement::complete() const {
  return std::all_of(gpus.begin(), gpus.end(), [](const auto& g) { return g.error.empty(); }) &&
         std::all_of(cpus.begin(), cpus.end(), [](const auto& c) { return c.error.empty(); });
}

namespace {

// A cumulative energy "counter" for a GPU that has none: trapezoid integral of power samples.
class PowerIntegrator {
 public:
  struct Reading {
    double energy_j = 0;
    std::uint64_t samples = 0;  // samples taken so far, this one included
  };

  // The time is read under the lock so samples from the caller's thread and the sampler thread
  // are integrated in time order.
  Reading add_sample(const Clock& clock, double power_w) {
    std::lock_guard lock(mutex_);
    const auto now = clock.monotonic();
    if (samples_ > 0) {
      const double dt_s = std::chrono::duration<double>(now - last_time_).count();
      energy_j_ += 0.5 * (power_w + last_power_w_) * dt_s;
    }
    last_time_ = now;
    last_power_w_ = power_w;
    ++samples_;
    return {energy_j_, samples_};
  }

 private:
  std::mutex mutex_;
  std::chrono::nanoseconds last_time_{0};
  double last_power_w_ = 0;
  double energy_j_ = 0;
  std::uint64_t samples_ = 0;
};

struct GpuReading {
  double energy_j = 0;
  std::uint64_t samples = 0;  // polled GPUs only
  bool valid = true;          // false: the GPU was already lost
};

// A monitored GPU's health as the monitor sees it: lost (for good) or not, and its last good
// reading, from which a window that sees the GPU lost takes the energy measured up to the loss.
// `lost` may be read without a lock; everything else is guarded by the monitor's mutex_
// (one lock per pass over the GPUs, not one per GPU: the window pair is a hot path).
struct GpuTrack {
  struct Last {
    double energy_j = 0;
    std::chrono::nanoseconds time{0};
    bool valid = false;
  };

  bool is_lost() const noexcept { return lost.load(std::memory_order_acquire); }

  std::atomic<bool> lost{false};
  Last last;
  std::string lost_message;
};

bool is_device_lost(const std::exception& e) {
  const auto* error = dynamic_cast<const Error*>(&e);
  return error != nullptr && error->code() == ErrorCode::kDeviceLost;
}

double nan() { return std::numeric_limits<double>::quiet_NaN(); }

// Update periods in a window measured to within about ±20 %: each end may be off by up to one
// period's energy, so the error is at most 2 periods / window.
constexpr double kPeriodsPerResolution = 10;
// nvmlDeviceGetPowerUsage on Ampere+ averages over this long.
constexpr double kAveragedPowerSpan_s = 1.0;

// A CPU zone's last successful reading, for reporting energy up to a mid-window failure.
struct LastCpuReading {
  double energy_j = nan();
  std::chrono::nanoseconds at{0};
};

// "cpu0_package", "cpu0_die1_package": the CSV column stem of a zone.
std::string csv_zone_stem(const CpuZone& zone) {
  std::string part = zone.part;
  std::erase(part, '-');
  return part.empty() ? fmt::format("cpu{}_{}", zone.package, zone.kind)
                      : fmt::format("cpu{}_{}_{}", zone.package, part, zone.kind);
}

}  // namespace

class EnergyMonitor::Impl {
 public:
  Impl(std::shared_ptr<GpuBackend> gpus, std::shared_ptr<CpuBackend> cpus,
       EnergyMonitorOptions options)
      : gpus_(std::move(gpus)),
        cpus_(std::move(cpus)),
        options_(std::move(options)),
        clock_(options_.clock ? options_.clock : system_clock()) {
    select_gpus();
    check_periods();
    open_csv_log();
    const bool polls = std::any_of(integrators_.begin(), integrators_.end(),
                                   [](const auto& i) { return i != nullptr; });
    const bool refreshes_counters = options_.counter_refresh_period.count() > 0 &&
                                    std::any_of(integrators_.begin(), integrators_.end(),
                                                [](const auto& i) { return i == nullptr; });
    if (polls || refreshes_counters || cpu_zone_count() > 0) {
      auto period =
          std::min<std::chrono::nanoseconds>(options_.polling_period, options_.cpu_refresh_period);
      if (refreshes_counters) {
        period = std::min<std::chrono::nanoseconds>(period, options_.counter_refresh_period);
      }
      sampler_.emplace(
          period, [this] { background_tick(); }, false);
    }
  }

  ~Impl() { sampler_.reset(); }  // stop sampling before the members it reads go away

  void begin_window(std::string_view name) {
    Window window = take_spare();
    window.name.assign(name);
    window.start_utc = clock_->utc_now();
    window.start = clock_->monotonic();
    read_gpus(window.gpus, nullptr);
    read_cpus(window.cpus, nullptr);
    {
      std::lock_guard lock(mutex_);
      if (!windows_.empty()) remember_pass_locked(window.gpus, window.cpus, window.start);
      if (find_locked(name) != windows_.end()) {
        spare_.push_back(std::move(window));
        throw Error(ErrorCode::kAlreadyExists,
                    fmt::format("measurement window '{}' is already open; end or cancel it "
                                "before opening it again, or use another name",
                                name));
      }
      windows_.push_back(std::move(window));
      if (windows_.size() == 1 && sampler_) sampler_->set_active(true);
    }
  }

  Measurement end_window(std::string_view name) {
    Window window = remove_window(name, "end");
    std::vector<GpuReading> gpu_end;
    std::vector<double> cpu_end;
    Measurement m;
    read_gpus(gpu_end, &m.gpus);
    read_cpus(cpu_end, &m.cpus);
    const auto end = clock_->monotonic();
    m.end_utc = clock_->utc_now();
    m.name = window.name;
    m.start_utc = window.start_utc;
    m.time_s = std::chrono::duration<double>(end - window.start).count();
    fill_gpu_energy(window, gpu_end, m);
    fill_cpu_energy(window, cpu_end, m);
    {
      std::lock_guard lock(mutex_);
      if (!windows_.empty()) remember_pass_locked(gpu_end, cpu_end, end);
      recycle_locked(std::move(window));
    }
    log_csv(m);
    return m;
  }

  void cancel_window(std::string_view name) {
    Window window = remove_window(name, "cancel");
    std::lock_guard lock(mutex_);
    recycle_locked(std::move(window));
  }

  bool is_window_open(std::string_view name) const {
    std::lock_guard lock(mutex_);
    return find_locked(name) != windows_.end();
  }

  std::vector<std::string> open_windows() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> names;
    for (const auto& w : windows_) names.push_back(w.name);
    return names;
  }

  const std::vector<std::size_t>& monitored_gpus() const noexcept { return monitored_; }

 private:
  struct Window {
    std::string name;
    UtcTime start_utc;
    std::chrono::nanoseconds start{0};
    std::vector<GpuReading> gpus;
    std::vector<double> cpus;
  };

  void select_gpus() {
    if (!gpus_) {
      if (!options_.gpus.empty()) {
        throw Error(ErrorCode::kInvalidArgument, "GPUs were selected but no GPU backend is open");
      }
      return;
    }
    if (options_.gpus.empty()) {
      monitored_ = healthy_gpu_indices(*gpus_);
    } else {
      for (std::size_t gpu : options_.gpus) {
        checked_healthy_gpu(gpus_->gpus(), gpu, "measured");
        if (std::find(monitored_.begin(), monitored_.end(), gpu) != monitored_.end()) {
          throw Error(ErrorCode::kInvalidArgument,
                      fmt::format("GPU {} is selected twice for measurement", gpu));
        }
        monitored_.push_back(gpu);
      }
    }
    for (std::size_t gpu : monitored_) {
      const GpuInfo& info = gpus_->gpus()[gpu];
      // A GPU without a power reading (vGPU) is measured by its counter even under force_polling.
      const bool use_counter =
          info.has_energy_counter && (!options_.force_polling || !info.has_power_reading);
      integrators_.push_back(use_counter ? nullptr : std::make_unique<PowerIntegrator>());
      resolution_s_.push_back(resolution_s(info, use_counter));
    }
    tracks_ = std::vector<GpuTrack>(monitored_.size());
  }

  // The shortest window measured to within about ±20 %: 10 update periods of what is read (the
  // counter's, the polling period, or the span of a driver-averaged power). Fixed per GPU.
  double resolution_s(const GpuInfo& info, bool use_counter) const {
    double update_period_s = Seconds(options_.counter_update_period).count();
    if (!use_counter) {
      update_period_s = Seconds(options_.polling_period).count();
      if (info.power_reading == PowerReading::kAveraged) {
        update_period_s = std::max(update_period_s, kAveragedPowerSpan_s);
      }
    }
    return kPeriodsPerResolution * update_period_s;
  }

  void check_periods() const {
    using std::chrono::milliseconds;
    if (options_.polling_period <= milliseconds(0) || options_.polling_period > milliseconds(100)) {
      throw Error(
          ErrorCode::kInvalidArgument,
          fmt::format("power polling period must be between 1 and 100 ms (got {} ms): "
                      "sensors update about every 100 ms and slower sampling loses accuracy",
                      options_.polling_period.count()));
    }
    if (options_.counter_update_period <= milliseconds(0)) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("energy counter update period must be positive (got {} ms)",
                              options_.counter_update_period.count()));
    }
    if (options_.cpu_refresh_period <= milliseconds(0)) {
      throw Error(ErrorCode::kInvalidArgument, "CPU counter refresh period must be positive");
    }
  }

  std::size_t cpu_zone_count() const { return cpus_ ? cpus_->zones().size() : 0; }

  // Reads every monitored GPU. With `errors` null (begin), a failure throws; otherwise (end) it is
  // recorded in the device's entry so one bad GPU does not lose the whole window. A lost GPU never
  // throws: its reading is invalid and the window reports it. The caller stamps the pass
  // (remember_pass) with the window's own begin or end time: no extra clock read per pass.
  void read_gpus(std::vector<GpuReading>& out, std::vector<GpuEnergy>* errors) {
    out.resize(monitored_.size());
    if (errors) errors->resize(monitored_.size());
    const bool any_lost = any_gpu_lost_.load(std::memory_order_acquire);
    for (std::size_t k = 0; k < monitored_.size(); ++k) {
      if (any_lost && tracks_[k].is_lost()) [[unlikely]] {
        out[k].valid = false;
        continue;
      }
      try {
        out[k] = read_gpu(k);
      } catch (const std::exception& e) {
        out[k].valid = false;
        if (is_device_lost(e)) {
          mark_lost(k, e.what());
          continue;
        }
        if (!errors) throw;
        (*errors)[k].error = e.what();
      }
    }
  }

  // Remembers a window's pass over the devices, at its begin or end time (the reads take
  // microseconds at most): a device lost later keeps its energy up to here in the *other* windows
  // open now (a window's own begin is in the window; a reading before a window began is no use
  // to it), so a pass with no other window open is not recorded. Called under mutex_, in the
  // critical section the window's begin or end takes anyway: no lock is added to the hot path.
  void remember_pass_locked(const std::vector<GpuReading>& gpus, const std::vector<double>& cpus,
                            std::chrono::nanoseconds now) {
    for (std::size_t k = 0; k < gpus.size(); ++k) {
      if (gpus[k].valid) tracks_[k].last = {gpus[k].energy_j, now, true};
    }
    remember_cpu_readings_locked(cpus, now);
  }

  // One GPU's reading; the caller stamps its time and records it (read_gpus, background_tick).
  GpuReading read_gpu(std::size_t k) {
    const std::size_t gpu = monitored_[k];
    GpuReading reading;
    if (!integrators_[k]) {
      reading.energy_j = gpus_->energy_j(gpu);
    } else {
      const auto integrated = integrators_[k]->add_sample(*clock_, gpus_->power_w(gpu));
      reading.energy_j = integrated.energy_j;
      reading.samples = integrated.samples;
    }
    return reading;
  }

  void mark_lost(std::size_t k, std::string message) {
    std::lock_guard lock(mutex_);
    if (tracks_[k].is_lost()) return;
    tracks_[k].lost_message = std::move(message);
    tracks_[k].lost.store(true, std::memory_order_release);
    any_gpu_lost_.store(true, std::memory_order_release);
  }

  void read_cpus(std::vector<double>& out, std::vector<CpuEnergy>* errors) {
    const std::size_t n = cpu_zone_count();
    out.resize(n);
    if (errors) errors->resize(n);
    for (std::size_t z = 0; z < n; ++z) {
      try {
        out[z] = cpus_->energy_j(z);
      } catch (const std::exception& e) {
        if (!errors) throw;
        (*errors)[z].error = e.what();
        out[z] = nan();
      }
    }
  }

  // Keeps each zone's latest good reading (NaN entries are failures and are skipped).
  void remember_cpu_readings_locked(const std::vector<double>& readings,
                                    std::chrono::nanoseconds now) {
    if (readings.empty()) return;
    cpu_last_.resize(readings.size());
    for (std::size_t z = 0; z < readings.size(); ++z) {
      if (!std::isnan(readings[z])) cpu_last_[z] = {readings[z], now};
    }
  }

  void fill_gpu_energy(const Window& window, const std::vector<GpuReading>& end,
                       Measurement& m) const {
    const bool any_lost = any_gpu_lost_.load(std::memory_order_acquire);
    for (std::size_t k = 0; k < monitored_.size(); ++k) {
      auto& out = m.gpus[k];
      const auto& info = gpus_->gpus()[monitored_[k]];
      out.index = info.index;
      out.name = info.name;
      if (any_lost && tracks_[k].is_lost()) [[unlikely]] {
        fill_lost_gpu(k, window, out);
        continue;
      }
      if (!out.error.empty()) {
        out.energy_j = nan();
        continue;
      }
      out.energy_j = end[k].energy_j - window.gpus[k].energy_j;
      out.power_reading = info.power_reading;
      if (out.energy_j < 0) {
        // A counter never decreases unless it was reset (driver reload) or wrapped: the window's
        // energy is unknown, never negative.
        out.error = fmt::format(
            "{}: the energy counter went backwards by {:.3f} J during the window (a driver reload "
            "resets it, or it wrapped): this window's energy is unknown",
            describe(info), -out.energy_j);
        out.energy_j = nan();
        continue;
      }
      if (!integrators_[k]) {
        out.method = EnergyMethod::kCounter;
      } else {
        // Samples strictly inside the window; with none, the trapezoid spans the window's two
        // end points only: an estimate from the end powers × elapsed time, and we say so.
        const auto inside = end[k].samples - window.gpus[k].samples - 1;
        out.method = inside >= 1 ? EnergyMethod::kPolling : EnergyMethod::kEstimate;
      }
      out.resolution_s = resolution_s_[k];
      out.below_resolution = m.time_s < out.resolution_s;
    }
  }

  // A GPU lost before or during the window: the energy up to its last good reading, when that
  // reading falls inside the window; NaN otherwise (nothing of the window was measured).
  void fill_lost_gpu(std::size_t k, const Window& window, GpuEnergy& out) const {
    GpuTrack::Last last;
    {
      std::lock_guard lock(mutex_);
      out.error = tracks_[k].lost_message;
      last = tracks_[k].last;
    }
    out.energy_j = nan();
    out.method = integrators_[k] ? EnergyMethod::kPolling : EnergyMethod::kCounter;
    const GpuReading& begin = window.gpus[k];
    if (!begin.valid || !last.valid || last.time <= window.start) return;
    out.energy_j = last.energy_j - window.gpus[k].energy_j;
    out.lost_after_s = std::chrono::duration<double>(last.time - window.start).count();
  }

  void fill_cpu_energy(const Window& window, const std::vector<double>& end, Measurement& m) const {
    for (std::size_t z = 0; z < end.size(); ++z) {
      const auto& zone = cpus_->zones()[z];
      auto& out = m.cpus[z];
      out.zone = z;
      out.package = zone.package;
      out.kind = zone.kind;
      out.part = zone.part;
      out.energy_j =
          out.error.empty() ? end[z] - window.cpus[z] : energy_until_failure(window, z, out);
    }
  }

  // A zone that failed at the window's end: its energy up to its last good reading inside the
  // window (partial), else NaN.
  double energy_until_failure(const Window& window, std::size_t z, CpuEnergy& out) const {
    LastCpuReading last;
    {
      std::lock_guard lock(mutex_);
      if (z < cpu_last_.size()) last = cpu_last_[z];
    }
    if (std::isnan(last.energy_j) || last.at <= window.start) return nan();
    out.partial = true;
    out.error += fmt::format(" (energy up to its last good reading, {:.3f} s into the window)",
                             std::chrono::duration<double>(last.at - window.start).count());
    return last.energy_j - window.cpus[z];
  }

  // Runs on the sampler thread while windows are open.
  void background_tick() {
    const auto now = clock_->monotonic();
    const bool refresh_counters = options_.counter_refresh_period.count() > 0 &&
                                  now - last_counter_refresh_ >= options_.counter_refresh_period;
    if (refresh_counters) last_counter_refresh_ = now;
    for (std::size_t k = 0; k < monitored_.size(); ++k) {
      if ((!integrators_[k] && !refresh_counters) || tracks_[k].is_lost()) continue;
      try {
        const GpuReading reading = read_gpu(k);
        const auto read_at = clock_->monotonic();
        std::lock_guard lock(mutex_);
        tracks_[k].last = {reading.energy_j, read_at, true};
      } catch (const std::exception& e) {
        // The window's end reading reports the failure; keep sampling the other GPUs.
        if (is_device_lost(e)) mark_lost(k, e.what());
        spdlog::debug("GPU sample failed: {}", e.what());
      }
    }
    if (cpu_zone_count() > 0 && now - last_cpu_refresh_ >= options_.cpu_refresh_period) {
      last_cpu_refresh_ = now;
      std::vector<double>& readings = cpu_refresh_readings_;
      readings.assign(cpu_zone_count(), nan());
      for (std::size_t z = 0; z < cpu_zone_count(); ++z) {
        try {
          readings[z] = cpus_->energy_j(z);  // the read itself records any counter wraparound
        } catch (const std::exception& e) {
          spdlog::debug("CPU energy refresh failed: {}", e.what());
        }
      }
      const auto read_at = clock_->monotonic();
      std::lock_guard lock(mutex_);
      remember_cpu_readings_locked(readings, read_at);
    }
  }

  std::vector<Window>::iterator find_locked(std::string_view name) {
    return std::find_if(windows_.begin(), windows_.end(),
                        [&](const Window& w) { return w.name == name; });
  }
  std::vector<Window>::const_iterator find_locked(std::string_view name) const {
    return std::find_if(windows_.begin(), windows_.end(),
                        [&](const Window& w) { return w.name == name; });
  }

  Window remove_window(std::string_view name, std::string_view verb) {
    std::lock_guard lock(mutex_);
    const auto it = find_locked(name);
    if (it == windows_.end()) {
      throw Error(ErrorCode::kNotFound,
                  fmt::format("cannot {} measurement window '{}': no window of that name is open",
                              verb, name));
    }
    Window window = std::move(*it);
    windows_.erase(it);
    if (windows_.empty() && sampler_) sampler_->set_active(false);
    return window;
  }

  // Finished windows keep their buffers for the next begin_window: no allocation per window in
  // the steady state of a training loop.
  Window take_spare() {
    std::lock_guard lock(mutex_);
    if (spare_.empty()) return {};
    Window window = std::move(spare_.back());
    spare_.pop_back();
    return window;
  }
  void recycle_locked(Window window) {
    if (spare_.size() < 16) spare_.push_back(std::move(window));
  }

  void open_csv_log() {
    if (options_.csv_log.empty()) return;
    std::error_code ec;
    const bool fresh = !std::filesystem::exists(options_.csv_log, ec) ||
                       std::filesystem::file_size(options_.csv_log, ec) == 0;
    csv_.open(options_.csv_log, std::ios::app);
    if (!csv_) {
      throw Error(ErrorCode::kIo,
                  fmt::format("cannot open the measurement log '{}' for writing: {}",
                              options_.csv_log.string(), std::strerror(errno)));
    }
    if (!fresh) return;
    csv_ << "start_time,window_name,elapsed_time";
    for (std::size_t gpu : monitored_) csv_ << fmt::format(",gpu{}_energy", gpu);
    for (std::size_t z = 0; z < cpu_zone_count(); ++z) {
      const auto& zone = cpus_->zones()[z];
      csv_ << fmt::format(",{}_energy", csv_zone_stem(zone));
    }
    csv_ << '\n' << std::flush;
    if (!csv_) {
      throw Error(ErrorCode::kIo, fmt::format("cannot write the header of the measurement log '{}' "
                                              "(disk full?)",
                                              options_.csv_log.string()));
    }
  }

  // A failed append is recorded in the measurement, which the caller still gets.
  void log_csv(Measurement& m) {
    if (!csv_.is_open()) return;
    const double start_s = std::chrono::duration<double>(m.start_utc.time_since_epoch()).count();
    std::string row = fmt::format("{:.6f},{},{}", start_s, m.name, m.time_s);
    for (const auto& g : m.gpus) row += fmt::format(",{}", g.energy_j);
    for (const auto& c : m.cpus) row += fmt::format(",{}", c.energy_j);
    std::lock_guard lock(csv_mutex_);
    csv_ << row << '\n' << std::flush;
    if (!csv_) {
      m.log_error = fmt::format(
          "writing window '{}' to the measurement log '{}' failed (disk "
          "full?)",
          m.name, options_.csv_log.string());
      csv_.clear();  // the next window tries again
    }
  }

  std::shared_ptr<GpuBackend> gpus_;
  std::shared_ptr<CpuBackend> cpus_;
  EnergyMonitorOptions options_;
  std::shared_ptr<Clock> clock_;
  std::vector<std::size_t> monitored_;
  std::vector<std::unique_ptr<PowerIntegrator>> integrators_;  // null where a counter exists
  // mutex_ guards the open windows, their spare buffers, and the devices' last good readings
  // (tracks_' readings and loss messages, cpu_last_): one lock per window begin and end.
  mutable std::mutex mutex_;
  std::vector<GpuTrack> tracks_;      // parallel to monitored_
  std::vector<double> resolution_s_;  // parallel to monitored_
  // Set with the first lost GPU: until then a pass checks no GPU's own flag.
  std::atomic<bool> any_gpu_lost_{false};
  std::vector<Window> windows_;
  std::vector<Window> spare_;

  std::mutex csv_mutex_;
  std::ofstream csv_;

  std::chrono::nanoseconds last_cpu_refresh_{0};      // sampler thread only
  std::vector<double> cpu_refresh_readings_;          // sampler thread only
  std::vector<LastCpuReading> cpu_last_;              // per zone; guarded by mutex_
  std::chrono::nanoseconds last_counter_refresh_{0};  // sampler thread only
  std::optional<detail::PeriodicThread> sampler_;
};

EnergyMonitor::EnergyMonitor(std::shared_ptr<GpuBackend> gpus, std::shared_ptr<CpuBackend> cpus,
                             EnergyMonitorOptions options)
    : impl_(std::make_unique<Impl>(std::move(gpus), std::move(cpus), std::move(options))) {}
EnergyMonitor::~EnergyMonitor() = default;

void EnergyMonitor::begin_window(std::string_view name) { impl_->begin_window(name); }
Measurement EnergyMonitor::end_window(std::string_view name) { return impl_->end_window(name); }
void EnergyMonitor::cancel_window(std::string_view name) { impl_->cancel_window(name); }
bool EnergyMonitor::is_window_open(std::string_view name) const {
  return impl_->is_window_open(name);
}
std::vector<std::string> EnergyMonitor::open_windows() const { return impl_->open_windows(); }
const std::vector<std::size_t>& EnergyMonitor::monitored_gpus() const noexcept {
  return impl_->monitored_gpus();
}

}  // namespace chase
