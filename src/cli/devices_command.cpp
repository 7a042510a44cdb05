// chase devices [--json]: the GPUs and CPU energy zones chase can see. Every GPU is listed, sick
// ones with their problem; the exit code is 0 when every listed GPU answers, kUnhealthyGpuExit
// when one is lost or failing (the listing is complete all the same), so scripts can tell.
#include <algorithm>
#include <iostream>

#include "chase/error.h"
#include "cli/commands.h"
#include "cli/output_file.h"
#include "cli/reporting.h"

namespace chase::cli {
namespace {

// Lost or failing GPUs: the listing is complete, but something needs an administrator.
constexpr int kUnhealthyGpuExit = 3;

GpuStatus read_status(GpuBackend& backend, const GpuInfo& info) {
  GpuStatus status{info, std::nullopt, std::nullopt, "", info.state};
  if (!is_healthy(info)) return status;  // its problem says all there is
  try {
    status.power_limit_w = backend.power_limit_w(info.index);
    if (info.has_power_reading) status.power_w = backend.power_w(info.index);
  } catch (const Error& e) {
    status.error = e.what();  // one unhealthy GPU does not hide the others
    status.state = e.code() == ErrorCode::kDeviceLost ? GpuState::kLost : GpuState::kFailed;
  }
  return status;
}

// Lost and failing GPUs make the exit code; the configurations a job is given (inaccessible GPUs,
// MIG slices, vGPUs without readings) do not.
bool needs_attention(const DeviceListing& listing, bool nvml_lost) {
  return nvml_lost || std::any_of(listing.gpus.begin(), listing.gpus.end(), [](const auto& gpu) {
           return gpu.state == GpuState::kLost || gpu.state == GpuState::kFailed;
         });
}

DeviceListing list_devices(bool& nvml_lost) {
  DeviceListing listing;
  auto gpus = open_gpus();
  nvml_lost = gpus.lost;
  if (gpus.backend) {
    listing.gpu_backend = std::string(gpus.backend->backend_name());
    for (const auto& info : gpus.backend->gpus()) {
      listing.gpus.push_back(read_status(*gpus.backend, info));
    }
    listing.inaccessible_gpus = gpus.backend->inaccessible_gpus();
    if (listing.gpus.empty()) listing.gpu_note = "NVML found no GPUs (check CUDA_VISIBLE_DEVICES)";
  } else {
    listing.gpu_note = gpus.note;
  }
  auto cpus = open_cpus();
  if (cpus.backend) {
    listing.cpu_zones = cpus.backend->zones();
    listing.cpu_notes = cpus.backend->notes();
  }
  listing.cpu_note = cpus.note;
  return listing;
}

}  // namespace

void add_devices_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("devices", "List the GPUs and CPU energy zones chase can measure");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print JSON instead of a table");
  cmd->callback([json, &exit_code] {
    auto out = OutputFile::standard_output();
    bool nvml_lost = false;
    const auto listing = list_devices(nvml_lost);
    if (*json) {
      out.stream() << devices_json(listing).dump(2) << '\n';
    } else {
      print_devices(out.stream(), listing);
    }
    out.close();
    exit_code = needs_attention(listing, nvml_lost) ? kUnhealthyGpuExit : 0;
  });
}

}  // namespace chase::cli
