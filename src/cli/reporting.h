// Internal (CLI): what the commands print. Each report has a console form (aligned tables for
// people) and a JSON form (stable keys for scripts); golden-output tests pin both.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "chase/cpu.h"
#include "chase/energy_monitor.h"
#include "chase/gpu.h"

namespace chase::cli {

struct GpuStatus {
  GpuInfo info;
  std::optional<double> power_limit_w;  // nullopt when the read failed (see error)
  std::optional<double> power_w;
  std::string error;
  GpuState state = GpuState::kHealthy;  // info.state, or kLost when a read found it lost
};

struct DeviceListing {
  std::string gpu_backend;  // "nvml"; empty when none could be opened
  std::string gpu_note;     // why there are no GPUs, when there are none
  std::vector<GpuStatus> gpus;
  std::vector<GpuInfo> inaccessible_gpus;  // NVML counts them; this process may not open them
  std::vector<CpuZone> cpu_zones;
  std::string cpu_note;
  std::vector<std::string> cpu_notes;  // zones skipped and why (CpuBackend::notes())
};

void print_devices(std::ostream& out, const DeviceListing& listing);
nlohmann::json devices_json(const DeviceListing& listing);

struct MeasureReport {
  std::vector<std::string> command;
  int exit_code = 0;
  int signal = 0;
  Measurement measurement;
  std::optional<double> intensity_g_per_kwh;  // constant intensity given
  std::string carbon_source;                  // CSV file the intensity came from
  std::optional<double> carbon_g;
  std::vector<std::string> warnings;
  std::vector<GpuInfo> skipped_gpus;  // selected (or visible, for "all") but not measurable
};

void print_measurement(std::ostream& out, const MeasureReport& report);
nlohmann::json measurement_json(const MeasureReport& report);

// "1.23 kJ"-style compact energy for live lines.
std::string format_energy(double joules);

}  // namespace chase::cli
