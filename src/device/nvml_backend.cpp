// The NVML GpuBackend (see chase/nvml.h for the contract).
//
// Everything is read or resolved once in the constructor — entry points, device handles, identity
// and limits — so the hot path (energy_j/power_w, read for every GPU at every measurement window)
// is a bounds check and one NVML call: no allocation, no lock, no lookup. Nothing changes after
// construction, which is what makes the backend thread-safe without locks.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string_view>
#include <system_error>

#include "chase/error.h"
#include "chase/nvml.h"
#include "device/nvml_library.h"
#include "device/nvml_visible_devices.h"

namespace chase {
namespace {

// NVML_DEVICE_NAME_V2_BUFFER_SIZE and NVML_DEVICE_UUID_V2_BUFFER_SIZE are both 96.
constexpr unsigned kStringBufferSize = 96;

constexpr std::string_view kSetLimitCall = "nvmlDeviceSetPowerManagementLimit";

double watts(unsigned milliwatts) { return static_cast<double>(milliwatts) / 1000.0; }

nvml::LibrarySource library_source(const NvmlOptions& options) {
  if (!options.library_path.empty()) return {options.library_path, "NvmlOptions::library_path"};
  const char* from_environment = std::getenv("CHASE_NVML_LIBRARY");
  if (from_environment != nullptr && *from_environment != '\0') {
    return {from_environment, "CHASE_NVML_LIBRARY"};
  }
  return {};
}

// The running program, for the setcap command line in permission advice.
std::string program_path() {
  std::error_code error;
  const auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? "<program>" : path.string();
}

// What to do about a failed NVML call; `call` is the function name, possibly with its arguments.
std::string advice(nvml::Return result, std::string_view call) {
  const bool setting_limit = call.starts_with(kSetLimitCall);
  switch (result) {
    case nvml::kNoPermission:
      if (setting_limit) {
        return fmt::format(
            "Changing GPU power limits needs root or CAP_SYS_ADMIN: run as root (sudo), or grant "
            "the capability with `sudo setcap cap_sys_admin+ep {}`; reading energy and power needs "
            "no privilege.",
            program_path());
      }
      return fmt::format(
          "This NVML call needs more privileges: run as root (sudo), or grant CAP_SYS_ADMIN with "
          "`sudo setcap cap_sys_admin+ep {}`.",
          program_path());
    case nvml::kNotSupported:
    case nvml::kFunctionNotFound:
      return "This GPU or its driver does not support it; GeForce and laptop GPUs often lack "
             "power-management features, and older drivers lack newer calls.";
    case nvml::kGpuIsLost:
      return "The GPU fell off the bus or stopped responding: check `nvidia-smi` and the kernel "
             "log (`sudo dmesg | grep -i xid`); a reboot or a driver reload is usually needed.";
    case nvml::kInvalidArgument:
      if (setting_limit) {
        return "The driver rejected a limit within the constraints it reported when chase "
               "started; check the current constraints with `nvidia-smi -q -d POWER`.";
      }
      return "NVML rejected the arguments chase passed; this is a bug in chase, please report it.";
    case nvml::kTimeout:
      return "The GPU did not answer in time; retry, and check `nvidia-smi` if it persists.";
    default:
      return "Check that `nvidia-smi` works and look at the kernel log; report it if it persists.";
  }
}

// How open-time messages name a GPU whose name and UUID are not known yet.
std::string subject(const GpuInfo& gpu) {
  if (!gpu.name.empty()) return describe(gpu);
  return fmt::format("GPU {} (NVML index {})", gpu.index, gpu.hardware_index);
}

class NvmlBackend final : public GpuBackend {
 public:
  NvmlBackend(const nvml::LibrarySource& source, const std::optional<std::string>& visible)
      : library_(source), api_(library_.api()) {
    const auto selection = select_devices(visible);
    if (!selection.warning.empty()) spdlog::warn("{}", selection.warning);
    for (const unsigned nvml_index : selection.indices) add_gpu(nvml_index);
  }

  std::string_view backend_name() const noexcept override { return "nvml"; }
  const std::vector<GpuInfo>& gpus() const noexcept override { return gpus_; }
  bool limits_outlive_process() const noexcept override { return true; }

  double energy_j(std::size_t gpu) override {
    const GpuInfo& info = checked_gpu(gpus_, gpu);
    if (!info.has_energy_counter) throw_no_energy_counter(info);
    unsigned long long millijoules = 0;
    check(info, "nvmlDeviceGetTotalEnergyConsumption",
          api_.device_get_total_energy_consumption(devices_[gpu].handle, &millijoules));
    return static_cast<double>(millijoules) / 1000.0;
  }

