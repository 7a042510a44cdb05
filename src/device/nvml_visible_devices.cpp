#include "device/nvml_visible_devices.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace chase::nvml {
namespace {

std::string_view trim(std::string_view text) {
  const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

// One entry resolved to a position (and MIG device), or the reason it selects none.
struct Resolution {
  std::optional<unsigned> index;
  std::string problem;  // completes "entry "X" ..."
  std::string mig_uuid;
};

Resolution rejected(std::string problem) { return {std::nullopt, std::move(problem), ""}; }
Resolution selected(unsigned index) { return {index, "", ""}; }

Resolution resolve_index(std::string_view entry, unsigned device_count) {
  unsigned long long value = 0;
  const auto [end, error] = std::from_chars(entry.data(), entry.data() + entry.size(), value);
  if (end != entry.data() + entry.size()) {
    return rejected("is neither a GPU index nor a GPU UUID");
  }
  if (error != std::errc() || value >= device_count) {
    return rejected(fmt::format("is out of range: there are {} GPUs", device_count));
  }
  return selected(static_cast<unsigned>(value));
}

Resolution resolve_uuid(std::string_view entry, unsigned device_count,
                        const std::function<std::string(unsigned)>& uuid_of) {
  std::vector<unsigned> matches;
  for (unsigned i = 0; i < device_count; ++i) {
    const std::string uuid = uuid_of(i);
    if (uuid.empty()) continue;  // a GPU whose UUID cannot be read (lost) matches nothing
    // A complete UUID wins even if it also prefixes another.
    if (uuid.size() == entry.size() && starts_with_ignoring_case(uuid, entry)) return selected(i);
    if (starts_with_ignoring_case(uuid, entry)) matches.push_back(i);
  }
  if (matches.empty()) return rejected("matches no GPU's UUID");
  if (matches.size() > 1) {
    return rejected(
        fmt::format("is an ambiguous UUID prefix: it matches GPUs {}", fmt::join(matches, ", ")));
  }
  return selected(matches.front());
}

Resolution resolve_mig(std::string_view entry, const MigResolver& mig_of) {
  if (starts_with_ignoring_case(entry, "MIG-GPU-") || entry.find('/') != std::string_view::npos) {
    return rejected(
        "is an old-style MIG name (MIG-GPU-<uuid>/<gi>/<ci>), which chase does not resolve: "
        "use the MIG-<uuid> names `nvidia-smi -L` prints");
  }
  if (!mig_of) return rejected("is a MIG device, which this GPU backend cannot resolve");
  MigMatch match = mig_of(entry);
  if (!match.parent) return rejected(std::move(match.problem));
  return {match.parent, "", std::move(match.mig_uuid)};
}

Resolution resolve_entry(std::string_view entry, unsigned device_count,
                         const std::function<std::string(unsigned)>& uuid_of,
                         const MigResolver& mig_of) {
  if (entry.empty()) return rejected("is empty");
  if (starts_with_ignoring_case(entry, "MIG-")) return resolve_mig(entry, mig_of);
  if (starts_with_ignoring_case(entry, "GPU-")) return resolve_uuid(entry, device_count, uuid_of);
  if (entry.front() == '-') return rejected("is negative, which hides the GPUs after it");
  return resolve_index(entry, device_count);
}

bool repeats(const VisibleDevices& selection, const Resolution& resolution) {
  for (std::size_t i = 0; i < selection.indices.size(); ++i) {
    if (selection.indices[i] == *resolution.index &&
        selection.mig_uuids[i] == resolution.mig_uuid) {
      return true;
    }
  }
  return false;
}

std::string describe_kept(const std::vector<unsigned>& indices) {
  if (indices.empty()) return "no GPU";
  return fmt::format("GPU{} {}", indices.size() > 1 ? "s" : "", fmt::join(indices, ", "));
}

}  // namespace

VisibleDevices select_visible_devices(std::string_view spec, unsigned device_count,
                                      const std::function<std::string(unsigned)>& uuid_of,
                                      const MigResolver& mig_of) {
  VisibleDevices selection;
  if (trim(spec).empty()) return selection;
  std::string_view rest = spec;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view entry = trim(rest.substr(0, comma));
    Resolution resolution = resolve_entry(entry, device_count, uuid_of, mig_of);
    if (resolution.index && repeats(selection, resolution)) {
      resolution = rejected(resolution.mig_uuid.empty()
                                ? fmt::format("repeats GPU {}", *resolution.index)
                                : fmt::format("repeats MIG device {}", resolution.mig_uuid));
    }
    if (!resolution.index) {
      selection.warning = fmt::format(
          "CUDA_VISIBLE_DEVICES=\"{}\": entry \"{}\" {}; as CUDA does, the GPU list stops there, "
          "keeping {}",
          spec, entry, resolution.problem, describe_kept(selection.indices));
      break;
    }
    selection.indices.push_back(*resolution.index);
    selection.mig_uuids.push_back(std::move(resolution.mig_uuid));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return selection;
}

}  // namespace chase::nvml
