#include "cli/reporting.h"

#include <fmt/format.h>

#include <cmath>

#include "common/text.h"

namespace chase::cli {
namespace {

std::string watts(const std::optional<double>& w) {
  return w ? fmt::format("{:.1f}", *w) : std::string("-");
}

double average_power(double energy_j, double time_s) {
  return time_s > 0 ? energy_j / time_s : 0.0;
}

nlohmann::json number_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

// "counter", "polling (1s-average power)", "counter, below resolution (0.01 s < 1 s)".
std::string method_text(const GpuEnergy& g) {
  std::string text(to_string(g.method));
  if (g.method != EnergyMethod::kCounter) {
    text += fmt::format(" ({} power)", to_string(g.power_reading));
  }
  if (g.below_resolution) {
    text += fmt::format(", below resolution ({:g} s): rough figure", g.resolution_s);
  }
  return text;
}

std::string command_line(const std::vector<std::string>& command) {
  std::string line;
  for (const auto& arg : command) {
    if (!line.empty()) line += ' ';
    line += arg.find_first_of(" \t\"'") == std::string::npos ? arg : fmt::format("'{}'", arg);
  }
  return line;
}

}  // namespace

std::string format_energy(double joules) {
  if (std::fabs(joules) >= 1e6) return fmt::format("{:.2f} MJ", joules / 1e6);
  if (std::fabs(joules) >= 1e3) return fmt::format("{:.2f} kJ", joules / 1e3);
  return fmt::format("{:.1f} J", joules);
}

void print_devices(std::ostream& out, const DeviceListing& listing) {
  out << fmt::format("GPUs ({}):\n", listing.gpu_backend.empty() ? "none" : listing.gpu_backend);
  if (listing.gpus.empty()) {
    out << "  none" << (listing.gpu_note.empty() ? "" : ": " + listing.gpu_note) << '\n';
  } else {
    out << fmt::format("  {:>3}  {:<24} {:<9} {:>9} {:>15} {:>9} {:>9}  {:<7} {}\n", "idx", "name",
                       "arch", "limit W", "range W", "default W", "power W", "energy", "uuid");
    for (const auto& gpu : listing.gpus) {
      const auto& i = gpu.info;
      if (gpu.state != GpuState::kHealthy && !gpu.power_limit_w) {
        out << fmt::format(
            "  {:>3}  {:<24} {:<9} {}\n", i.index,
            i.name.empty() ? fmt::format("(NVML index {})", i.hardware_index) : i.name,
            to_string(gpu.state), i.uuid);
        out << "       " << (gpu.state == GpuState::kLost ? "lost" : "problem") << ": "
            << (gpu.error.empty() ? i.problem : gpu.error) << '\n';
        continue;
      }
      out << fmt::format("  {:>3}  {:<24} {:<9} {:>9} {:>15} {:>9.1f} {:>9}  {:<7} {}\n", i.index,
                         i.name, to_string(i.architecture), watts(gpu.power_limit_w),
                         fmt::format("{:.0f}-{:.0f}", i.min_power_limit_w, i.max_power_limit_w),
                         i.default_power_limit_w, watts(gpu.power_w),
                         i.has_energy_counter ? "counter" : "polling", i.uuid);
      if (!gpu.error.empty()) out << "       error: " << gpu.error << '\n';
      if (!i.note.empty()) out << "       note: " << i.note << '\n';
    }
  }
  if (!listing.inaccessible_gpus.empty()) {
    out << "GPUs this process may not open (not CUDA devices here, skipped):\n";
    for (const auto& gpu : listing.inaccessible_gpus) {
      out << fmt::format("  NVML index {}: {}\n", gpu.hardware_index, gpu.problem);
    }
  }
  out << "CPU energy zones (RAPL):\n";
  if (listing.cpu_zones.empty()) {
    out << "  none" << (listing.cpu_note.empty() ? "" : ": " + listing.cpu_note) << '\n';
  }
  for (const auto& zone : listing.cpu_zones) out << "  " << zone.label << '\n';
  for (const auto& note : listing.cpu_notes) out << "  note: " << note << '\n';
}

nlohmann::json devices_json(const DeviceListing& listing) {
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& gpu : listing.gpus) {
    const auto& i = gpu.info;
    nlohmann::json entry = {
        {"index", i.index},
        {"hardware_index", i.hardware_index},
        {"uuid", i.uuid},
        {"name", i.name},
        {"architecture", to_string(i.architecture)},
        {"power_limit_w", gpu.power_limit_w ? nlohmann::json(*gpu.power_limit_w) : nullptr},
        {"min_power_limit_w", i.min_power_limit_w},
        {"max_power_limit_w", i.max_power_limit_w},
        {"default_power_limit_w", i.default_power_limit_w},
        {"power_w", gpu.power_w ? nlohmann::json(*gpu.power_w) : nullptr},
        {"energy_counter", i.has_energy_counter},
        {"power_reading", to_string(i.power_reading)},
        {"has_power_reading", i.has_power_reading},
        {"pci_bus_id", i.pci_bus_id},
        {"state", to_string(gpu.state)},
    };
    if (!gpu.error.empty()) entry["error"] = gpu.error;
    if (!i.problem.empty()) entry["problem"] = i.problem;
    if (!i.note.empty()) entry["note"] = i.note;
    gpus.push_back(std::move(entry));
  }
  nlohmann::json inaccessible = nlohmann::json::array();
  for (const auto& gpu : listing.inaccessible_gpus) {
    inaccessible.push_back({{"hardware_index", gpu.hardware_index},
                            {"state", to_string(gpu.state)},
                            {"problem", gpu.problem}});
  }
  nlohmann::json cpus = nlohmann::json::array();
  for (const auto& zone : listing.cpu_zones) {
    nlohmann::json entry = {{"package", zone.package}, {"zone", zone.kind}, {"label", zone.label}};
    if (!zone.part.empty()) entry["part"] = zone.part;
    cpus.push_back(std::move(entry));
  }
  nlohmann::json doc = {
      {"gpu_backend",
       listing.gpu_backend.empty() ? nlohmann::json(nullptr) : nlohmann::json(listing.gpu_backend)},
      {"gpus", gpus},
      {"inaccessible_gpus", inaccessible},
      {"cpus", cpus}};
  if (!listing.gpu_note.empty()) doc["gpu_note"] = listing.gpu_note;
  if (!listing.cpu_note.empty()) doc["cpu_note"] = listing.cpu_note;
  if (!listing.cpu_notes.empty()) doc["cpu_notes"] = listing.cpu_notes;
  return doc;
}

