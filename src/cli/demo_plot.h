// Internal (CLI): the demo's SVG plot — grid intensity over time above, the power limit each
// policy ran at below. Plain SVG text: no plotting library is needed for two panels of lines.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "chase/carbon.h"
#include "chase/training.h"

namespace chase::cli {

struct PlotPolicy {
  std::string name;
  RunReport report;
};

// Writes the SVG to `out` (the caller's checked OutputFile).
void write_demo_plot(std::ostream& out, const CarbonSeries& carbon, UtcTime start,
                     const std::vector<PlotPolicy>& policies);

}  // namespace chase::cli
