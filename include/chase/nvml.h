// chase/nvml.h — the NVIDIA GPU backend, over NVML loaded at run time.
//
// Contract: open_nvml() dlopens the NVML library — CHASE_NVML_LIBRARY if set, else
// libnvidia-ml.so.1, else libnvidia-ml.so — so chase builds and runs on machines without an NVIDIA
// driver; nothing from the NVIDIA SDK is needed at build time. It initialises NVML, selects the
// GPUs named by CUDA_VISIBLE_DEVICES (indices or UUIDs/UUID prefixes, CUDA's rules: the list stops
// at the first entry that names no GPU; unset means all), and reads each GPU's identity and limits
// once. It throws chase::Error: kUnavailable when the library or driver is missing (saying which
// paths were tried), kDeviceLost / kInternal with NVML's own text for other failures. Every later
// failure names the GPU, the NVML call and NVML's error string; NO_PERMISSION on a limit change
// explains how to get the permission. The backend calls nvmlShutdown when destroyed.
//
// Thread safety: as GpuBackend — NVML itself is thread-safe and the backend holds no mutable state.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "chase/gpu.h"

namespace chase {

struct NvmlOptions {
  // Library to load; empty: $CHASE_NVML_LIBRARY, else libnvidia-ml.so.1, else libnvidia-ml.so.
  std::string library_path;
  // GPU selection in CUDA_VISIBLE_DEVICES syntax; nullopt: read $CUDA_VISIBLE_DEVICES.
  std::optional<std::string> visible_devices;
};

std::unique_ptr<GpuBackend> open_nvml(const NvmlOptions& options = {});

}  // namespace chase
