// Fake NVML: a shared library exporting the NVML entry points chase uses, emulating GPUs described
// by a JSON file, so the real NVML backend is tested end to end through dlopen on machines without
// an NVIDIA driver. It includes no NVIDIA header: the few NVML types are declared here.
//
// Configuration ($FAKE_NVML_CONFIG, re-read at every nvmlInit that takes the init count from 0 to
// 1):
//   {"init_error": "DRIVER_NOT_LOADED",       optional: nvmlInit returns this code
//    "driver_version": "550.54.15",           optional
//    "fail": {"nvmlDeviceGetCount_v2": "UNKNOWN"},  optional: failures of any function, all GPUs
//    "gpus": [{"name", "uuid", "architecture": 7 or "ampere",
//              "min_limit_w", "max_limit_w", "default_limit_w", "limit_w",
//              "idle_power_w", "max_power_w", "load", "energy_counter", "initial_energy_j",
//              "fail": {"<NVML function>": "<return code name or number>"}, "lost": false,
//              health, topology and MIG (see parse_health_and_topology):
//              "no_permission", "lost_after_calls", "lost_trigger_file", "power_reading",
//              "pci_bus_id", "compute_capability", "mig_devices"}]}
// Every field has a default (see parse_gpu); unknown fields are ignored. A missing or malformed
// config makes nvmlInit return DRIVER_NOT_LOADED after printing one line to stderr saying why.
//
// Power model: power = min(limit, idle + load × (max_power − idle)). Power is piecewise constant,
// so the energy counter integrates it exactly: each GPU keeps the energy at its last state change
// and the time of that change, and brings both up to date on every read and before every change.
//
// State ($FAKE_NVML_STATE, optional): after every successful limit change the current limits are
// written there ({"gpus": [{"uuid", "limit_mw"}]}, atomically: temporary file + rename), and an
// nvmlInit from 0 takes its limits from it — like a real driver, a limit outlives the process that
// set it, and tests can see the limits a killed process left behind. The file is also the one
// driver all processes share: limit changes lock it, and limit, power and energy reads re-read it
// when another process changed it (see "One driver across processes").
//
// Measurement realism (per-GPU keys power_usage_average_s, power_instant_field,
// energy_update_period_ms, energy_wrap_mj, persistence_mode; see parse_measurement_realism): the
// 1-second-averaged power of Ampere+ vs the NVML_FI_DEV_POWER_INSTANT field, a counter that
// advances in steps, wraps, and restarts on a driver reload.
//
// Test controls (extern "C", for tests that dlopen the same library): fake_nvml_set_load,
// fake_nvml_set_lost, fake_nvml_set_failure, fake_nvml_limit_w, fake_nvml_power_w,
// fake_nvml_energy_j, fake_nvml_call_count, fake_nvml_gpu_count, and (measurement realism, at the
// end of the file) fake_nvml_reload_driver, fake_nvml_jump_energy. They act on the GPUs of the last
// successful nvmlInit from 0 and are not counted as NVML calls.
//
// Thread safety: one mutex guards all state; every export may be called from any thread.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

// NVML's types, declared by hand: nvmlReturn_t is an int enum, nvmlDevice_t an opaque pointer. The
// fake defines the pointee: a handle is the address of one slot of a fixed table (see kHandles).
using nvmlReturn_t = int;
struct nvmlDevice_st {
  unsigned index;
  int mig;  // -1: the GPU itself; else the slot of one of its MIG devices
};
using nvmlDevice_t = nvmlDevice_st*;

#define FAKE_NVML_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// ---- Return codes ------------------------------------------------------------------------------

constexpr nvmlReturn_t kSuccess = 0;
constexpr nvmlReturn_t kUninitialized = 1;
constexpr nvmlReturn_t kInvalidArgument = 2;
constexpr nvmlReturn_t kNotSupported = 3;
constexpr nvmlReturn_t kNoPermission = 4;
constexpr nvmlReturn_t kNotFound = 6;
constexpr nvmlReturn_t kInsufficientSize = 7;
constexpr nvmlReturn_t kDriverNotLoaded = 9;
constexpr nvmlReturn_t kGpuIsLost = 15;
constexpr nvmlReturn_t kUnknown = 999;

struct ReturnCode {
  nvmlReturn_t value;
  std::string_view name;  // the enumerator without its NVML_ERROR_ / NVML_ prefix
  const char* text;       // what the real nvmlErrorString returns
};

constexpr std::array<ReturnCode, 31> kReturnCodes{{
    {0, "SUCCESS", "Success"},
    {1, "UNINITIALIZED", "Uninitialized"},
    {2, "INVALID_ARGUMENT", "Invalid Argument"},
    {3, "NOT_SUPPORTED", "Not Supported"},
    {4, "NO_PERMISSION", "Insufficient Permissions"},
    {5, "ALREADY_INITIALIZED", "Already Initialized"},
    {6, "NOT_FOUND", "Not Found"},
    {7, "INSUFFICIENT_SIZE", "Insufficient Size"},
    {8, "INSUFFICIENT_POWER", "Insufficient External Power"},
    {9, "DRIVER_NOT_LOADED", "Driver Not Loaded"},
    {10, "TIMEOUT", "Timeout"},
    {11, "IRQ_ISSUE", "Interrupt request issue"},
    {12, "LIBRARY_NOT_FOUND", "NVML Shared Library Not Found"},
    {13, "FUNCTION_NOT_FOUND", "Function Not Found"},
    {14, "CORRUPTED_INFOROM", "Corrupted infoROM"},
    {15, "GPU_IS_LOST", "GPU is lost"},
    {16, "RESET_REQUIRED", "GPU requires restart"},
    {17, "OPERATING_SYSTEM", "The operating system has blocked the request."},
    {18, "LIB_RM_VERSION_MISMATCH", "RM has detected an NVML/RM version mismatch."},
    {19, "IN_USE", "In use by another client"},
    {20, "MEMORY", "Insufficient Memory"},
    {21, "NO_DATA", "No data"},
    {22, "VGPU_ECC_NOT_SUPPORTED",
     "The requested vgpu operation is not available on target device, becasue ECC is enabled"},
    {23, "INSUFFICIENT_RESOURCES", "Ran out of critical resources, other than memory"},
    {24, "FREQ_NOT_SUPPORTED", "Frequency not supported"},
    {25, "ARGUMENT_VERSION_MISMATCH", "Argument version mismatch"},
    {26, "DEPRECATED", "Deprecated"},
    {27, "NOT_READY", "Not ready"},
    {28, "GPU_NOT_FOUND", "GPU not found"},
    {29, "INVALID_STATE", "Invalid state"},
    {999, "UNKNOWN", "Unknown Error"},
}};

const ReturnCode* find_return_code(nvmlReturn_t value) {
  for (const auto& code : kReturnCodes) {
    if (code.value == value) return &code;
  }
  return nullptr;
}

