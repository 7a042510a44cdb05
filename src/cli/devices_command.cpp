// chase devices [--json]: the GPUs and CPU energy zones chase can see.
#include <iostream>

#include "cli/commands.h"
#include "cli/output_file.h"
#include "cli/reporting.h"

namespace chase::cli {
namespace {

GpuStatus read_status(GpuBackend& backend, const GpuInfo& info) {
  GpuStatus status{info, std::nullopt, std::nullopt, ""};
  try {
    status.power_limit_w = backend.power_limit_w(info.index);
    status.power_w = backend.power_w(info.index);
  } catch (const std::exception& e) {
    status.error = e.what();  // one unhealthy GPU does not hide the others
  }
  return status;
}

DeviceListing list_devices() {
  DeviceListing listing;
  auto gpus = open_gpus();
  if (gpus.backend) {
    listing.gpu_backend = std::string(gpus.backend->backend_name());
    for (const auto& info : gpus.backend->gpus()) {
      listing.gpus.push_back(read_status(*gpus.backend, info));
    }
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
    const auto listing = list_devices();
    if (*json) {
      out.stream() << devices_json(listing).dump(2) << '\n';
    } else {
      print_devices(out.stream(), listing);
    }
    out.close();
    exit_code = 0;
  });
}

}  // namespace chase::cli
