// The Prometheus text exposition of chased (format 0.0.4; names and units per the Prometheus
// naming conventions: base units, _total for counters). Reference: docs/DAEMON.md, "Metrics".
#include <fmt/format.h>

#include <functional>
#include <string>

#include "chase/error.h"
#include "common/prometheus_text.h"
#include "server/daemon_service.h"

namespace chase::server {
namespace {

using detail::prometheus_family_header;
using detail::prometheus_label_value;
using detail::prometheus_sample;

std::string gpu_labels(const GpuInfo& gpu) {
  return fmt::format("index=\"{}\",uuid=\"{}\"", gpu.index, prometheus_label_value(gpu.uuid));
}

// One sample per healthy GPU that `read` answers for; a failed read marks the GPU down.
void gpu_family(std::string& out, GpuBackend& gpus, std::vector<bool>& up, std::string_view name,
                std::string_view type, std::string_view help,
                const std::function<std::optional<double>(const GpuInfo&)>& read) {
  prometheus_family_header(out, name, type, help);
  for (const auto& gpu : gpus.gpus()) {
    if (!up[gpu.index]) continue;
    try {
      if (const auto value = read(gpu)) {
        prometheus_sample(out, name, gpu_labels(gpu), *value);
      }
    } catch (const std::exception&) {
      up[gpu.index] = false;
    }
  }
}

}  // namespace

std::string render_metrics(GpuBackend* gpus, CpuBackend* cpus, const LeaseTable& leases) {
  std::string out;
  out.reserve(4096);
  if (gpus != nullptr) {
    std::vector<bool> up;
    for (const auto& gpu : gpus->gpus()) up.push_back(is_healthy(gpu));
    gpu_family(out, *gpus, up, "chase_gpu_power_watts", "gauge",
               "Power draw of the GPU in watts (NVML; see chase_gpu_info for instant or averaged).",
               [&](const GpuInfo& gpu) -> std::optional<double> {
                 if (!gpu.has_power_reading) return std::nullopt;
                 return gpus->power_w(gpu.index);
               });
    gpu_family(out, *gpus, up, "chase_gpu_energy_joules_total", "counter",
               "Energy the GPU consumed, in joules, since an arbitrary origin (NVML counter).",
               [&](const GpuInfo& gpu) -> std::optional<double> {
                 if (!gpu.has_energy_counter) return std::nullopt;
                 return gpus->energy_j(gpu.index);
               });
    gpu_family(out, *gpus, up, "chase_gpu_power_limit_watts", "gauge",
               "Power limit in force on the GPU, in watts.",
               [&](const GpuInfo& gpu) { return gpus->power_limit_w(gpu.index); });
    gpu_family(out, *gpus, up, "chase_gpu_power_limit_min_watts", "gauge",
               "Lowest power limit the GPU accepts, in watts.",
               [](const GpuInfo& gpu) { return gpu.min_power_limit_w; });
    gpu_family(out, *gpus, up, "chase_gpu_power_limit_max_watts", "gauge",
               "Highest power limit the GPU accepts, in watts.",
               [](const GpuInfo& gpu) { return gpu.max_power_limit_w; });
    prometheus_family_header(out, "chase_gpu_leases", "gauge",
                             "Live chased leases on the GPU's power limit.");
    for (const auto& gpu : gpus->gpus()) {
      prometheus_sample(out, "chase_gpu_leases", gpu_labels(gpu),
                        static_cast<double>(leases.count(gpu.index)));
    }
    prometheus_family_header(out, "chase_gpu_up", "gauge",
                             "1 when every reading of the GPU succeeded in this scrape, else 0.");
    for (const auto& gpu : gpus->gpus()) {
      prometheus_sample(out, "chase_gpu_up", gpu_labels(gpu), up[gpu.index] ? 1 : 0);
    }
    prometheus_family_header(out, "chase_gpu_info", "gauge",
                             "The GPU's name and how its power is read.");
    for (const auto& gpu : gpus->gpus()) {
      out +=
          fmt::format("chase_gpu_info{{{},name=\"{}\",power_reading=\"{}\"}} 1\n", gpu_labels(gpu),
                      prometheus_label_value(gpu.name), to_string(gpu.power_reading));
    }
  }
  if (cpus != nullptr && !cpus->zones().empty()) {
    prometheus_family_header(out, "chase_cpu_energy_joules_total", "counter",
                             "Energy of the RAPL zone in joules since an arbitrary origin.");
    for (std::size_t i = 0; i < cpus->zones().size(); ++i) {
      const auto& zone = cpus->zones()[i];
      try {
        const double energy = cpus->energy_j(i);
        prometheus_sample(out, "chase_cpu_energy_joules_total",
                          fmt::format("zone=\"{}\",kind=\"{}\",package=\"{}\"",
                                      prometheus_label_value(zone.label),
                                      prometheus_label_value(zone.kind), zone.package),
                          energy);
      } catch (const std::exception&) {
        // Left out; the zone's absence is visible in the series, and /cpus says why.
      }
    }
  }
  prometheus_family_header(out, "chase_daemon_leases", "gauge", "Live chased leases on all GPUs.");
  prometheus_sample(out, "chase_daemon_leases", "", static_cast<double>(leases.size()));
  return out;
}

}  // namespace chase::server