// Accepts "NO_PERMISSION", "NVML_ERROR_NO_PERMISSION", "NVML_SUCCESS" or a number.
nvmlReturn_t parse_return_code(const json& value) {
  if (value.is_number_integer()) {
    const auto number = value.get<long long>();
    if (find_return_code(static_cast<nvmlReturn_t>(number)) == nullptr || number < 0) {
      throw std::runtime_error("unknown NVML return code " + value.dump());
    }
    return static_cast<nvmlReturn_t>(number);
  }
  std::string_view name = value.get_ref<const std::string&>();
  for (std::string_view prefix : {"NVML_ERROR_", "NVML_"}) {
    if (name.starts_with(prefix)) {
      name.remove_prefix(prefix.size());
      break;
    }
  }
  for (const auto& code : kReturnCodes) {
    if (code.name == name) return code.value;
  }
  throw std::runtime_error("unknown NVML return code " + value.dump());
}

// ---- Functions, for call counting and failure injection -----------------------------------------

enum Function : std::size_t {
  kInitV2,
  kInit,
  kShutdown,
  kSystemGetDriverVersion,
  kDeviceGetCountV2,
  kDeviceGetCount,
  kDeviceGetHandleByIndexV2,
  kDeviceGetHandleByIndex,
  kDeviceGetHandleByUuid,
  kDeviceGetIndex,
  kDeviceGetName,
  kDeviceGetUuid,
  kDeviceGetArchitecture,
  kDeviceGetTotalEnergyConsumption,
  kDeviceGetPowerUsage,
  kDeviceGetPowerManagementLimit,
  kDeviceGetPowerManagementDefaultLimit,
  kDeviceGetEnforcedPowerLimit,
  kDeviceGetPowerManagementLimitConstraints,
  kDeviceSetPowerManagementLimit,
  kDeviceSetGpuLockedClocks,
  kDeviceResetGpuLockedClocks,
  kDeviceGetFieldValues,
  // Health, topology and MIG (gpuhealth).
  kDeviceGetPciInfoV3,
  kDeviceGetCudaComputeCapability,
  kDeviceGetMigMode,
  kDeviceGetMaxMigDeviceCount,
  kDeviceGetMigDeviceHandleByIndex,
  kDeviceGetDeviceHandleFromMigDeviceHandle,
  kDeviceIsMigDeviceHandle,
  kFunctionCount,
};

constexpr std::array<std::string_view, kFunctionCount> kFunctionNames{
    "nvmlInit_v2",
    "nvmlInit",
    "nvmlShutdown",
    "nvmlSystemGetDriverVersion",
    "nvmlDeviceGetCount_v2",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex_v2",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetHandleByUUID",
    "nvmlDeviceGetIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetArchitecture",
    "nvmlDeviceGetTotalEnergyConsumption",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetPowerManagementLimit",
    "nvmlDeviceGetPowerManagementDefaultLimit",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetPowerManagementLimitConstraints",
    "nvmlDeviceSetPowerManagementLimit",
    "nvmlDeviceSetGpuLockedClocks",
    "nvmlDeviceResetGpuLockedClocks",
    "nvmlDeviceGetFieldValues",
    "nvmlDeviceGetPciInfo_v3",
    "nvmlDeviceGetCudaComputeCapability",
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetMaxMigDeviceCount",
    "nvmlDeviceGetMigDeviceHandleByIndex",
    "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
    "nvmlDeviceIsMigDeviceHandle",
};

std::optional<Function> find_function(std::string_view name) {
  for (std::size_t i = 0; i < kFunctionNames.size(); ++i) {
    if (kFunctionNames[i] == name) return static_cast<Function>(i);
  }
  return std::nullopt;
}

// Injected failures: the return code each function gives instead of doing its work (0: none).
using FailureTable = std::array<nvmlReturn_t, kFunctionCount>;

FailureTable parse_failures(const json& object) {
  FailureTable failures{};
  if (object.is_null()) return failures;
  if (!object.is_object()) throw std::runtime_error("\"fail\" must be an object");
  for (const auto& [name, code] : object.items()) {
    const auto function = find_function(name);
    if (!function) {
      throw std::runtime_error("\"fail\" names an unknown NVML function \"" + name + "\"");
    }
    failures[*function] = parse_return_code(code);
  }
  return failures;
}

// ---- GPUs
// -----------------------------------------------------------------------------------------

struct FakeGpu {
  std::string name;
  std::string uuid;
  unsigned architecture = 7;  // NVML_DEVICE_ARCH_AMPERE
  unsigned min_limit_mw = 0;
  unsigned max_limit_mw = 0;
  unsigned default_limit_mw = 0;
  unsigned limit_mw = 0;
  double idle_power_w = 0;
  double max_power_w = 0;
  double load = 0;
  bool energy_counter = true;
  bool lost = false;
  FailureTable failures{};
  // Health, topology and MIG (see parse_health_and_topology).
  bool no_permission = false;                     // handles: NO_PERMISSION (device cgroups)
  std::optional<unsigned long> lost_after_calls;  // per-device calls left before it is lost
  std::string lost_trigger_file;                  // lost once this file exists
  bool power_reading = true;                      // false: GetPowerUsage is NOT_SUPPORTED (vGPU)
  std::string pci_bus_id;
  unsigned pci_domain = 0, pci_bus = 0, pci_device = 0;
  int cc_major = 8, cc_minor = 0;      // CUDA compute capability
  std::vector<std::string> mig_uuids;  // MIG mode is on when not empty
  unsigned locked_clock_min_mhz = 0;   // 0: clocks not locked
  unsigned locked_clock_max_mhz = 0;

  // The energy counter: energy_j was the counter's value at last_change; power has been constant
  // since, so the value now is energy_j + power × elapsed, exactly.
  double energy_j = 0;
  Clock::time_point last_change;

  // ---- Measurement realism (JSON keys of the same names; see "Measurement realism" below) ----
  double power_usage_average_s = 0;       // > 0: nvmlDeviceGetPowerUsage averages that many s
  bool power_instant_field = false;       // nvmlDeviceGetFieldValues answers POWER_INSTANT
  unsigned energy_update_period_ms = 0;   // > 0: the counter advances only every that many ms
  unsigned long long energy_wrap_mj = 0;  // > 0: the counter wraps to 0 at that many mJ
  bool persistence_mode = true;           // false: fake_nvml_reload_driver resets limit and counter
  Clock::time_point created;
  // Constant-power segments before last_change, oldest first, to read the counter in the past.
  struct Segment {
    Clock::time_point start;
    double energy_j;
    double power_w;
  };
  std::vector<Segment> history;

