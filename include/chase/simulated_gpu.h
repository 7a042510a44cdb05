// chase/simulated_gpu.h — GPUs without hardware: throughput and power as a function of the power
// limit, from a profile. The demo, the examples and the trace-driven simulators run on these.
//
// Contract: a PowerProfile is a list of (power limit W, throughput, average power W) points
// measured (or made up, and then labelled so) for one GPU model and workload; between points it
// interpolates linearly, outside them it clamps to the nearest point. Throughput is in work units
// per second (samples/s unless the profile says otherwise). Profiles load from JSON
// ({"gpu": ..., "workload": ..., "throughput_unit": ..., "points": [{"power_limit_w", "throughput",
// "avg_power_w"}, ...]}) or CSV (header power_limit_w,throughput,avg_power_w), with errors naming
// the file and line.
//
// A SimulatedGpuBackend is a GpuBackend over such profiles, driven by any Clock: a GPU marked busy
// draws the profile's average power at its current limit, an idle one its idle power; the energy
// counter integrates that exactly (power is piecewise constant between state changes), so with a
// ManualClock the simulation is deterministic and as fast as the caller can advance time.
//
// Thread safety: PowerProfile is immutable. SimulatedGpuBackend methods may be called concurrently.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "chase/gpu.h"
#include "chase/time.h"

namespace chase {

struct PowerProfilePoint {
  double power_limit_w = 0;
  double throughput = 0;   // work units per second at this limit
  double avg_power_w = 0;  // average power draw while working at this limit
};

class PowerProfile {
 public:
  PowerProfile() = default;
  // Sorts by limit; throws kInvalidArgument for duplicate limits or non-positive/NaN numbers.
  explicit PowerProfile(std::vector<PowerProfilePoint> points, std::string gpu = "",
                        std::string workload = "", std::string throughput_unit = "samples/s");

  static PowerProfile load(const std::filesystem::path& path);  // .json or .csv

  const std::vector<PowerProfilePoint>& points() const noexcept { return points_; }
  const std::string& gpu() const noexcept { return gpu_; }
  const std::string& workload() const noexcept { return workload_; }
  const std::string& throughput_unit() const noexcept { return throughput_unit_; }
  double min_limit_w() const;
  double max_limit_w() const;
  double throughput_at(double power_limit_w) const;
  double power_at(double power_limit_w) const;

 private:
  PowerProfilePoint interpolate(double power_limit_w) const;

  std::vector<PowerProfilePoint> points_;
  std::string gpu_, workload_, throughput_unit_;
};

// A built-in, clearly synthetic profile shaped like an A40 training ResNet-50 (limits 100–300 W):
// labelled "synthetic" in its workload name. Used by `make demo` and the examples.
PowerProfile synthetic_demo_profile();

struct SimulatedGpuSpec {
  std::string name = "Simulated GPU";
  GpuArchitecture architecture = GpuArchitecture::kAmpere;
  double idle_power_w = 30;
  PowerProfile profile;  // limits [min, max] come from the profile; default limit = max
};

class SimulatedGpuBackend final : public GpuBackend {
 public:
  SimulatedGpuBackend(std::vector<SimulatedGpuSpec> specs,
                      std::shared_ptr<Clock> clock = system_clock());

  std::string_view backend_name() const noexcept override { return "simulated"; }
  const std::vector<GpuInfo>& gpus() const noexcept override { return infos_; }
  double energy_j(std::size_t gpu) override;
  double power_w(std::size_t gpu) override;
  double power_limit_w(std::size_t gpu) override;
  void set_power_limit_w(std::size_t gpu, double watts) override;

  // A busy GPU draws the profile's power at its limit; an idle one, its idle power.
  void set_busy(std::size_t gpu, bool busy);
  void set_all_busy(bool busy);
  // Work units per second at the GPU's current limit (0 when idle).
  double throughput(std::size_t gpu);
  const PowerProfile& profile(std::size_t gpu) const;
  const Clock& clock() const noexcept { return *clock_; }

 private:
  struct State {
    double limit_w = 0;
    bool busy = false;
    double energy_j = 0;                // integrated up to `since`
    std::chrono::nanoseconds since{0};  // monotonic time of the last state change
  };
  double power_locked(std::size_t gpu) const;
  void integrate_locked(std::size_t gpu);  // brings energy_j up to now

  std::vector<SimulatedGpuSpec> specs_;
  std::vector<GpuInfo> infos_;
  std::shared_ptr<Clock> clock_;
  mutable std::mutex mutex_;
  std::vector<State> states_;
};

// n identical simulated GPUs running `profile`.
std::shared_ptr<SimulatedGpuBackend> make_simulated_gpus(
    std::size_t n, const PowerProfile& profile, std::shared_ptr<Clock> clock = system_clock());

}  // namespace chase
