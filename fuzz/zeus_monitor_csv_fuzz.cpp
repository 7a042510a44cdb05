// load_zeus_monitor_csv (chase/limit_profile.h): the Zeus monitor log a user points `select` at.
#include <cmath>

#include "chase/limit_profile.h"
#include "fuzz_support.h"

using namespace chase;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = fuzz::write_file("zeus.csv", fuzz::as_text(data, size));
  fuzz::expect_only_chase_errors([&] {
    const LimitProfile profile = load_zeus_monitor_csv(path);
    fuzz::require(!profile.points().empty());
    for (const auto& point : profile.points()) {
      fuzz::require(std::isfinite(point.time_s) && point.time_s > 0);
      fuzz::require(std::isfinite(point.energy_j) && point.energy_j > 0);
    }
  });
  return 0;
}