  double power_w() const {
    const double demand_w = idle_power_w + load * (max_power_w - idle_power_w);
    return std::min(static_cast<double>(limit_mw) / 1000.0, demand_w);
  }
  double energy_at(Clock::time_point now) const {
    return energy_j + power_w() * std::chrono::duration<double>(now - last_change).count();
  }
  // Call before anything that changes power_w(), so the old power is integrated up to now.
  void settle_energy(Clock::time_point now) {
    history.push_back({last_change, energy_j, power_w()});
    if (history.size() > 512) history.erase(history.begin(), history.begin() + 256);
    energy_j = energy_at(now);
    last_change = now;
  }
  // The counter's exact value at `when` (at or before now); before the first recorded segment,
  // the power is taken as constant.
  double energy_at_past(Clock::time_point when) const {
    if (when >= last_change || history.empty()) return energy_at(when);
    auto segment = std::upper_bound(history.begin(), history.end(), when,
                                    [](auto t, const Segment& s) { return t < s.start; });
    if (segment != history.begin()) --segment;
    return segment->energy_j +
           segment->power_w * std::chrono::duration<double>(when - segment->start).count();
  }
  // What nvmlDeviceGetPowerUsage reports: the model's power, or its average over the last
  // power_usage_average_s (Ampere and newer, except GA100, average over 1 s).
  double reported_power_w(Clock::time_point now) const {
    if (power_usage_average_s <= 0) return power_w();
    const auto span = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(power_usage_average_s));
    return (energy_at(now) - energy_at_past(now - span)) / power_usage_average_s;
  }
  // What nvmlDeviceGetTotalEnergyConsumption reports, in mJ: the counter at the last update step,
  // wrapped if configured.
  unsigned long long reported_energy_mj(Clock::time_point now) const {
    Clock::time_point at = now;
    if (energy_update_period_ms > 0) {
      const auto period = std::chrono::milliseconds(energy_update_period_ms);
      at = created + ((now - created) / period) * period;
    }
    const auto millijoules =
        static_cast<unsigned long long>(std::max(0.0, energy_at_past(at)) * 1000.0);
    return energy_wrap_mj > 0 ? millijoules % energy_wrap_mj : millijoules;
  }
};

constexpr unsigned kNvmlArchVolta = 5;

unsigned parse_architecture(const json& value) {
  static constexpr std::array<std::pair<std::string_view, unsigned>, 9> kNames{{
      {"kepler", 2},
      {"maxwell", 3},
      {"pascal", 4},
      {"volta", 5},
      {"turing", 6},
      {"ampere", 7},
      {"ada", 8},
      {"hopper", 9},
      {"blackwell", 10},
  }};
  if (value.is_number_unsigned()) return value.get<unsigned>();
  std::string name = value.get<std::string>();
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const auto& [known, number] : kNames) {
    if (known == name) return number;
  }
  throw std::runtime_error("unknown architecture " + value.dump() +
                           " (use an NVML number or kepler ... blackwell)");
}

unsigned to_milliwatts(double watts, std::string_view field) {
  if (!std::isfinite(watts) || watts < 0 || watts > 4.0e6) {
    throw std::runtime_error(std::string(field) + " must be a power in W between 0 and 4000000");
  }
  return static_cast<unsigned>(std::llround(watts * 1000.0));
}

std::string default_uuid(std::size_t index) {
  char uuid[64];
  std::snprintf(uuid, sizeof uuid, "GPU-00000000-0000-0000-0000-%012zu", index);
  return uuid;
}

// Measurement realism (keys of one GPU's entry, all optional):
//   "power_usage_average_s": 1.0    nvmlDeviceGetPowerUsage returns the average over that many
//                                   seconds, as Ampere (except GA100) and newer do; default 0
//   "power_instant_field": true     nvmlDeviceGetFieldValues answers NVML_FI_DEV_POWER_INSTANT
//                                   (186) with the model's power now; default false (NOT_SUPPORTED)
//   "energy_update_period_ms": 100  the counter advances only every that many ms; default 0
//   "energy_wrap_mj": N             the counter wraps to 0 at N mJ; default 0 (never)
//   "persistence_mode": false       fake_nvml_reload_driver resets the limit to the default and the
//                                   counter to 0, as a driver unloaded without persistence mode
//                                   does; default true
void parse_measurement_realism(const json& config, FakeGpu& gpu, Clock::time_point now) {
  gpu.power_usage_average_s = config.value("power_usage_average_s", 0.0);
  if (!std::isfinite(gpu.power_usage_average_s) || gpu.power_usage_average_s < 0 ||
      gpu.power_usage_average_s > 60) {
    throw std::runtime_error("power_usage_average_s must be between 0 and 60");
  }
  gpu.power_instant_field = config.value("power_instant_field", false);
  gpu.energy_update_period_ms = config.value("energy_update_period_ms", 0U);
  gpu.energy_wrap_mj = config.value("energy_wrap_mj", 0ULL);
  gpu.persistence_mode = config.value("persistence_mode", true);
  gpu.created = now;
}

// ---- Health, topology and MIG (gpuhealth) ------------------------------------------------------
//   "no_permission": true          handles by index or UUID return NO_PERMISSION (device cgroups)
//   "lost_after_calls": N          the GPU is lost after N more per-device calls (handles included)
//   "lost_trigger_file": "path"    the GPU is lost once this file exists (checked at every call)
//   "power_reading": false         nvmlDeviceGetPowerUsage is NOT_SUPPORTED (vGPU guests)
//   "pci_bus_id": "00000000:3B:00.0"  default 00000000:<0x10 + index>:00.0, so config order is
//                                  PCI order, as NVML enumerates on Linux
//   "compute_capability": "8.6"    default from the architecture (Volta 7.0 ... Blackwell 10.0)
//   "mig_devices": ["MIG-…", …]    MIG mode on, with these MIG devices (at most 7); their handles
//                                  give UUIDs and the parent, and NOT_SUPPORTED for power/energy

constexpr unsigned kMaxMigDevices = 7;

std::pair<int, int> default_compute_capability(unsigned architecture) {
  switch (architecture) {
    case 2:
      return {3, 5};
    case 3:
      return {5, 0};
    case 4:
      return {6, 0};
    case 5:
      return {7, 0};
    case 6:
      return {7, 5};
    case 7:
      return {8, 0};
    case 8:
      return {8, 9};
    case 9:
      return {9, 0};
    default:
      return {10, 0};
  }
}

void parse_pci_bus_id(FakeGpu& gpu) {
  unsigned domain = 0, bus = 0, device = 0, function = 0;
  char extra = 0;
  if (std::sscanf(gpu.pci_bus_id.c_str(), "%x:%x:%x.%x%c", &domain, &bus, &device, &function,
                  &extra) != 4) {
    throw std::runtime_error("pci_bus_id \"" + gpu.pci_bus_id +
                             "\" is not DOMAIN:BUS:DEVICE.FUNCTION in hexadecimal");
  }
  gpu.pci_domain = domain;
  gpu.pci_bus = bus;
  gpu.pci_device = device;
}

