// nvml_library.h — NVML loaded at run time: the few NVML types, declared by hand (no NVIDIA SDK at
// build time), and a Library that dlopens libnvidia-ml, resolves the entry points chase uses once,
// and holds NVML initialised for its lifetime.
//
// Thread safety: a Library is immutable after construction; NVML's functions are thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "chase/error.h"

namespace chase::nvml {

// NVML's nvmlReturn_t (an int enum) and nvmlDevice_t (an opaque pointer).
using Return = int;
struct DeviceOpaque;
using Device = DeviceOpaque*;

// The nvmlReturn_t values chase reacts to.
inline constexpr Return kSuccess = 0;
inline constexpr Return kUninitialized = 1;
inline constexpr Return kInvalidArgument = 2;
inline constexpr Return kNotSupported = 3;
inline constexpr Return kNoPermission = 4;
inline constexpr Return kNotFound = 6;
inline constexpr Return kInsufficientSize = 7;
inline constexpr Return kDriverNotLoaded = 9;
inline constexpr Return kTimeout = 10;
inline constexpr Return kFunctionNotFound = 13;
inline constexpr Return kGpuIsLost = 15;
inline constexpr Return kLibRmVersionMismatch = 18;

// nvmlFieldValue_t (40 bytes; the value is a union of 8 bytes) and the field ids chase reads.
struct FieldValue {
  unsigned field_id = 0;
  unsigned scope_id = 0;
  long long timestamp = 0;
  long long latency_usec = 0;
  int value_type = 0;
  Return nvml_return = 0;
  union {
    double d;
    unsigned ui;
    unsigned long ul;
    unsigned long long ull;
    long long sll;
    int si;
  } value{};
};
static_assert(sizeof(FieldValue) == 40, "nvmlFieldValue_t is 40 bytes");
inline constexpr unsigned kFieldPowerInstant = 186;  // NVML_FI_DEV_POWER_INSTANT (mW)
inline constexpr int kValueTypeUnsignedInt = 1;      // NVML_VALUE_TYPE_UNSIGNED_INT
// nvmlPciInfo_t as of nvmlDeviceGetPciInfo_v2/_v3 (domain, bus and device sit at the same offsets
// in every version; chase reads only those and busId).
struct PciInfo {
  char bus_id_legacy[16];
  unsigned domain;
  unsigned bus;
  unsigned device;
  unsigned pci_device_id;
  unsigned pci_subsystem_id;
  char bus_id[32];
};

// The entry points, resolved newest version first. Optional ones are null when the library lacks
// them (older drivers): the backend then treats the feature as unsupported.
struct Api {
  const char* init_name = nullptr;  // "nvmlInit_v2" or "nvmlInit", for messages
  const char* count_name = nullptr;
  const char* handle_by_index_name = nullptr;

  Return (*init)() = nullptr;
  Return (*shutdown)() = nullptr;
  const char* (*error_string)(Return) = nullptr;
  Return (*device_get_count)(unsigned*) = nullptr;
  Return (*device_get_handle_by_index)(unsigned, Device*) = nullptr;
  Return (*device_get_name)(Device, char*, unsigned) = nullptr;
  Return (*device_get_uuid)(Device, char*, unsigned) = nullptr;
  Return (*device_get_power_usage)(Device, unsigned*) = nullptr;
  Return (*device_get_power_management_limit)(Device, unsigned*) = nullptr;
  Return (*device_get_power_management_default_limit)(Device, unsigned*) = nullptr;
  Return (*device_get_power_management_limit_constraints)(Device, unsigned*, unsigned*) = nullptr;
  Return (*device_set_power_management_limit)(Device, unsigned) = nullptr;
  // Optional.
  Return (*device_get_architecture)(Device, unsigned*) = nullptr;
  Return (*device_get_total_energy_consumption)(Device, unsigned long long*) = nullptr;
  Return (*device_get_field_values)(Device, int, FieldValue*) = nullptr;
  // Optional, for CUDA's device order and MIG (older drivers lack some).
  Return (*device_get_pci_info)(Device, PciInfo*) = nullptr;
  Return (*device_get_cuda_compute_capability)(Device, int*, int*) = nullptr;
  Return (*device_get_handle_by_uuid)(const char*, Device*) = nullptr;
  Return (*device_get_max_mig_device_count)(Device, unsigned*) = nullptr;
  Return (*device_get_mig_device_handle_by_index)(Device, unsigned, Device*) = nullptr;
  Return (*device_get_device_handle_from_mig_device_handle)(Device, Device*) = nullptr;
};

// Where to load NVML from: an explicit path and what named it ("CHASE_NVML_LIBRARY", ...), or,
// when `path` is empty, the driver's standard names.
struct LibrarySource {
  std::string path;
  std::string named_by;
};

class Library {
 public:
  // Loads the library, resolves the entry points and calls nvmlInit. Throws kUnavailable when the
  // library, an entry point or the driver is missing (saying which paths were tried), kDeviceLost
  // when a GPU is lost.
  explicit Library(const LibrarySource& source);
  ~Library();  // nvmlShutdown, then dlclose
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  const Api& api() const noexcept { return api_; }
  // NVML's text for a return code ("Insufficient Permissions"); never null.
  const char* error_text(Return result) const noexcept;

 private:
  struct Closer {
    void operator()(void* handle) const noexcept;
  };

  std::unique_ptr<void, Closer> handle_;  // declared first: closed after everything else
  std::string path_;                      // what was loaded, for messages
  Api api_;
};

// How an NVML failure is classified (NO_PERMISSION → kPermissionDenied, ...).
ErrorCode error_code_for(Return result) noexcept;

}  // namespace chase::nvml
