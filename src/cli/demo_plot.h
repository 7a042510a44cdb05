// Internal (CLI): the demo's SVG plot — grid intensity over time above, the power limit each
// policy ran at below. Plain SVG text: no plotting library is needed for two panels of lines.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "chase/carbon.h"
#include "chase/training.h"

namespace chase::cli {

struct PlotPolicy {
  std::string name;
  RunReport report;
};

// Throws kIo when the file cannot be written.
void write_demo_plot(const std::filesystem::path& path, const CarbonSeries& carbon, UtcTime start,
                     const std::vector<PlotPolicy>& policies);

}  // namespace chase::cli
