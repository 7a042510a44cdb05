// load_carbon_csv (chase/carbon.h) on arbitrary files. The first byte picks the options (gap fill,
// duplicate handling, resampling, exogenous columns), the rest is the CSV. -timeout and
// -rss_limit_mb (fuzz/run) catch a fill or resample that runs away.
#include <algorithm>
#include <cmath>

#include "chase/carbon.h"
#include "fuzz_support.h"

using namespace chase;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t choice = data[0];
  CarbonCsvOptions options;
  options.fill = static_cast<GapFill>(choice % 3);
  options.duplicates = static_cast<DuplicateTimes>((choice / 3) % 3);
  options.resample = std::chrono::seconds((choice / 9) % 3 == 0 ? 0 : ((choice / 9) % 3) * 1800);
  options.exogenous = (choice / 27) % 2 == 1;
  // Resampling past its 100-year bound must be refused, not overflow the nanosecond clock.
  if ((choice / 54) % 2 == 1) options.resample = std::chrono::years(100) + std::chrono::seconds(1);
  const auto path = fuzz::write_file("carbon.csv", fuzz::as_text(data + 1, size - 1));
  fuzz::expect_only_chase_errors([&] {
    CarbonLoadReport report;
    const CarbonSeries series = load_carbon_csv(path, options, &report);
    // What a load returns is a series every consumer may trust: sorted unique times, finite
    // non-negative values, a positive resolution when it has points.
    fuzz::require(series.times().size() == series.values().size());
    fuzz::require(std::is_sorted(series.times().begin(), series.times().end()));
    fuzz::require(std::adjacent_find(series.times().begin(), series.times().end()) ==
                  series.times().end());
    for (const double value : series.values()) fuzz::require(std::isfinite(value) && value >= 0);
    if (!series.empty()) fuzz::require(series.resolution().count() > 0);
  });
  return 0;
}