void parse_health_and_topology(const json& config, std::size_t index, FakeGpu& gpu) {
  gpu.no_permission = config.value("no_permission", false);
  if (config.contains("lost_after_calls")) {
    gpu.lost_after_calls = config["lost_after_calls"].get<unsigned long>();
  }
  gpu.lost_trigger_file = config.value("lost_trigger_file", "");
  gpu.power_reading = config.value("power_reading", true);
  char bus_id[32];
  std::snprintf(bus_id, sizeof bus_id, "00000000:%02X:00.0", static_cast<unsigned>(0x10 + index));
  gpu.pci_bus_id = config.value("pci_bus_id", std::string(bus_id));
  parse_pci_bus_id(gpu);
  std::tie(gpu.cc_major, gpu.cc_minor) = default_compute_capability(gpu.architecture);
  if (config.contains("compute_capability")) {
    const auto text = config["compute_capability"].get<std::string>();
    if (std::sscanf(text.c_str(), "%d.%d", &gpu.cc_major, &gpu.cc_minor) != 2) {
      throw std::runtime_error("compute_capability \"" + text + "\" is not MAJOR.MINOR");
    }
  }
  gpu.mig_uuids = config.value("mig_devices", std::vector<std::string>{});
  if (gpu.mig_uuids.size() > kMaxMigDevices) {
    throw std::runtime_error("at most 7 mig_devices per GPU");
  }
}

// Per-device calls age the GPU towards its configured loss; true once it is lost.
bool advance_towards_loss(FakeGpu& gpu) {
  if (!gpu.lost && gpu.lost_after_calls) {
    if (*gpu.lost_after_calls == 0) {
      gpu.lost = true;
    } else {
      --*gpu.lost_after_calls;
    }
  }
  if (!gpu.lost && !gpu.lost_trigger_file.empty()) {
    std::error_code ignored;
    gpu.lost = std::filesystem::exists(gpu.lost_trigger_file, ignored);
  }
  return gpu.lost;
}

FakeGpu parse_gpu(const json& config, std::size_t index, Clock::time_point now) {
  if (!config.is_object()) throw std::runtime_error("every entry of \"gpus\" must be an object");
  FakeGpu gpu;
  gpu.name = config.value("name", "NVIDIA A40");
  gpu.uuid = config.value("uuid", default_uuid(index));
  if (config.contains("architecture")) {
    gpu.architecture = parse_architecture(config["architecture"]);
  }
  gpu.min_limit_mw = to_milliwatts(config.value("min_limit_w", 100.0), "min_limit_w");
  gpu.max_limit_mw = to_milliwatts(config.value("max_limit_w", 300.0), "max_limit_w");
  gpu.default_limit_mw =
      to_milliwatts(config.value("default_limit_w", static_cast<double>(gpu.max_limit_mw) / 1000.0),
                    "default_limit_w");
  gpu.limit_mw = to_milliwatts(
      config.value("limit_w", static_cast<double>(gpu.default_limit_mw) / 1000.0), "limit_w");
  gpu.idle_power_w = config.value("idle_power_w", 30.0);
  gpu.max_power_w = config.value("max_power_w", 280.0);
  gpu.load = config.value("load", 0.5);
  // Pre-Volta GPUs have no cumulative energy counter, so that is the default for them.
  gpu.energy_counter = config.value("energy_counter", gpu.architecture >= kNvmlArchVolta);
  gpu.energy_j = config.value("initial_energy_j", 0.0);
  gpu.lost = config.value("lost", false);
  gpu.failures = parse_failures(config.value("fail", json()));
  parse_health_and_topology(config, index, gpu);
  gpu.last_change = now;
  parse_measurement_realism(config, gpu, now);

  const auto where = "GPU " + std::to_string(index) + " (" + gpu.uuid + "): ";
  if (gpu.min_limit_mw > gpu.max_limit_mw) {
    throw std::runtime_error(where + "min_limit_w exceeds max_limit_w");
  }
  for (const auto& [limit, field] :
       {std::pair{gpu.default_limit_mw, "default_limit_w"}, std::pair{gpu.limit_mw, "limit_w"}}) {
    if (limit < gpu.min_limit_mw || limit > gpu.max_limit_mw) {
      throw std::runtime_error(where + field + " is outside [min_limit_w, max_limit_w]");
    }
  }
  const bool powers_valid = std::isfinite(gpu.idle_power_w) && std::isfinite(gpu.max_power_w) &&
                            gpu.idle_power_w >= 0 && gpu.max_power_w >= gpu.idle_power_w;
  if (!powers_valid) throw std::runtime_error(where + "needs 0 <= idle_power_w <= max_power_w");
  if (!std::isfinite(gpu.load) || gpu.load < 0) {
    throw std::runtime_error(where + "load must be a number >= 0");
  }
  if (!std::isfinite(gpu.energy_j) || gpu.energy_j < 0) {
    throw std::runtime_error(where + "initial_energy_j must be a number >= 0");
  }
  return gpu;
}

// ---- Library state
// --------------------------------------------------------------------------------

// Handles are addresses in this table, so they stay valid (and recognisable) across re-inits.
constexpr unsigned kMaxGpus = 64;
std::array<nvmlDevice_st, kMaxGpus> make_handles() {
  std::array<nvmlDevice_st, kMaxGpus> handles{};
  for (unsigned i = 0; i < kMaxGpus; ++i) handles[i] = {i, -1};
  return handles;
}
std::array<nvmlDevice_st, kMaxGpus> kHandles = make_handles();

// MIG device handles: slot j of GPU i is kMigHandles[i * kMaxMigDevices + j].
std::array<nvmlDevice_st, kMaxGpus * kMaxMigDevices> make_mig_handles() {
  std::array<nvmlDevice_st, kMaxGpus * kMaxMigDevices> handles{};
  for (unsigned i = 0; i < handles.size(); ++i) {
    handles[i] = {i / kMaxMigDevices, static_cast<int>(i % kMaxMigDevices)};
  }
  return handles;
}
std::array<nvmlDevice_st, kMaxGpus* kMaxMigDevices> kMigHandles = make_mig_handles();

bool is_mig_handle(nvmlDevice_t device) {
  const auto* first = kMigHandles.data();
  return device != nullptr && !std::less<>{}(device, first) &&
         std::less<>{}(device, first + kMigHandles.size());
}

struct Configuration {
  std::optional<nvmlReturn_t> init_error;
  std::string driver_version;
  FailureTable failures{};
  std::vector<FakeGpu> gpus;
};

struct FakeLibrary {
  std::mutex mutex;
  unsigned init_count = 0;
  std::string driver_version;
  std::string state_path;  // empty: no state file
  FailureTable failures{};
  std::vector<FakeGpu> gpus;
  std::array<unsigned long, kFunctionCount> call_counts{};
  // The state file version (inode, mtime, size) whose limits this process has applied.
  std::tuple<ino_t, time_t, long, long long> applied_state{};

  FakeGpu* gpu_for(nvmlDevice_t device) {
    const auto* first = kHandles.data();
    const bool in_table = device != nullptr && !std::less<>{}(device, first) &&
                          std::less<>{}(device, first + kMaxGpus);
    if (!in_table || device->index >= gpus.size()) return nullptr;
    return &gpus[device->index];
  }
  // The parent of a MIG device handle; nullptr when `device` is no live MIG device's handle.
  FakeGpu* parent_of_mig(nvmlDevice_t device) {
    if (!is_mig_handle(device) || device->index >= gpus.size()) return nullptr;
    FakeGpu& parent = gpus[device->index];
    return static_cast<std::size_t>(device->mig) < parent.mig_uuids.size() ? &parent : nullptr;
  }
};

