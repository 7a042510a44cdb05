// CUDA_VISIBLE_DEVICES (select_visible_devices, src/device/nvml_visible_devices.h) against eight
// GPUs with UUIDs that share prefixes. Whatever the value, the selection is a list of distinct
// indices of existing GPUs.
#include <algorithm>
#include <array>
#include <set>

#include "device/nvml_visible_devices.h"
#include "fuzz_support.h"

namespace {

constexpr std::array<const char*, 8> kUuids = {
    "GPU-8f3a0c1e-0000-0000-0000-000000000000", "GPU-8f3a0c1e-1111-0000-0000-000000000000",
    "GPU-12345678-aaaa-bbbb-cccc-000000000000", "GPU-12345679-aaaa-bbbb-cccc-000000000000",
    "GPU-ffffffff-0000-0000-0000-000000000000", "GPU-0a0a0a0a-0000-0000-0000-000000000000",
    "GPU-8f000000-0000-0000-0000-000000000000", "GPU-deadbeef-0000-0000-0000-000000000000"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const unsigned count = data[0] % (kUuids.size() + 1);
  const auto spec = chase::fuzz::as_text(data + 1, size - 1);
  const auto selected = chase::nvml::select_visible_devices(spec, count, [&](unsigned index) {
    chase::fuzz::require(index < count);
    return std::string(kUuids[index]);
  });
  const std::set<unsigned> distinct(selected.indices.begin(), selected.indices.end());
  chase::fuzz::require(distinct.size() == selected.indices.size());
  chase::fuzz::require(std::all_of(selected.indices.begin(), selected.indices.end(),
                                   [&](unsigned index) { return index < count; }));
  return 0;
}
