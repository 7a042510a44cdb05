// nvml_visible_devices.h — which NVML GPUs a CUDA_VISIBLE_DEVICES value selects, by CUDA's rules:
// comma-separated entries, each trimmed, either an NVML index ("2") or a GPU UUID or unique UUID
// prefix ("GPU-8f3a"); the list stops at the first entry that selects no new GPU (out of range, no
// or ambiguous UUID match, a duplicate, "-1", anything else, and MIG devices, not supported yet).
// An empty value selects no GPU.
//
// Thread safety: a pure function.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace chase::nvml {

struct VisibleDevices {
  std::vector<unsigned> indices;  // NVML indices, in CUDA's order
  std::string warning;            // why the list stopped early; empty when every entry was used
};

// `device_count` GPUs exist; `uuid_of(i)` returns NVML GPU i's UUID and is called only when an
// entry is a UUID, so a selection by indices touches no other GPU.
VisibleDevices select_visible_devices(std::string_view spec, unsigned device_count,
                                      const std::function<std::string(unsigned)>& uuid_of);

}  // namespace chase::nvml
