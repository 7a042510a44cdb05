// Test helper: the small hand-made A40 trace and ten days of day/night carbon intensity, written
// into a test's directory, and the `chase simulate carbon` arguments that read them. Shared by the
// CLI tests of simulate carbon, deadline mode and the output checks.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/carbon_csv.h"
#include "support/small_zeus_trace.h"

namespace chase::testing {

// Writes dir/trace/summary_{power_a40,train}.csv and dir/carbon.csv (10 days from 2021-01-01).
inline void write_small_carbon_case(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir / "trace");
  std::ofstream(dir / "trace/summary_power_a40.csv") << kSmallA40TracePower;
  std::ofstream(dir / "trace/summary_train.csv") << kSmallA40TraceTrain;
  std::ofstream(dir / "carbon.csv") << day_night_carbon_csv(10);
}

// "simulate carbon" over what write_small_carbon_case wrote (ImageNet on the A40), then `more`.
inline std::vector<std::string> simulate_carbon_args(const std::filesystem::path& dir,
                                                     const std::vector<std::string>& more) {
  std::vector<std::string> args{
      "simulate",   "carbon",   "--trace-dir", (dir / "trace").string(),     "--gpu", "a40",
      "--workload", "imagenet", "--carbon",    (dir / "carbon.csv").string()};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

}  // namespace chase::testing
