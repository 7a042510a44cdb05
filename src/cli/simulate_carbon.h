// Internal (CLI): what `chase simulate carbon` and its --sweep share — the job being simulated, and
// the sweep over policies, parameters and start times with its CSV and SVG frontier.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "chase/carbon.h"
#include "chase/carbon_simulation.h"
#include "chase/limit_profile.h"

namespace chase::cli {

// The job and the trace every simulation of one command shares.
struct CarbonJob {
  std::string description;  // e.g. "imagenet/resnet50 batch 256 on a40"
  std::string carbon_file;
  LimitProfile epochs;
  CarbonSeries carbon;
};

struct SweepOptions {
  std::vector<double> etas{0.5, 0.24};
  std::vector<double> slacks{0.02, 0.05, 0.1, 0.2};
  std::size_t starts = 12;
  UtcTime from{};
  UtcTime to{};
  std::filesystem::path csv;   // empty: none
  std::filesystem::path plot;  // empty: none
  bool json = false;
  int threads = 1;
};

// Runs the sweep (`base` gives the period, epochs, forecast model) and prints its summary table
// (or JSON) to `out`; writes the CSV and the plot when asked.
void run_carbon_sweep(const CarbonJob& job, const CarbonSimulationOptions& base,
                      const PolicyParameters& parameters, const SweepOptions& sweep,
                      std::ostream& out);

}  // namespace chase::cli
