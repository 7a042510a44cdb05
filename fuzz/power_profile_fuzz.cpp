// PowerProfile::load (chase/simulated_gpu.h): a simulated GPU's profile, JSON or CSV. Byte 0 picks
// the format, the rest is the file. A loaded profile interpolates to finite values at any limit.
#include <cmath>

#include "chase/simulated_gpu.h"
#include "fuzz_support.h"

using namespace chase;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const char* name = data[0] % 2 == 0 ? "profile.json" : "profile.csv";
  const auto path = fuzz::write_file(name, fuzz::as_text(data + 1, size - 1));
  fuzz::expect_only_chase_errors([&] {
    const PowerProfile profile = PowerProfile::load(path);
    for (const double limit : {0.0, 1.0, 150.0, 1e6}) {
      fuzz::require(std::isfinite(profile.throughput_at(limit)));
      fuzz::require(std::isfinite(profile.power_at(limit)));
    }
  });
  return 0;
}