FakeLibrary& library() {
  static FakeLibrary instance;
  return instance;
}

const char* environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

json read_json_file(const std::string& path, std::string_view what) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + std::string(what) + " '" + path + "'");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string(what) + " '" + path + "' is not valid JSON: " + e.what());
  }
}

Configuration load_configuration(Clock::time_point now) {
  const char* path = environment("FAKE_NVML_CONFIG");
  if (path == nullptr) throw std::runtime_error("FAKE_NVML_CONFIG is not set");
  const json config = read_json_file(path, "config");
  try {
    if (!config.is_object()) throw std::runtime_error("the top level must be an object");
    Configuration result;
    if (config.contains("init_error")) result.init_error = parse_return_code(config["init_error"]);
    result.driver_version = config.value("driver_version", "550.54.15");
    result.failures = parse_failures(config.value("fail", json()));
    const json gpus = config.value("gpus", json::array());
    if (!gpus.is_array()) throw std::runtime_error("\"gpus\" must be an array");
    if (gpus.size() > kMaxGpus) throw std::runtime_error("at most 64 GPUs are supported");
    for (std::size_t i = 0; i < gpus.size(); ++i) result.gpus.push_back(parse_gpu(gpus[i], i, now));
    for (std::size_t i = 0; i < result.gpus.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (result.gpus[i].uuid == result.gpus[j].uuid) {
          throw std::runtime_error("two GPUs have the UUID " + result.gpus[i].uuid);
        }
      }
    }
    return result;
  } catch (const std::exception& e) {
    throw std::runtime_error("config '" + std::string(path) + "': " + e.what());
  }
}

// Applies the limits a previous process left in the state file, as a driver would keep them.
void apply_state_file(const std::string& path, std::vector<FakeGpu>& gpus) {
  std::error_code ignored;
  if (path.empty() || !std::filesystem::exists(path, ignored)) return;
  const json state = read_json_file(path, "state file");
  try {
    for (const auto& entry : state.at("gpus")) {
      const auto uuid = entry.at("uuid").get<std::string>();
      const auto limit_mw = entry.at("limit_mw").get<unsigned>();
      for (auto& gpu : gpus) {
        if (gpu.uuid != uuid) continue;
        if (limit_mw < gpu.min_limit_mw || limit_mw > gpu.max_limit_mw) {
          throw std::runtime_error("limit of " + uuid + " is outside its constraints");
        }
        gpu.limit_mw = limit_mw;
      }
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("state file '" + path + "': " + e.what());
  }
}

// Writes every GPU's limit to the state file: a temporary file renamed over it, so a reader (or a
// process killed mid-write) never sees a partial file.
bool write_state_file(const FakeLibrary& lib) {
  if (lib.state_path.empty()) return true;
  json gpus = json::array();
  for (const auto& gpu : lib.gpus) gpus.push_back({{"uuid", gpu.uuid}, {"limit_mw", gpu.limit_mw}});
  const std::string temporary = lib.state_path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << json{{"gpus", gpus}}.dump(2) << '\n';
    if (!out.flush()) {
      std::fprintf(stderr, "fake NVML: cannot write state file '%s'\n", temporary.c_str());
      return false;
    }
  }
  if (std::rename(temporary.c_str(), lib.state_path.c_str()) != 0) {
    std::fprintf(stderr, "fake NVML: cannot rename '%s' to '%s': %s\n", temporary.c_str(),
                 lib.state_path.c_str(), std::strerror(errno));
    return false;
  }
  return true;
}

// ---- One driver across processes
// ------------------------------------------------------------------ A real driver holds one limit
// per GPU whatever process set it. The fake shares its limits through the state file: a limit
// change takes an flock on <state>.lock, re-reads the file, changes and writes it; reads of the
// limit (and of power and energy, which depend on it) re-read the file when it changed since this
// process last applied it.

