// chase/limit_profile.h — what profiling measured at each GPU power limit.
//
// Contract: a LimitProfile holds, for each power limit tried, the wall time and the energy of the
// same amount of work (one profiling window: a fixed number of training steps), summed over all
// GPUs of the job for energy and taken as the slowest GPU for time (data parallel). Points are
// sorted by descending limit (the order profiling visits them), limits are unique, and time and
// energy are finite and positive; the constructor checks and throws kInvalidArgument naming the bad
// point. From a point follow the average power P = E / T and, per unit of work, the throughput X =
// 1 / T. MaxPower, the normaliser of the Zeus and Chase costs, is max_power_limit_w × gpu_count.
//
// Files: load_limit_profile() reads chase's own JSON (save_limit_profile writes it) and the Zeus
// monitor log CSV (`start_time,window_name,elapsed_time,gpu0_energy[,gpu1_energy,...]`, the limit
// being the number that ends `window_name`, e.g. `__GlobalPowerLimitOptimizer_250`). Malformed
// input throws kParse naming the file, line and column.
//
// Thread safety: LimitProfile is immutable after construction; the functions are reentrant.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace chase {

struct LimitMeasurement {
  double power_limit_w = 0;
  double time_s = 0;    // wall time of the window (slowest GPU)
  double energy_j = 0;  // energy of the window, all GPUs together
  double avg_power_w() const noexcept { return energy_j / time_s; }
};

struct LimitProfileInfo {
  std::string gpu_model;  // e.g. "NVIDIA A40"; empty when unknown
  std::size_t gpu_count = 1;
  std::string job_id;
  std::size_t batch_size = 0;        // 0: unknown
  std::size_t steps_per_window = 0;  // training steps each window measured; 0: unknown
};

class LimitProfile {
 public:
  // max_power_limit_w: the GPUs' maximum limit; 0 takes the highest limit measured.
  LimitProfile(std::vector<LimitMeasurement> points, LimitProfileInfo info,
               double max_power_limit_w = 0);

  const std::vector<LimitMeasurement>& points() const noexcept { return points_; }
  const LimitProfileInfo& info() const noexcept { return info_; }
  double max_power_limit_w() const noexcept { return max_power_limit_w_; }
  double max_power_w() const noexcept {
    return max_power_limit_w_ * static_cast<double>(info_.gpu_count);
  }
  // The point measured at the highest limit (the "default" the slowdown factor refers to).
  const LimitMeasurement& highest_limit_point() const noexcept { return points_.front(); }

 private:
  std::vector<LimitMeasurement> points_;
  LimitProfileInfo info_;
  double max_power_limit_w_ = 0;
};

// Chooses the format by extension: ".json" → chase's JSON, ".csv" → Zeus monitor log.
LimitProfile load_limit_profile(const std::filesystem::path& path);
LimitProfile load_zeus_monitor_csv(const std::filesystem::path& path);
LimitProfile load_limit_profile_json(const std::filesystem::path& path);
// Writes atomically (a temporary file renamed over the target) so a crash never leaves half a file.
void save_limit_profile(const LimitProfile& profile, const std::filesystem::path& path);

}  // namespace chase