void print_measurement(std::ostream& out, const MeasureReport& report) {
  const auto& m = report.measurement;
  out << fmt::format("chase measure: {}\n", command_line(report.command));
  out << fmt::format("  exit code {}{}, wall time {:.3f} s\n", report.exit_code,
                     report.signal ? fmt::format(" (killed by signal {})", report.signal) : "",
                     m.time_s);
  out << fmt::format("  {:<34} {:>14} {:>13}  {}\n", "device", "energy (J)", "avg power (W)",
                     "method");
  for (const auto& g : m.gpus) {
    const std::string device = fmt::format("GPU {} {}", g.index, g.name);
    if (g.lost_after_s) {
      out << fmt::format("  {:<34} {:>14.1f} {:>13.1f}  {}, lost after {:.1f} s\n", device,
                         g.energy_j, average_power(g.energy_j, *g.lost_after_s),
                         to_string(g.method), *g.lost_after_s);
      continue;
    }
    if (!g.error.empty()) {
      out << fmt::format("  {:<34} {:>14} {:>13}  error: {}\n", device, "-", "-", g.error);
      continue;
    }
    out << fmt::format("  {:<34} {:>14.1f} {:>13.1f}  {}\n", device, g.energy_j,
                       average_power(g.energy_j, m.time_s), method_text(g));
  }
  for (const auto& c : m.cpus) {
    const std::string device = c.part.empty()
                                   ? fmt::format("CPU {} {}", c.package, c.kind)
                                   : fmt::format("CPU {} {} {}", c.package, c.part, c.kind);
    if (c.partial) {
      out << fmt::format("  {:<34} {:>14.1f} {:>13}  rapl, partial: {}\n", device, c.energy_j, "-",
                         c.error);
      continue;
    }
    if (!c.error.empty()) {
      out << fmt::format("  {:<34} {:>14} {:>13}  error: {}\n", device, "-", "-", c.error);
      continue;
    }
    out << fmt::format("  {:<34} {:>14.1f} {:>13.1f}  rapl\n", device, c.energy_j,
                       average_power(c.energy_j, m.time_s));
  }
  out << fmt::format("  {:<34} {:>14.1f} {:>13.1f}\n", "total", m.total_energy_j(),
                     average_power(m.total_energy_j(), m.time_s));
  if (report.carbon_g) {
    const std::string basis = report.intensity_g_per_kwh
                                  ? fmt::format("{:g} gCO2eq/kWh", *report.intensity_g_per_kwh)
                                  : fmt::format("intensity from {}", report.carbon_source);
    out << fmt::format("  emissions {:.4f} gCO2eq ({})\n", *report.carbon_g, basis);
  }
  for (const auto& warning : report.warnings)
    out << "  warning: " << escape_untrusted(warning) << '\n';
}

