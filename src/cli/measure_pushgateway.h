// Internal (CLI): what `chase measure --pushgateway URL` pushes — the measured command's time,
// GPU and CPU energy and emissions — at every --interval window (running) and once at the end.
// Names: docs/DAEMON.md, "Pushgateway".
//
// Thread safety: pure function.
#pragma once

#include <optional>
#include <string>

namespace chase::cli {

struct MeasuredSoFar {
  double time_s = 0;
  double gpu_energy_j = 0;
  double cpu_energy_j = 0;
  std::optional<double> carbon_g;             // known at the end only
  std::optional<double> intensity_g_per_kwh;  // a constant --intensity
  std::optional<int> exit_code;               // at the end: the command's exit code
};

std::string measure_metrics(const MeasuredSoFar& measured, bool running);

}  // namespace chase::cli
