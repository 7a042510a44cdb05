#include "chase/power_monitor.h"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <optional>

#include "chase/error.h"
#include "monitor/periodic_thread.h"

namespace chase {
namespace {

// Fixed-capacity ring of samples: memory stays bounded however long the job runs.
class SampleRing {
 public:
  explicit SampleRing(std::size_t capacity) : buffer_(capacity) {}

  void push(const PowerSample& sample) {
    buffer_[(first_ + size_) % buffer_.size()] = sample;
    if (size_ < buffer_.size()) {
      ++size_;
    } else {
      first_ = (first_ + 1) % buffer_.size();
      ++dropped_;
    }
  }
  std::size_t size() const noexcept { return size_; }
  const PowerSample& operator[](std::size_t i) const {
    return buffer_[(first_ + i) % buffer_.size()];
  }
  std::size_t dropped() const noexcept { return dropped_; }

 private:
  std::vector<PowerSample> buffer_;
  std::size_t first_ = 0;
  std::size_t size_ = 0;
  std::size_t dropped_ = 0;
};

struct GpuTimeline {
  explicit GpuTimeline(std::size_t capacity) : samples(capacity) {}
  SampleRing samples;
  std::string last_error;
};

}  // namespace

class PowerMonitor::Impl {
 public:
  Impl(std::shared_ptr<GpuBackend> gpus, PowerMonitorOptions options)
      : gpus_(std::move(gpus)), clock_(options.clock ? options.clock : system_clock()) {
    if (!gpus_) throw Error(ErrorCode::kInvalidArgument, "PowerMonitor needs a GPU backend");
    if (options.max_samples == 0 || options.period.count() <= 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  "PowerMonitor needs a positive sampling period and max_samples");
    }
    if (options.gpus.empty()) options.gpus = healthy_gpu_indices(*gpus_);
    for (std::size_t gpu : options.gpus) {
      checked_healthy_gpu(gpus_->gpus(), gpu, "sampled");
      monitored_.push_back(gpu);
      timelines_.emplace_back(options.max_samples);
    }
    sample_now();  // the timeline starts at construction, not one period later
    sampler_.emplace(
        options.period, [this] { sample_now(); }, true);
  }

  ~Impl() { sampler_.reset(); }

  void sample_now() {
    for (std::size_t k = 0; k < monitored_.size(); ++k) {
      try {
        const double power = gpus_->power_w(monitored_[k]);
        const PowerSample sample{clock_->utc_now(), power};
        std::lock_guard lock(mutex_);
        timelines_[k].samples.push(sample);
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex_);
        timelines_[k].last_error = e.what();
      }
    }
  }

  std::vector<PowerSample> timeline(std::size_t gpu, std::optional<UtcTime> from,
                                    std::optional<UtcTime> to) const {
    const std::size_t k = slot(gpu);
    std::lock_guard lock(mutex_);
    const auto& ring = timelines_[k].samples;
    std::vector<PowerSample> out;
    for (std::size_t i = 0; i < ring.size(); ++i) {
      const auto& s = ring[i];
      if ((!from || s.time >= *from) && (!to || s.time <= *to)) out.push_back(s);
    }
    return out;
  }

  std::optional<PowerSample> latest(std::size_t gpu) const {
    const std::size_t k = slot(gpu);
    std::lock_guard lock(mutex_);
    const auto& ring = timelines_[k].samples;
    if (ring.size() == 0) return std::nullopt;
    return ring[ring.size() - 1];
  }

  std::size_t dropped(std::size_t gpu) const {
    const std::size_t k = slot(gpu);
    std::lock_guard lock(mutex_);
    return timelines_[k].samples.dropped();
  }

  std::string last_error(std::size_t gpu) const {
    const std::size_t k = slot(gpu);
    std::lock_guard lock(mutex_);
    return timelines_[k].last_error;
  }

 private:
  std::size_t slot(std::size_t gpu) const {
    const auto it = std::find(monitored_.begin(), monitored_.end(), gpu);
    if (it == monitored_.end()) {
      throw Error(ErrorCode::kNotFound,
                  fmt::format("GPU {} is not monitored by this PowerMonitor", gpu));
    }
    return static_cast<std::size_t>(it - monitored_.begin());
  }

  std::shared_ptr<GpuBackend> gpus_;
  std::shared_ptr<Clock> clock_;
  std::vector<std::size_t> monitored_;
  mutable std::mutex mutex_;
  std::vector<GpuTimeline> timelines_;
  std::optional<detail::PeriodicThread> sampler_;  // last: stops first
};

PowerMonitor::PowerMonitor(std::shared_ptr<GpuBackend> gpus, PowerMonitorOptions options)
    : impl_(std::make_unique<Impl>(std::move(gpus), std::move(options))) {}
PowerMonitor::~PowerMonitor() = default;

void PowerMonitor::sample_now() { impl_->sample_now(); }
std::vector<PowerSample> PowerMonitor::timeline(std::size_t gpu) const {
  return impl_->timeline(gpu, std::nullopt, std::nullopt);
}
std::vector<PowerSample> PowerMonitor::timeline(std::size_t gpu, UtcTime from, UtcTime to) const {
  return impl_->timeline(gpu, from, to);
}
std::optional<PowerSample> PowerMonitor::latest(std::size_t gpu) const {
  return impl_->latest(gpu);
}
std::size_t PowerMonitor::dropped_samples(std::size_t gpu) const { return impl_->dropped(gpu); }
std::string PowerMonitor::last_error(std::size_t gpu) const { return impl_->last_error(gpu); }

double PowerMonitor::energy_j(std::size_t gpu, UtcTime from, UtcTime to) const {
  const auto samples = timeline(gpu, from, to);
  double energy = 0;
  for (std::size_t i = 1; i < samples.size(); ++i) {
    const double dt = std::chrono::duration<double>(samples[i].time - samples[i - 1].time).count();
    energy += 0.5 * (samples[i].power_w + samples[i - 1].power_w) * dt;
  }
  return energy;
}

}  // namespace chase