  double power_w(std::size_t gpu) override {
    const GpuInfo& info = checked_gpu(gpus_, gpu);
    if (devices_[gpu].instant_power_field) return instant_power_w(info, devices_[gpu].handle);
    unsigned milliwatts = 0;
    check(info, "nvmlDeviceGetPowerUsage",
          api_.device_get_power_usage(devices_[gpu].handle, &milliwatts));
    return watts(milliwatts);
  }

  // The management limit — the one set_power_limit_w sets — rather than the enforced limit, which
  // other constraints may lower: a guard restoring what it read must restore the setting.
  double power_limit_w(std::size_t gpu) override {
    const GpuInfo& info = checked_gpu(gpus_, gpu);
    unsigned milliwatts = 0;
    check(info, "nvmlDeviceGetPowerManagementLimit",
          api_.device_get_power_management_limit(devices_[gpu].handle, &milliwatts));
    return watts(milliwatts);
  }

  void set_power_limit_w(std::size_t gpu, double limit_w) override {
    const GpuInfo& info = checked_gpu(gpus_, gpu);
    if (!devices_[gpu].limits_supported) throw_limits_not_supported(info);
    check_power_limit(info, limit_w);
    const auto milliwatts = static_cast<unsigned>(std::llround(limit_w * 1000.0));
    const nvml::Return result =
        api_.device_set_power_management_limit(devices_[gpu].handle, milliwatts);
    if (result != nvml::kSuccess) {
      throw_failure(subject(info), fmt::format("{}({} mW)", kSetLimitCall, milliwatts), result);
    }
  }

 private:
  struct Device {
    nvml::Device handle = nullptr;
    bool limits_supported = true;      // false: the GPU reports no power-limit constraints
    bool instant_power_field = false;  // power_w() reads NVML_FI_DEV_POWER_INSTANT
  };

  // The NVML_FI_DEV_POWER_INSTANT field; a failure is reported like any NVML call's.
  double instant_power_w(const GpuInfo& info, nvml::Device handle) const {
    nvml::FieldValue field;
    field.field_id = nvml::kFieldPowerInstant;
    check(info, "nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT)",
          api_.device_get_field_values(handle, 1, &field));
    check(info, "nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT)", field.nvml_return);
    return watts(field.value.ui);
  }

  // True when the driver answers the instant power field for this GPU (newer drivers, Ampere+).
  bool probe_instant_power(nvml::Device handle) const {
    if (api_.device_get_field_values == nullptr) return false;
    nvml::FieldValue field;
    field.field_id = nvml::kFieldPowerInstant;
    return api_.device_get_field_values(handle, 1, &field) == nvml::kSuccess &&
           field.nvml_return == nvml::kSuccess && field.value_type == nvml::kValueTypeUnsignedInt;
  }

  // nvmlDeviceGetPowerUsage averages over 1 s on Ampere and newer, except GA100 (A100, A30, A800).
  static PowerReading usage_reading(const GpuInfo& info) {
    bool ga100 = false;
    std::istringstream words(info.name);
    for (std::string word; words >> word;) {
      ga100 = ga100 || word.starts_with("A100") || word.starts_with("A800") || word == "A30" ||
              word == "A30X";
    }
    const bool averaged = info.architecture >= GpuArchitecture::kAmpere && !ga100;
    return averaged ? PowerReading::kAveraged : PowerReading::kInstant;
  }

  [[noreturn]] void throw_failure(std::string_view who, std::string_view call,
                                  nvml::Return result) const {
    throw Error(nvml::error_code_for(result),
                fmt::format("{}: {} failed: {}. {}", who, call, library_.error_text(result),
                            advice(result, call)));
  }

  void check(const GpuInfo& gpu, std::string_view call, nvml::Return result) const {
    if (result != nvml::kSuccess) throw_failure(subject(gpu), call, result);
  }

  [[noreturn]] static void throw_no_energy_counter(const GpuInfo& gpu) {
    throw Error(ErrorCode::kNotSupported,
                fmt::format("{} has no cumulative energy counter (nvmlDeviceGetTotalEnergy"
                            "Consumption is not supported; it needs a Volta or newer GPU and "
                            "driver): measure its energy by sampling power_w(), as EnergyMonitor "
                            "does for such GPUs.",
                            describe(gpu)));
  }

  [[noreturn]] static void throw_limits_not_supported(const GpuInfo& gpu) {
    throw Error(ErrorCode::kNotSupported,
                fmt::format("{} does not support power-limit management (NVML reported no "
                            "power-limit constraints for it), so its power limit cannot be "
                            "changed; energy and power can still be measured.",
                            describe(gpu)));
  }

