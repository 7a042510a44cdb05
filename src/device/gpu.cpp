#include "chase/gpu.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>

#include "chase/error.h"

namespace chase {
namespace {

constexpr std::array<std::pair<GpuArchitecture, std::string_view>, 10> kArchitectureNames{{
    {GpuArchitecture::kUnknown, "unknown"},
    {GpuArchitecture::kKepler, "Kepler"},
    {GpuArchitecture::kMaxwell, "Maxwell"},
    {GpuArchitecture::kPascal, "Pascal"},
    {GpuArchitecture::kVolta, "Volta"},
    {GpuArchitecture::kTuring, "Turing"},
    {GpuArchitecture::kAmpere, "Ampere"},
    {GpuArchitecture::kAda, "Ada"},
    {GpuArchitecture::kHopper, "Hopper"},
    {GpuArchitecture::kBlackwell, "Blackwell"},
}};

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

}  // namespace

std::string_view to_string(GpuArchitecture arch) noexcept {
  for (const auto& [value, name] : kArchitectureNames) {
    if (value == arch) return name;
  }
  return "unknown";
}

GpuArchitecture parse_gpu_architecture(std::string_view name) noexcept {
  for (const auto& [value, known] : kArchitectureNames) {
    if (equals_ignoring_case(name, known)) return value;
  }
  return GpuArchitecture::kUnknown;
}

GpuArchitecture gpu_architecture_from_nvml(unsigned nvml_arch) noexcept {
  // nvmlDeviceArchitecture_t: KEPLER 2, MAXWELL 3, PASCAL 4, VOLTA 5, TURING 6, AMPERE 7, ADA 8,
  // HOPPER 9, BLACKWELL 10 — the same order as our enum, offset by one.
  if (nvml_arch < 2 || nvml_arch > 10) return GpuArchitecture::kUnknown;
  return static_cast<GpuArchitecture>(nvml_arch - 1);
}

std::string_view to_string(PowerReading reading) noexcept {
  return reading == PowerReading::kAveraged ? "1s-average" : "instant";
}

std::string_view to_string(GpuState state) noexcept {
  switch (state) {
    case GpuState::kHealthy:
      return "healthy";
    case GpuState::kLost:
      return "lost";
    case GpuState::kFailed:
      return "failed";
    case GpuState::kNotAccessible:
      return "not accessible";
    case GpuState::kUnmeasurable:
      return "not measurable";
    case GpuState::kMigSlice:
      return "MIG slice";
  }
  return "unknown";
}

const std::vector<GpuInfo>& GpuBackend::inaccessible_gpus() const noexcept {
  static const std::vector<GpuInfo> none;
  return none;
}

std::string describe(const GpuInfo& gpu) {
  if (gpu.name.empty() && gpu.uuid.empty()) {
    // Identity unknown (lost or inaccessible before it could be read): the driver index is all.
    return fmt::format("GPU {} (NVML index {})", gpu.index, gpu.hardware_index);
  }
  if (gpu.uuid.empty()) return fmt::format("GPU {} ({})", gpu.index, gpu.name);
  return fmt::format("GPU {} ({}, {})", gpu.index, gpu.name, gpu.uuid);
}

const GpuInfo& checked_gpu(const std::vector<GpuInfo>& gpus, std::size_t gpu) {
  if (gpu >= gpus.size()) {
    throw Error(ErrorCode::kNotFound,
                gpus.empty() ? fmt::format("there is no GPU {}: no GPUs are visible", gpu)
                             : fmt::format("there is no GPU {}: visible GPUs are 0 to {}", gpu,
                                           gpus.size() - 1));
  }
  return gpus[gpu];
}

const GpuInfo& checked_healthy_gpu(const std::vector<GpuInfo>& gpus, std::size_t gpu,
                                   std::string_view use) {
  const GpuInfo& info = checked_gpu(gpus, gpu);
  if (!is_healthy(info)) {
    throw Error(info.state == GpuState::kLost ? ErrorCode::kDeviceLost : ErrorCode::kNotSupported,
                fmt::format("GPU {} cannot be {}: {}", gpu, use, info.problem));
  }
  return info;
}

std::vector<std::size_t> healthy_gpu_indices(const GpuBackend& backend) {
  std::vector<std::size_t> indices;
  for (const GpuInfo& gpu : backend.gpus()) {
    if (is_healthy(gpu)) indices.push_back(gpu.index);
  }
  return indices;
}

void check_power_limit(const GpuInfo& gpu, double watts) {
  if (!std::isfinite(watts) || watts < gpu.min_power_limit_w || watts > gpu.max_power_limit_w) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: power limit {} W is out of range; this GPU accepts {} W to {} W",
                            describe(gpu), watts, gpu.min_power_limit_w, gpu.max_power_limit_w));
  }
}

}  // namespace chase
