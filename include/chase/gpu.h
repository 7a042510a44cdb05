// chase/gpu.h — the GPU backend interface: identify GPUs, read their energy and power, and read or
// change their power limit.
//
// Contract: a GpuBackend exposes a fixed list of GPUs, chosen when it is opened (for NVML, the
// GPUs visible under CUDA_VISIBLE_DEVICES, in that order). `index` is the position in that list,
// the same index CUDA and PyTorch use. Power is in W and energy in J everywhere (NVML's mW/mJ stay
// inside the NVML backend). energy_j() is a cumulative counter (since an arbitrary origin; only
// differences are meaningful) and may be called only when GpuInfo::has_energy_counter is true; GPUs
// without one are measured by sampling power_w() (see EnergyMonitor). set_power_limit_w() rejects
// values outside [min_power_limit_w, max_power_limit_w] with kInvalidArgument before touching the
// device. Use PowerLimitGuard (chase/power_limit_guard.h) rather than calling it directly, so the
// original limit comes back on exit, error or signal. Every failure is a chase::Error naming the
// GPU.
//
// Health: one sick GPU never hides the others. A GPU that was lost, failed to answer, or cannot be
// measured when the backend opened stays in gpus() at its index (so indices keep matching CUDA's),
// with GpuInfo::state saying what is wrong and GpuInfo::problem saying why and what to do; every
// call on it throws (kDeviceLost for a lost GPU, kNotSupported for one that cannot be measured,
// the original code otherwise). GPUs the driver counts but this process may not open (device
// cgroups under Slurm, containers) are not CUDA devices at all: they are listed apart, in
// inaccessible_gpus(), never in gpus().
//
// Thread safety: every method may be called concurrently from several threads (the monitors sample
// from a background thread while the caller opens and closes windows).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace chase {

enum class GpuArchitecture {
  kUnknown,
  kKepler,
  kMaxwell,
  kPascal,
  kVolta,
  kTuring,
  kAmpere,
  kAda,
  kHopper,
  kBlackwell,
};

std::string_view to_string(GpuArchitecture arch) noexcept;

// What GpuBackend::power_w() returns. NVML's nvmlDeviceGetPowerUsage is a 1-second average on
// Ampere (except GA100) and newer; the NVML_FI_DEV_POWER_INSTANT field, where the driver has it, is
// the instantaneous power, and so is nvmlDeviceGetPowerUsage on older GPUs.
enum class PowerReading {
  kInstant,   // "instant"
  kAveraged,  // "1s-average": a sliding 1-second average (lags load changes by up to 1 s)
};
std::string_view to_string(PowerReading reading) noexcept;
// Accepts the names to_string() returns, case-insensitively; kUnknown for anything else.
GpuArchitecture parse_gpu_architecture(std::string_view name) noexcept;
// NVML's nvmlDeviceArchitecture_t numbering (VOLTA = 5, ..., BLACKWELL = 10).
GpuArchitecture gpu_architecture_from_nvml(unsigned nvml_arch) noexcept;

// What is wrong with a GPU, if anything.
enum class GpuState {
  kHealthy,        // measurable (and controllable, when it has power-limit management)
  kLost,           // fell off the bus / stopped responding (NVML_ERROR_GPU_IS_LOST, Xid 79)
  kFailed,         // the driver failed to describe it (the NVML call and error are in `problem`)
  kNotAccessible,  // the process may not open it (NVML_ERROR_NO_PERMISSION: device cgroups)
  kUnmeasurable,   // neither an energy counter nor a power reading (vGPU guests)
  kMigSlice,       // a MIG slice: NVML has no per-slice power or energy
};
// "healthy", "lost", "failed", "not accessible", "not measurable", "MIG slice".
std::string_view to_string(GpuState state) noexcept;

struct GpuInfo {
  std::size_t index = 0;        // position among this backend's visible GPUs
  unsigned hardware_index = 0;  // the driver's index (NVML index, ignores CUDA_VISIBLE_DEVICES)
  std::string uuid;             // "GPU-..." for NVML
  std::string name;             // e.g. "NVIDIA A40"
  GpuArchitecture architecture = GpuArchitecture::kUnknown;
  double min_power_limit_w = 0;
  double max_power_limit_w = 0;
  double default_power_limit_w = 0;
  bool has_energy_counter = false;                      // Volta+ cumulative energy counter
  PowerReading power_reading = PowerReading::kInstant;  // what power_w() returns
  bool has_power_reading = true;  // false: power_w() is not supported (vGPU guests)
  std::string pci_bus_id;         // "00000000:3B:00.0"; empty when unknown
  GpuState state = GpuState::kHealthy;
  std::string problem;  // why state is not kHealthy, and what to do; empty when healthy
  std::string note;     // how it is measured when that is not obvious (a MIG slice's parent)
};

// True when the GPU can be read (state kHealthy).
inline bool is_healthy(const GpuInfo& gpu) noexcept { return gpu.state == GpuState::kHealthy; }

// "GPU 0 (NVIDIA A40, GPU-1234…)": how every message names a GPU.
std::string describe(const GpuInfo& gpu);

class GpuBackend {
 public:
  virtual ~GpuBackend() = default;

  // "nvml", "simulated", ...
  virtual std::string_view backend_name() const noexcept = 0;
  // The visible GPUs; fixed for the backend's lifetime.
  virtual const std::vector<GpuInfo>& gpus() const noexcept = 0;
  // GPUs the driver reports but this process may not open (state kNotAccessible), for diagnosis
  // only: they have no CUDA index and are never measured. `index` is their driver index there.
  virtual const std::vector<GpuInfo>& inaccessible_gpus() const noexcept;

  // Cumulative energy in J. Precondition: gpus()[gpu].has_energy_counter.
  virtual double energy_j(std::size_t gpu) = 0;
  // Power draw in W: instantaneous or driver-averaged, as GpuInfo::power_reading says.
  virtual double power_w(std::size_t gpu) = 0;
  // The power limit in force, in W.
  virtual double power_limit_w(std::size_t gpu) = 0;
  // Sets the power limit. Throws kInvalidArgument when out of range, kPermissionDenied (with how
  // to obtain the permission) when the process may not change limits.
  virtual void set_power_limit_w(std::size_t gpu, double watts) = 0;
  // True when a limit set here stays in force after this process ends (a real driver: NVML), so
  // PowerLimitGuard keeps a durable record of it (chase/limit_state.h); false for in-memory GPUs.
  virtual bool limits_outlive_process() const noexcept { return false; }

  std::size_t gpu_count() const noexcept { return gpus().size(); }
};

// Checks an index and a limit against a backend's GPU list; throws the standard messages.
// Backends call these so every backend reports bad input in the same words.
const GpuInfo& checked_gpu(const std::vector<GpuInfo>& gpus, std::size_t gpu);
void check_power_limit(const GpuInfo& gpu, double watts);
// checked_gpu() for a GPU the caller will use (`use`: "measured", "controlled", ...): throws the
// GPU's problem when it is not healthy (kDeviceLost for a lost GPU, kNotSupported otherwise).
const GpuInfo& checked_healthy_gpu(const std::vector<GpuInfo>& gpus, std::size_t gpu,
                                   std::string_view use);
// What "all GPUs" means for measurement and control: the healthy ones, in index order. One sick
// GPU never stops the others; it is listed (chase devices) with its problem instead.
std::vector<std::size_t> healthy_gpu_indices(const GpuBackend& backend);

}  // namespace chase