nlohmann::json measurement_json(const MeasureReport& report) {
  const auto& m = report.measurement;
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& g : m.gpus) {
    // A GPU lost mid-run: its power is averaged over the part of the run it was measured.
    const double measured_s = g.lost_after_s ? *g.lost_after_s : m.time_s;
    nlohmann::json entry = {{"index", g.index},
                            {"name", g.name},
                            {"energy_j", number_or_null(g.energy_j)},
                            {"avg_power_w", number_or_null(average_power(g.energy_j, measured_s))},
                            {"method", to_string(g.method)},
                            {"resolution_s", g.resolution_s},
                            {"below_resolution", g.below_resolution}};
    if (g.method != EnergyMethod::kCounter) entry["power_reading"] = to_string(g.power_reading);
    if (!g.error.empty()) entry["error"] = g.error;
    if (g.lost_after_s) entry["lost_after_s"] = *g.lost_after_s;
    gpus.push_back(std::move(entry));
  }
  nlohmann::json cpus = nlohmann::json::array();
  for (const auto& c : m.cpus) {
    nlohmann::json entry = {{"package", c.package},
                            {"zone", c.kind},
                            {"energy_j", number_or_null(c.energy_j)},
                            {"avg_power_w", number_or_null(average_power(c.energy_j, m.time_s))}};
    if (!c.part.empty()) entry["part"] = c.part;
    if (c.partial) entry["partial"] = true;
    if (!c.error.empty()) entry["error"] = c.error;
    cpus.push_back(std::move(entry));
  }
  nlohmann::json doc = {
      {"command", report.command},
      {"exit_code", report.exit_code},
      {"start_time", format_utc_time(m.start_utc)},
      {"end_time", format_utc_time(m.end_utc)},
      {"time_s", m.time_s},
      {"gpus", gpus},
      {"cpus", cpus},
      {"gpu_energy_j", m.gpu_energy_j()},
      {"cpu_energy_j", m.cpu_energy_j()},
      {"total_energy_j", m.total_energy_j()},
      {"avg_power_w", average_power(m.total_energy_j(), m.time_s)},
      {"complete", m.complete()},
  };
  if (report.signal) doc["signal"] = report.signal;
  if (report.carbon_g) doc["carbon_g"] = *report.carbon_g;
  if (report.intensity_g_per_kwh) doc["intensity_g_per_kwh"] = *report.intensity_g_per_kwh;
  if (!report.carbon_source.empty()) doc["carbon_source"] = report.carbon_source;
  doc["warnings"] = report.warnings;
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& gpu : report.skipped_gpus) {
    skipped.push_back({{"index", gpu.index},
                       {"name", gpu.name},
                       {"uuid", gpu.uuid},
                       {"state", to_string(gpu.state)},
                       {"problem", gpu.problem}});
  }
  doc["skipped_gpus"] = skipped;
  return doc;
}

}  // namespace chase::cli
