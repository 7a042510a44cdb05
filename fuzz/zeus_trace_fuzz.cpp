// ZeusTrace::load (chase/zeus_trace.h): a Zeus trace folder, its two CSVs from the input split at
// the first NUL byte (summary_power_v100.csv, then summary_train.csv), read for imagenet. What
// loads answers every query with finite costs or a chase::Error.
#include <cmath>
#include <string_view>

#include "chase/zeus_trace.h"
#include "fuzz_support.h"

using namespace chase;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = fuzz::as_text(data, size);
  const auto nul = input.find('\0');
  fuzz::write_file("summary_power_v100.csv", input.substr(0, nul));
  fuzz::write_file("summary_train.csv",
                   nul == std::string_view::npos ? std::string_view{} : input.substr(nul + 1));
  fuzz::expect_only_chase_errors([&] {
    const ZeusTrace trace = ZeusTrace::load(fuzz::scratch_dir(), "v100", zeus_workload("imagenet"));
    fuzz::require(std::isfinite(trace.max_power_limit_w()));
    for (const std::size_t batch_size : trace.batch_sizes()) {
      for (const double limit : trace.power_limits()) {
        if (const auto epoch = trace.epoch(batch_size, limit)) {
          fuzz::require(std::isfinite(epoch->energy_j()) && epoch->energy_j() >= 0);
        }
        if (const auto config = trace.config(batch_size, limit)) {
          fuzz::require(std::isfinite(config->energy_to_accuracy_j));
          fuzz::require(std::isfinite(config->time_to_accuracy_s));
        }
      }
    }
    fuzz::expect_only_chase_errors([&] { static_cast<void>(trace.default_config()); });
    fuzz::expect_only_chase_errors([&] { static_cast<void>(trace.best_config()); });
  });
  return 0;
}