  nvml::VisibleDevices select_devices(const std::optional<std::string>& visible) const {
    unsigned count = 0;
    const nvml::Return result = api_.device_get_count(&count);
    if (result != nvml::kSuccess) {
      throw_failure("NVML could not count the GPUs", api_.count_name, result);
    }
    std::optional<std::string> spec = visible;
    if (!spec) {
      if (const char* from_environment = std::getenv("CUDA_VISIBLE_DEVICES")) {
        spec = from_environment;
      }
    }
    if (!spec) {
      nvml::VisibleDevices all;
      for (unsigned i = 0; i < count; ++i) all.indices.push_back(i);
      return all;
    }
    return nvml::select_visible_devices(*spec, count, [this](unsigned nvml_index) {
      GpuInfo gpu;
      gpu.index = nvml_index;
      gpu.hardware_index = nvml_index;
      return read_string(gpu, handle_for(gpu), api_.device_get_uuid, "nvmlDeviceGetUUID");
    });
  }

  nvml::Device handle_for(const GpuInfo& gpu) const {
    nvml::Device handle = nullptr;
    check(gpu, api_.handle_by_index_name,
          api_.device_get_handle_by_index(gpu.hardware_index, &handle));
    return handle;
  }

  std::string read_string(const GpuInfo& gpu, nvml::Device handle,
                          nvml::Return (*getter)(nvml::Device, char*, unsigned),
                          std::string_view call) const {
    std::array<char, kStringBufferSize> buffer{};
    check(gpu, call, getter(handle, buffer.data(), kStringBufferSize));
    buffer.back() = '\0';  // never trust a driver to terminate
    return buffer.data();
  }

  // Reads one GPU's identity, limits and capabilities, and appends it to the visible list.
  void add_gpu(unsigned nvml_index) {
    GpuInfo info;
    info.index = gpus_.size();
    info.hardware_index = nvml_index;
    Device device;
    device.handle = handle_for(info);
    info.name = read_string(info, device.handle, api_.device_get_name, "nvmlDeviceGetName");
    info.uuid = read_string(info, device.handle, api_.device_get_uuid, "nvmlDeviceGetUUID");
    info.architecture = read_architecture(info, device.handle);
    device.limits_supported = read_limits(info, device.handle);
    info.has_energy_counter = probe_energy_counter(info, device.handle);
    device.instant_power_field = probe_instant_power(device.handle);
    info.power_reading = device.instant_power_field ? PowerReading::kInstant : usage_reading(info);
    gpus_.push_back(std::move(info));
    devices_.push_back(device);
  }

  // Unsupported (or an old driver) means unknown, not an error.
  GpuArchitecture read_architecture(const GpuInfo& gpu, nvml::Device handle) const {
    if (api_.device_get_architecture == nullptr) return GpuArchitecture::kUnknown;
    unsigned nvml_architecture = 0;
    const nvml::Return result = api_.device_get_architecture(handle, &nvml_architecture);
    if (is_unsupported(result)) return GpuArchitecture::kUnknown;
    check(gpu, "nvmlDeviceGetArchitecture", result);
    return gpu_architecture_from_nvml(nvml_architecture);
  }

  // Fills the limits; false when the GPU has no power-limit management (GeForce, laptops), which
  // must not keep its energy from being measured.
  bool read_limits(GpuInfo& gpu, nvml::Device handle) const {
    unsigned min_mw = 0;
    unsigned max_mw = 0;
    unsigned default_mw = 0;
    nvml::Return result =
        api_.device_get_power_management_limit_constraints(handle, &min_mw, &max_mw);
    if (is_unsupported(result)) return false;
    check(gpu, "nvmlDeviceGetPowerManagementLimitConstraints", result);
    result = api_.device_get_power_management_default_limit(handle, &default_mw);
    if (is_unsupported(result)) return false;
    check(gpu, "nvmlDeviceGetPowerManagementDefaultLimit", result);
    gpu.min_power_limit_w = watts(min_mw);
    gpu.max_power_limit_w = watts(max_mw);
    gpu.default_power_limit_w = watts(default_mw);
    return true;
  }

  // Pre-Volta GPUs have no counter; any other failure is a real problem.
  bool probe_energy_counter(const GpuInfo& gpu, nvml::Device handle) const {
    if (api_.device_get_total_energy_consumption == nullptr) return false;
    unsigned long long millijoules = 0;
    const nvml::Return result = api_.device_get_total_energy_consumption(handle, &millijoules);
    if (is_unsupported(result)) return false;
    check(gpu, "nvmlDeviceGetTotalEnergyConsumption", result);
    return true;
  }

  static bool is_unsupported(nvml::Return result) {
    return result == nvml::kNotSupported || result == nvml::kFunctionNotFound;
  }

  nvml::Library library_;  // first: NVML stays initialised until the members below are gone
  const nvml::Api& api_;
  std::vector<GpuInfo> gpus_;
  std::vector<Device> devices_;  // parallel to gpus_
};

}  // namespace

std::unique_ptr<GpuBackend> open_nvml(const NvmlOptions& options) {
  return std::make_unique<NvmlBackend>(library_source(options), options.visible_devices);
}

}  // namespace chase