class StateFileLock {
 public:
  explicit StateFileLock(const std::string& state_path) {
    if (state_path.empty()) return;
    fd_ = ::open((state_path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) {
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
  }
  ~StateFileLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  StateFileLock(const StateFileLock&) = delete;
  StateFileLock& operator=(const StateFileLock&) = delete;

 private:
  int fd_ = -1;
};

// Applies the state file's limits when another process (or this one) rewrote it since last seen.
void sync_driver_state(FakeLibrary& lib) {
  if (lib.state_path.empty()) return;
  struct stat info {};
  if (::stat(lib.state_path.c_str(), &info) != 0) return;
  const auto version = std::tuple(info.st_ino, info.st_mtim.tv_sec, info.st_mtim.tv_nsec,
                                  static_cast<long long>(info.st_size));
  if (version == lib.applied_state) return;
  try {
    const auto now = Clock::now();
    std::vector<FakeGpu> updated = lib.gpus;
    apply_state_file(lib.state_path, updated);
    for (std::size_t i = 0; i < updated.size(); ++i) {
      if (updated[i].limit_mw == lib.gpus[i].limit_mw) continue;
      lib.gpus[i].settle_energy(now);
      lib.gpus[i].limit_mw = updated[i].limit_mw;
    }
    lib.applied_state = version;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fake NVML: %s; keeping the limits this process knows\n", e.what());
  }
}

// ---- Call wrappers
// --------------------------------------------------------------------------------

// A call that needs NVML initialised but no device: counts it, checks init and injected failures.
template <typename Body>
nvmlReturn_t system_call(Function function, Body&& body) {
  FakeLibrary& lib = library();
  std::lock_guard lock(lib.mutex);
  ++lib.call_counts[function];
  if (lib.init_count == 0) return kUninitialized;
  if (lib.failures[function] != kSuccess) return lib.failures[function];
  return body(lib);
}

// A per-device call: as system_call, then the handle, a lost GPU and the GPU's injected failures.
template <typename Body>
nvmlReturn_t device_call(Function function, nvmlDevice_t device, Body&& body) {
  return system_call(function, [&](FakeLibrary& lib) {
    if (FakeGpu* parent = lib.parent_of_mig(device)) {
      // A MIG device has no power, energy or limits of its own.
      return advance_towards_loss(*parent) ? kGpuIsLost : kNotSupported;
    }
    FakeGpu* gpu = lib.gpu_for(device);
    if (gpu == nullptr) return kInvalidArgument;
    if (advance_towards_loss(*gpu)) return kGpuIsLost;
    if (gpu->failures[function] != kSuccess) return gpu->failures[function];
    return body(lib, *gpu);
  });
}

// A call on a MIG device handle that MIG devices answer (name, UUID): `body(parent, slot)`.
template <typename Body>
nvmlReturn_t mig_identity_call(Function function, nvmlDevice_t device, Body&& body) {
  return system_call(function, [&](FakeLibrary& lib) {
    FakeGpu* parent = lib.parent_of_mig(device);
    if (parent == nullptr) return kInvalidArgument;
    if (advance_towards_loss(*parent)) return kGpuIsLost;
    return body(*parent, static_cast<std::size_t>(device->mig));
  });
}

// Copies a string into a caller's buffer the way NVML does: INSUFFICIENT_SIZE when it does not fit.
nvmlReturn_t copy_string(const std::string& value, char* buffer, unsigned length) {
  if (buffer == nullptr) return kInvalidArgument;
  if (value.size() + 1 > length) return kInsufficientSize;
  std::memcpy(buffer, value.c_str(), value.size() + 1);
  return kSuccess;
}

nvmlReturn_t initialize(Function function) {
  FakeLibrary& lib = library();
  std::lock_guard lock(lib.mutex);
  if (lib.init_count > 0) {
    ++lib.call_counts[function];
    ++lib.init_count;
    return kSuccess;
  }
  lib.call_counts = {};
  ++lib.call_counts[function];
  try {
    const auto now = Clock::now();
    Configuration config = load_configuration(now);
    if (config.init_error) return *config.init_error;
    const char* state_path = environment("FAKE_NVML_STATE");
    lib.state_path = state_path != nullptr ? state_path : "";
    apply_state_file(lib.state_path, config.gpus);
    lib.driver_version = std::move(config.driver_version);
    lib.failures = config.failures;
    lib.gpus = std::move(config.gpus);
    lib.init_count = 1;
    return kSuccess;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fake NVML: %s; nvmlInit returns DRIVER_NOT_LOADED\n", e.what());
    return kDriverNotLoaded;
  }
}

nvmlReturn_t device_count(Function function, unsigned* count) {
  return system_call(function, [&](FakeLibrary& lib) {
    if (count == nullptr) return kInvalidArgument;
    *count = static_cast<unsigned>(lib.gpus.size());
    return kSuccess;
  });
}

nvmlReturn_t handle_by_index(Function function, unsigned index, nvmlDevice_t* device) {
  return system_call(function, [&](FakeLibrary& lib) {
    if (device == nullptr || index >= lib.gpus.size()) return kInvalidArgument;
    FakeGpu& gpu = lib.gpus[index];
    if (gpu.no_permission) return kNoPermission;
    if (advance_towards_loss(gpu)) return kGpuIsLost;
    if (gpu.failures[function] != kSuccess) return gpu.failures[function];
    *device = &kHandles[index];
    return kSuccess;
  });
}

// For the control exports: the GPU at `index`, or nullptr after saying why on stderr.
FakeGpu* control_gpu(FakeLibrary& lib, unsigned index, const char* control) {
  if (index < lib.gpus.size()) return &lib.gpus[index];
  std::fprintf(stderr, "fake NVML: %s: there is no GPU %u (%zu GPUs configured)\n", control, index,
               lib.gpus.size());
  return nullptr;
}

}  // namespace

// ---- NVML exports
// ---------------------------------------------------------------------------------

FAKE_NVML_EXPORT nvmlReturn_t nvmlInit_v2() { return initialize(kInitV2); }
FAKE_NVML_EXPORT nvmlReturn_t nvmlInit() { return initialize(kInit); }

FAKE_NVML_EXPORT nvmlReturn_t nvmlShutdown() {
  return system_call(kShutdown, [](FakeLibrary& lib) {
    --lib.init_count;
    return kSuccess;
  });
}

FAKE_NVML_EXPORT const char* nvmlErrorString(nvmlReturn_t result) {
  const ReturnCode* code = find_return_code(result);
  return code != nullptr ? code->text : "Unknown Error";
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned length) {
  return system_call(kSystemGetDriverVersion, [&](FakeLibrary& lib) {
    return copy_string(lib.driver_version, version, length);
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned* count) {
  return device_count(kDeviceGetCountV2, count);
}
FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned* count) {
  return device_count(kDeviceGetCount, count);
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned index, nvmlDevice_t* device) {
  return handle_by_index(kDeviceGetHandleByIndexV2, index, device);
}
FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned index, nvmlDevice_t* device) {
  return handle_by_index(kDeviceGetHandleByIndex, index, device);
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char* uuid, nvmlDevice_t* device) {
  return system_call(kDeviceGetHandleByUuid, [&](FakeLibrary& lib) {
    if (uuid == nullptr || device == nullptr) return kInvalidArgument;
    for (unsigned i = 0; i < lib.gpus.size(); ++i) {
      FakeGpu& gpu = lib.gpus[i];
      if (const auto mig = std::find(gpu.mig_uuids.begin(), gpu.mig_uuids.end(), uuid);
          mig != gpu.mig_uuids.end()) {
        if (gpu.no_permission) return kNoPermission;
        if (advance_towards_loss(gpu)) return kGpuIsLost;
        *device = &kMigHandles[i * kMaxMigDevices + (mig - gpu.mig_uuids.begin())];
        return kSuccess;
      }
      if (gpu.uuid != uuid) continue;
      if (gpu.no_permission) return kNoPermission;
      if (advance_towards_loss(gpu)) return kGpuIsLost;
      if (gpu.failures[kDeviceGetHandleByUuid] != kSuccess) {
        return gpu.failures[kDeviceGetHandleByUuid];
      }
      *device = &kHandles[i];
      return kSuccess;
    }
    return kNotFound;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned* index) {
  return device_call(kDeviceGetIndex, device, [&](FakeLibrary&, FakeGpu&) {
    if (index == nullptr) return kInvalidArgument;
    *index = device->index;
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned length) {
  if (is_mig_handle(device)) {
    return mig_identity_call(kDeviceGetName, device, [&](const FakeGpu& parent, std::size_t) {
      return copy_string(parent.name + " MIG slice", name, length);
    });
  }
  return device_call(kDeviceGetName, device, [&](FakeLibrary&, FakeGpu& gpu) {
    return copy_string(gpu.name, name, length);
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned length) {
  if (is_mig_handle(device)) {
    return mig_identity_call(kDeviceGetUuid, device, [&](const FakeGpu& parent, std::size_t slot) {
      return copy_string(parent.mig_uuids[slot], uuid, length);
    });
  }
  return device_call(kDeviceGetUuid, device, [&](FakeLibrary&, FakeGpu& gpu) {
    return copy_string(gpu.uuid, uuid, length);
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, unsigned* arch) {
  return device_call(kDeviceGetArchitecture, device, [&](FakeLibrary&, FakeGpu& gpu) {
    if (arch == nullptr) return kInvalidArgument;
    *arch = gpu.architecture;
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device,
                                                                  unsigned long long* energy_mj) {
  return device_call(kDeviceGetTotalEnergyConsumption, device, [&](FakeLibrary& lib, FakeGpu& gpu) {
    sync_driver_state(lib);
    if (!gpu.energy_counter) return kNotSupported;
    if (energy_mj == nullptr) return kInvalidArgument;
    // The counter is whole mJ, truncated like a hardware counter.
    *energy_mj = gpu.reported_energy_mj(Clock::now());
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned* power_mw) {
  return device_call(kDeviceGetPowerUsage, device, [&](FakeLibrary& lib, FakeGpu& gpu) {
    sync_driver_state(lib);
    if (power_mw == nullptr) return kInvalidArgument;
    if (!gpu.power_reading) return kNotSupported;
    *power_mw = static_cast<unsigned>(std::llround(gpu.reported_power_w(Clock::now()) * 1000.0));
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device,
                                                                unsigned* limit_mw) {
  return device_call(kDeviceGetPowerManagementLimit, device, [&](FakeLibrary& lib, FakeGpu& gpu) {
    if (limit_mw == nullptr) return kInvalidArgument;
    sync_driver_state(lib);
    *limit_mw = gpu.limit_mw;
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t device,
                                                                       unsigned* limit_mw) {
  return device_call(kDeviceGetPowerManagementDefaultLimit, device,
                     [&](FakeLibrary&, FakeGpu& gpu) {
                       if (limit_mw == nullptr) return kInvalidArgument;
                       *limit_mw = gpu.default_limit_mw;
                       return kSuccess;
                     });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device,
                                                              unsigned* limit_mw) {
  return device_call(kDeviceGetEnforcedPowerLimit, device, [&](FakeLibrary&, FakeGpu& gpu) {
    if (limit_mw == nullptr) return kInvalidArgument;
    *limit_mw = gpu.limit_mw;  // no other constraint (thermal, board) is emulated
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t device,
                                                                           unsigned* min_mw,
                                                                           unsigned* max_mw) {
  return device_call(kDeviceGetPowerManagementLimitConstraints, device,
                     [&](FakeLibrary&, FakeGpu& gpu) {
                       if (min_mw == nullptr || max_mw == nullptr) return kInvalidArgument;
                       *min_mw = gpu.min_limit_mw;
                       *max_mw = gpu.max_limit_mw;
                       return kSuccess;
                     });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceSetPowerManagementLimit(nvmlDevice_t device,
                                                                unsigned limit_mw) {
  return device_call(kDeviceSetPowerManagementLimit, device, [&](FakeLibrary& lib, FakeGpu& gpu) {
    if (limit_mw < gpu.min_limit_mw || limit_mw > gpu.max_limit_mw) return kInvalidArgument;
    const StateFileLock state_lock(lib.state_path);  // the driver's state is one, across processes
    sync_driver_state(lib);
    gpu.settle_energy(Clock::now());
    const unsigned previous_mw = gpu.limit_mw;
    gpu.limit_mw = limit_mw;
    if (!write_state_file(lib)) {
      gpu.limit_mw = previous_mw;
      return kUnknown;
    }
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceSetGpuLockedClocks(nvmlDevice_t device, unsigned min_mhz,
                                                           unsigned max_mhz) {
  return device_call(kDeviceSetGpuLockedClocks, device, [&](FakeLibrary&, FakeGpu& gpu) {
    if (min_mhz > max_mhz) return kInvalidArgument;
    gpu.locked_clock_min_mhz = min_mhz;
    gpu.locked_clock_max_mhz = max_mhz;
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceResetGpuLockedClocks(nvmlDevice_t device) {
  return device_call(kDeviceResetGpuLockedClocks, device, [&](FakeLibrary&, FakeGpu& gpu) {
    gpu.locked_clock_min_mhz = 0;
    gpu.locked_clock_max_mhz = 0;
    return kSuccess;
  });
}

// ---- Health, topology and MIG exports (gpuhealth) ----------------------------------------------

// nvmlPciInfo_t (v2/v3 layout): the legacy 16-byte bus id, domain, bus, device, ids, the bus id.
struct nvmlPciInfo_t {
  char busIdLegacy[16];
  unsigned domain;
  unsigned bus;
  unsigned device;
  unsigned pciDeviceId;
  unsigned pciSubSystemId;
  char busId[32];
};

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  return device_call(kDeviceGetPciInfoV3, device, [&](FakeLibrary&, FakeGpu& gpu) {
    if (pci == nullptr) return kInvalidArgument;
    *pci = {};
    std::snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.0",
                  gpu.pci_domain & 0xFFFF, gpu.pci_bus, gpu.pci_device);
    pci->domain = gpu.pci_domain;
    pci->bus = gpu.pci_bus;
    pci->device = gpu.pci_device;
    pci->pciDeviceId = 0x20B510DE;
    std::snprintf(pci->busId, sizeof pci->busId, "%s", gpu.pci_bus_id.c_str());
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int* major,
                                                                 int* minor) {
  return device_call(kDeviceGetCudaComputeCapability, device, [&](FakeLibrary&, FakeGpu& gpu) {
    if (major == nullptr || minor == nullptr) return kInvalidArgument;
    *major = gpu.cc_major;
    *minor = gpu.cc_minor;
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned* current,
                                                   unsigned* pending) {
  return device_call(kDeviceGetMigMode, device, [&](FakeLibrary&, FakeGpu& gpu) {
    if (current == nullptr || pending == nullptr) return kInvalidArgument;
    *current = *pending = gpu.mig_uuids.empty() ? 0 : 1;
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned* count) {
  return device_call(kDeviceGetMaxMigDeviceCount, device, [&](FakeLibrary&, FakeGpu& gpu) {
    if (count == nullptr) return kInvalidArgument;
    *count = gpu.mig_uuids.empty() ? 0 : kMaxMigDevices;
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device,
                                                                  unsigned index,
                                                                  nvmlDevice_t* mig) {
  return device_call(kDeviceGetMigDeviceHandleByIndex, device, [&](FakeLibrary&, FakeGpu& gpu) {
    if (mig == nullptr) return kInvalidArgument;
    if (gpu.mig_uuids.empty()) return kNotSupported;
    if (index >= kMaxMigDevices) return kInvalidArgument;
    if (index >= gpu.mig_uuids.size()) return kNotFound;  // an empty slot
    *mig = &kMigHandles[device->index * kMaxMigDevices + index];
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig,
                                                                           nvmlDevice_t* device) {
  return system_call(kDeviceGetDeviceHandleFromMigDeviceHandle, [&](FakeLibrary& lib) {
    FakeGpu* parent = lib.parent_of_mig(mig);
    if (parent == nullptr || device == nullptr) return kInvalidArgument;
    if (advance_towards_loss(*parent)) return kGpuIsLost;
    *device = &kHandles[mig->index];
    return kSuccess;
  });
}

FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned* is_mig) {
  return system_call(kDeviceIsMigDeviceHandle, [&](FakeLibrary& lib) {
    if (is_mig == nullptr) return kInvalidArgument;
    if (lib.parent_of_mig(device) != nullptr) {
      *is_mig = 1;
      return kSuccess;
    }
    if (lib.gpu_for(device) == nullptr) return kInvalidArgument;
    *is_mig = 0;
    return kSuccess;
  });
}

// ---- Test controls
// --------------------------------------------------------------------------------

// Changes the load of GPU `index` from now on (energy so far is integrated at the old power).
FAKE_NVML_EXPORT void fake_nvml_set_load(unsigned index, double load) {
  FakeLibrary& lib = library();
  std::lock_guard lock(lib.mutex);
  FakeGpu* gpu = control_gpu(lib, index, "fake_nvml_set_load");
  if (gpu == nullptr) return;
  if (!std::isfinite(load) || load < 0) {
    std::fprintf(stderr, "fake NVML: fake_nvml_set_load: load %g is not a number >= 0\n", load);
    return;
  }
  gpu->settle_energy(Clock::now());
  gpu->load = load;
}

// Makes every per-device call on GPU `index` return GPU_IS_LOST (lost != 0) or work again.
FAKE_NVML_EXPORT void fake_nvml_set_lost(unsigned index, int lost) {
  FakeLibrary& lib = library();
  std::lock_guard lock(lib.mutex);
  if (FakeGpu* gpu = control_gpu(lib, index, "fake_nvml_set_lost")) gpu->lost = lost != 0;
}

// Makes `function_name` return `nvml_return` for GPU `index`; 0 (NVML_SUCCESS) clears the failure.
FAKE_NVML_EXPORT void fake_nvml_set_failure(unsigned index, const char* function_name,
                                            int nvml_return) {
  FakeLibrary& lib = library();
  std::lock_guard lock(lib.mutex);
  FakeGpu* gpu = control_gpu(lib, index, "fake_nvml_set_failure");
  if (gpu == nullptr) return;
  const auto function = find_function(function_name != nullptr ? function_name : "");
  if (!function) {
    std::fprintf(stderr, "fake NVML: fake_nvml_set_failure: unknown NVML function '%s'\n",
                 function_name != nullptr ? function_name : "(null)");
    return;
  }
  gpu->failures[*function] = nvml_return;
}

// The current power limit of GPU `index` in W; NaN (and a line on stderr) when there is no such
// GPU.
FAKE_NVML_EXPORT double fake_nvml_limit_w(unsigned index) {
  FakeLibrary& lib = library();
  std::lock_guard lock(lib.mutex);
  const FakeGpu* gpu = control_gpu(lib, index, "fake_nvml_limit_w");
  return gpu != nullptr ? static_cast<double>(gpu->limit_mw) / 1000.0
                        : std::numeric_limits<double>::quiet_NaN();
}

// The power the model implies now, in W (unrounded); NaN when there is no such GPU.
FAKE_NVML_EXPORT double fake_nvml_power_w(unsigned index) {
  FakeLibrary& lib = library();
  std::lock_guard lock(lib.mutex);
  const FakeGpu* gpu = control_gpu(lib, index, "fake_nvml_power_w");
  return gpu != nullptr ? gpu->power_w() : std::numeric_limits<double>::quiet_NaN();
}

// The energy counter the model implies now, in J (unrounded, whether or not the GPU exposes a
// counter); NaN when there is no such GPU.
FAKE_NVML_EXPORT double fake_nvml_energy_j(unsigned index) {
  FakeLibrary& lib = library();
  std::lock_guard lock(lib.mutex);
  const FakeGpu* gpu = control_gpu(lib, index, "fake_nvml_energy_j");
  return gpu != nullptr ? gpu->energy_at(Clock::now()) : std::numeric_limits<double>::quiet_NaN();
}

// Calls of `function_name` since the last nvmlInit from 0 (that init included); ULONG_MAX for a
// name the fake does not export, so a misspelt name cannot pass for "never called".
FAKE_NVML_EXPORT unsigned long fake_nvml_call_count(const char* function_name) {
  FakeLibrary& lib = library();
  std::lock_guard lock(lib.mutex);
  const auto function = find_function(function_name != nullptr ? function_name : "");
  if (!function) {
    std::fprintf(stderr, "fake NVML: fake_nvml_call_count: unknown NVML function '%s'\n",
                 function_name != nullptr ? function_name : "(null)");
    return std::numeric_limits<unsigned long>::max();
  }
  return lib.call_counts[*function];
}

// How many GPUs the last successful nvmlInit from 0 configured.
FAKE_NVML_EXPORT unsigned fake_nvml_gpu_count() {
  FakeLibrary& lib = library();
  std::lock_guard lock(lib.mutex);
  return static_cast<unsigned>(lib.gpus.size());
}

// ---- Measurement realism: the instant power field, driver reloads, counter jumps ----------------

namespace {

// nvmlFieldValue_t, declared by hand (nvml.h): 40 bytes, the value a union of 8 bytes.
struct FieldValue {
  unsigned field_id;
  unsigned scope_id;
  long long timestamp;
  long long latency_usec;
  int value_type;  // nvmlValueType_t
  nvmlReturn_t nvml_return;
  union {
    double d;
    unsigned ui;
    unsigned long ul;
    unsigned long long ull;
    long long sll;
    int si;
  } value;
};
static_assert(sizeof(FieldValue) == 40, "nvmlFieldValue_t is 40 bytes");

constexpr unsigned kFieldPowerInstant = 186;  // NVML_FI_DEV_POWER_INSTANT, in mW
constexpr int kValueTypeUnsignedInt = 1;      // NVML_VALUE_TYPE_UNSIGNED_INT

}  // namespace

// Like the real call, it succeeds as a whole and reports each field's own result.
FAKE_NVML_EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int count,
                                                       FieldValue* values) {
  return device_call(kDeviceGetFieldValues, device, [&](FakeLibrary& lib, FakeGpu& gpu) {
    if (count < 0 || (count > 0 && values == nullptr)) return kInvalidArgument;
    sync_driver_state(lib);
    const auto now = Clock::now();
    for (int i = 0; i < count; ++i) {
      FieldValue& field = values[i];
      field.timestamp =
          std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
      field.latency_usec = 0;
      if (field.field_id != kFieldPowerInstant || !gpu.power_instant_field) {
        field.nvml_return = kNotSupported;
        continue;
      }
      field.nvml_return = kSuccess;
      field.value_type = kValueTypeUnsignedInt;
      field.value.ui = static_cast<unsigned>(std::llround(gpu.power_w() * 1000.0));
    }
    return kSuccess;
  });
}

// The driver of the GPUs without persistence mode was unloaded and loaded again (the last client
// left): their limits go back to the default and their energy counters restart at 0.
FAKE_NVML_EXPORT void fake_nvml_reload_driver() {
  FakeLibrary& lib = library();
  std::lock_guard lock(lib.mutex);
  const StateFileLock state_lock(lib.state_path);
  sync_driver_state(lib);
  const auto now = Clock::now();
  for (auto& gpu : lib.gpus) {
    if (gpu.persistence_mode) continue;
    gpu.settle_energy(now);
    gpu.limit_mw = gpu.default_limit_mw;
    gpu.energy_j = 0;
    gpu.history.clear();
    gpu.created = now;
  }
  write_state_file(lib);
}

// The energy counter of GPU `index` jumps by `delta_j` (negative: backwards, never below 0).
FAKE_NVML_EXPORT void fake_nvml_jump_energy(unsigned index, double delta_j) {
  FakeLibrary& lib = library();
  std::lock_guard lock(lib.mutex);
  FakeGpu* gpu = control_gpu(lib, index, "fake_nvml_jump_energy");
  if (gpu == nullptr) return;
  gpu->settle_energy(Clock::now());
  gpu->energy_j = std::max(0.0, gpu->energy_j + delta_j);
  gpu->history.clear();  // the past before the jump no longer adds up with the counter
}
