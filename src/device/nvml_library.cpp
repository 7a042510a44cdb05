#include "device/nvml_library.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <initializer_list>

namespace chase::nvml {
namespace {

constexpr const char* kStandardNames[] = {"libnvidia-ml.so.1", "libnvidia-ml.so"};

std::string last_dl_error() {
  const char* reason = ::dlerror();
  return reason != nullptr ? reason : "unknown reason";
}

// Loads the library `source` names, or the first standard name that loads. Returns the handle and
// the path loaded.
std::pair<void*, std::string> load(const LibrarySource& source) {
  if (!source.path.empty()) {
    if (void* handle = ::dlopen(source.path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      return {handle, source.path};
    }
    throw Error(ErrorCode::kUnavailable,
                fmt::format("NVML is not available: could not load {} (named by {}): {}. Check "
                            "that path, or leave {} unset to use the driver's libnvidia-ml.so.1.",
                            source.path, source.named_by, last_dl_error(), source.named_by));
  }
  std::string failures[std::size(kStandardNames)];
  for (std::size_t i = 0; i < std::size(kStandardNames); ++i) {
    if (void* handle = ::dlopen(kStandardNames[i], RTLD_NOW | RTLD_LOCAL)) {
      return {handle, kStandardNames[i]};
    }
    failures[i] = last_dl_error();
  }
  throw Error(ErrorCode::kUnavailable,
              fmt::format("NVML is not available: could not load {} ({}) nor {} ({}). Install the "
                          "NVIDIA driver, or set CHASE_NVML_LIBRARY to the path of "
                          "libnvidia-ml.so.1.",
                          kStandardNames[0], failures[0], kStandardNames[1], failures[1]));
}

// Resolves the first of `names` the library exports (newest version first); null when none.
template <typename Function>
Function lookup(void* handle, std::initializer_list<const char*> names,
                const char** found = nullptr) {
  for (const char* name : names) {
    if (void* symbol = ::dlsym(handle, name)) {
      if (found != nullptr) *found = name;
      return reinterpret_cast<Function>(symbol);
    }
  }
  return nullptr;
}

template <typename Function>
void require(Function& target, void* handle, const std::string& path,
             std::initializer_list<const char*> names, const char** found = nullptr) {
  target = lookup<Function>(handle, names, found);
  if (target != nullptr) return;
  throw Error(ErrorCode::kUnavailable,
              fmt::format("NVML is not available: {} does not export {}, so it is not a usable "
                          "NVML library (or its driver is too old). Install a current NVIDIA "
                          "driver, or set CHASE_NVML_LIBRARY to the driver's libnvidia-ml.so.1.",
                          path, fmt::join(names, " nor ")));
}

Api resolve(void* handle, const std::string& path) {
  Api api;
  require(api.init, handle, path, {"nvmlInit_v2", "nvmlInit"}, &api.init_name);
  require(api.shutdown, handle, path, {"nvmlShutdown"});
  require(api.error_string, handle, path, {"nvmlErrorString"});
  require(api.device_get_count, handle, path, {"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"},
          &api.count_name);
  require(api.device_get_handle_by_index, handle, path,
          {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"},
          &api.handle_by_index_name);
  require(api.device_get_name, handle, path, {"nvmlDeviceGetName"});
  require(api.device_get_uuid, handle, path, {"nvmlDeviceGetUUID"});
  require(api.device_get_power_usage, handle, path, {"nvmlDeviceGetPowerUsage"});
  require(api.device_get_power_management_limit, handle, path,
          {"nvmlDeviceGetPowerManagementLimit"});
  require(api.device_get_power_management_default_limit, handle, path,
          {"nvmlDeviceGetPowerManagementDefaultLimit"});
  require(api.device_get_power_management_limit_constraints, handle, path,
          {"nvmlDeviceGetPowerManagementLimitConstraints"});
  require(api.device_set_power_management_limit, handle, path,
          {"nvmlDeviceSetPowerManagementLimit"});
  api.device_get_architecture =
      lookup<decltype(api.device_get_architecture)>(handle, {"nvmlDeviceGetArchitecture"});
  api.device_get_total_energy_consumption =
      lookup<decltype(api.device_get_total_energy_consumption)>(
          handle, {"nvmlDeviceGetTotalEnergyConsumption"});
  api.device_get_field_values =
      lookup<decltype(api.device_get_field_values)>(handle, {"nvmlDeviceGetFieldValues"});
  api.device_get_pci_info = lookup<decltype(api.device_get_pci_info)>(
      handle, {"nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2"});
  api.device_get_cuda_compute_capability = lookup<decltype(api.device_get_cuda_compute_capability)>(
      handle, {"nvmlDeviceGetCudaComputeCapability"});
  api.device_get_handle_by_uuid =
      lookup<decltype(api.device_get_handle_by_uuid)>(handle, {"nvmlDeviceGetHandleByUUID"});
  api.device_get_max_mig_device_count = lookup<decltype(api.device_get_max_mig_device_count)>(
      handle, {"nvmlDeviceGetMaxMigDeviceCount"});
  api.device_get_mig_device_handle_by_index =
      lookup<decltype(api.device_get_mig_device_handle_by_index)>(
          handle, {"nvmlDeviceGetMigDeviceHandleByIndex"});
  api.device_get_device_handle_from_mig_device_handle =
      lookup<decltype(api.device_get_device_handle_from_mig_device_handle)>(
          handle, {"nvmlDeviceGetDeviceHandleFromMigDeviceHandle"});
  return api;
}

std::string_view init_advice(Return result) {
  switch (result) {
    case kDriverNotLoaded:
      return "The NVIDIA kernel driver is not loaded: check that `nvidia-smi` works, and install "
             "the NVIDIA driver or load it with `sudo modprobe nvidia`.";
    case kNoPermission:
      return "This process may not open the GPU device files: check the permissions of "
             "/dev/nvidia* and that your user is in the group that owns them.";
    case kLibRmVersionMismatch:
      return "The NVML library and the loaded kernel driver are different versions, typically "
             "after a driver update: reboot, or reload the driver.";
    case kGpuIsLost:
      return "A GPU fell off the bus or stopped responding: check `nvidia-smi` and the kernel log "
             "(`sudo dmesg | grep -i xid`); a reboot or a driver reload is usually needed.";
    default:
      return "Check that `nvidia-smi` works; reinstalling the NVIDIA driver may help.";
  }
}

}  // namespace

void Library::Closer::operator()(void* handle) const noexcept { ::dlclose(handle); }

Library::Library(const LibrarySource& source) {
  auto [handle, path] = load(source);
  handle_.reset(handle);
  path_ = std::move(path);
  api_ = resolve(handle_.get(), path_);
  const Return result = api_.init();
  if (result != kSuccess) {
    // A lost GPU keeps the whole driver from initialising; anything else means NVML is unusable.
    const ErrorCode code = result == kGpuIsLost ? ErrorCode::kDeviceLost : ErrorCode::kUnavailable;
    throw Error(code, fmt::format("NVML is not available: {}() in {} failed: {}. {}",
                                  api_.init_name, path_, error_text(result), init_advice(result)));
  }
}

Library::~Library() {
  // Nothing useful can be done about a failing shutdown while tearing down.
  static_cast<void>(api_.shutdown());
}

const char* Library::error_text(Return result) const noexcept {
  const char* text = api_.error_string != nullptr ? api_.error_string(result) : nullptr;
  return text != nullptr ? text : "unknown NVML error";
}

ErrorCode error_code_for(Return result) noexcept {
  switch (result) {
    case kNoPermission:
      return ErrorCode::kPermissionDenied;
    case kNotSupported:
    case kFunctionNotFound:
      return ErrorCode::kNotSupported;
    case kGpuIsLost:
      return ErrorCode::kDeviceLost;
    case kInvalidArgument:
      return ErrorCode::kInvalidArgument;
    default:
      return ErrorCode::kInternal;
  }
}

}  // namespace chase::nvml
