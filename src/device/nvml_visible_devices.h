// nvml_visible_devices.h — which GPUs a CUDA_VISIBLE_DEVICES value selects, by CUDA's rules:
// comma-separated entries, each trimmed, either an index into CUDA's enumeration ("2"), a GPU UUID
// or unique UUID prefix ("GPU-8f3a"), or a MIG device UUID ("MIG-…", resolved by the caller); the
// list stops at the first entry that selects no new device (out of range, no or ambiguous UUID
// match, a duplicate, "-1", old-style "MIG-GPU-…/gi/ci" names, anything else). An empty value
// selects no GPU.
//
// Thread safety: a pure function.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chase::nvml {

struct VisibleDevices {
  std::vector<unsigned> indices;       // positions in the caller's (CUDA's) enumeration, in order
  std::vector<std::string> mig_uuids;  // parallel: the MIG device an entry named, else empty
  std::string warning;  // why the list stopped early; empty when every entry was used
};

// What a MIG entry resolves to: the position of its parent GPU and the MIG device's full UUID, or
// why it resolves to nothing (completes "entry "X" ...").
struct MigMatch {
  std::optional<unsigned> parent;
  std::string mig_uuid;
  std::string problem;
};
using MigResolver = std::function<MigMatch(std::string_view entry)>;

// `device_count` GPUs exist; `uuid_of(i)` returns GPU i's UUID (empty when unknown) and is called
// only when an entry is a UUID, so a selection by indices touches no other GPU. `mig_of` resolves
// "MIG-…" entries; when it is empty, MIG entries stop the list.
VisibleDevices select_visible_devices(std::string_view spec, unsigned device_count,
                                      const std::function<std::string(unsigned)>& uuid_of,
                                      const MigResolver& mig_of = {});

}  // namespace chase::nvml
