// chase/nvml.h — the NVIDIA GPU backend, over NVML loaded at run time.
//
// Contract: open_nvml() dlopens the NVML library — CHASE_NVML_LIBRARY if set, else
// libnvidia-ml.so.1, else libnvidia-ml.so — so chase builds and runs on machines without an NVIDIA
// driver; nothing from the NVIDIA SDK is needed at build time. It initialises NVML and lists the
// GPUs as CUDA enumerates them: the GPUs this process may open (NVML_ERROR_NO_PERMISSION ones are
// not CUDA devices: inaccessible_gpus()), in CUDA_DEVICE_ORDER (PCI_BUS_ID: by PCI bus id;
// FASTEST_FIRST, CUDA's default: by compute capability, highest first, ties by PCI bus id — CUDA's
// own heuristic is undocumented, see docs/MEASUREMENT.md), then selected by CUDA_VISIBLE_DEVICES
// (indices into that order, GPU UUIDs or unique UUID prefixes, MIG device UUIDs; the list stops at
// the first entry that names no device; unset means all). It reads each GPU's identity and limits
// once. A GPU that is lost or fails while being read does not fail the open: it is listed with its
// GpuState and problem (chase/gpu.h), and so are MIG slices (NVML has no per-slice power: refused,
// unless every slice of the parent GPU is visible, in which case the first slice measures the
// whole parent and says so in GpuInfo::note) and GPUs with neither energy counter nor power reading
// (vGPU guests). open_nvml() throws chase::Error: kUnavailable when the library or driver is
// missing (saying which paths were tried), kDeviceLost when nvmlInit itself reports a lost GPU,
// kInternal with NVML's own text when the GPUs cannot be counted. Every later failure names the
// GPU, the NVML call and NVML's error string; NO_PERMISSION on a limit change explains how to get
// the permission. The backend calls nvmlShutdown when destroyed.
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
  // Device order in CUDA_DEVICE_ORDER syntax (FASTEST_FIRST, PCI_BUS_ID); nullopt: read
  // $CUDA_DEVICE_ORDER.
  std::optional<std::string> device_order;
};

std::unique_ptr<GpuBackend> open_nvml(const NvmlOptions& options = {});

}  // namespace chase
