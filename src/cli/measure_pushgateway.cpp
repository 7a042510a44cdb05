// The exposition `chase measure --pushgateway` pushes (contract: cli/measure_pushgateway.h).
#include "cli/measure_pushgateway.h"

#include "common/prometheus_text.h"

namespace chase::cli {

std::string measure_metrics(const MeasuredSoFar& measured, bool running) {
  std::string out;
  const auto family = [&](std::string_view name, std::string_view type, std::string_view help,
                          double value) {
    detail::prometheus_family_header(out, name, type, help);
    detail::prometheus_sample(out, name, "", value);
  };
  family("chase_measure_running", "gauge", "1 while the measured command runs, 0 once it ended.",
         running ? 1 : 0);
  family("chase_measure_duration_seconds", "gauge", "Wall time measured so far, in seconds.",
         measured.time_s);
  family("chase_measure_gpu_energy_joules_total", "counter",
         "Energy of the measured GPUs in joules since the command started.", measured.gpu_energy_j);
  family("chase_measure_cpu_energy_joules_total", "counter",
         "Energy of the CPU (RAPL) zones in joules since the command started.",
         measured.cpu_energy_j);
  if (measured.intensity_g_per_kwh) {
    family("chase_measure_carbon_intensity_grams_per_kwh", "gauge",
           "The carbon intensity the emissions are computed with, in gCO2eq/kWh.",
           *measured.intensity_g_per_kwh);
  }
  if (measured.carbon_g) {
    family("chase_measure_carbon_grams_total", "counter",
           "Emissions of the measured command in grams of CO2-equivalent.", *measured.carbon_g);
  }
  if (measured.exit_code) {
    family("chase_measure_exit_code", "gauge", "The measured command's exit code.",
           *measured.exit_code);
  }
  return out;
}

}  // namespace chase::cli
