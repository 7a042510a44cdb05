// Test helper: a training job on two simulated GPUs in virtual time, its carbon intensity
// alternating clean (100 g/kWh) and dirty (600 g/kWh) every 30 minutes from kJobStart.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>
#include <vector>

#include "chase/carbon_provider.h"
#include "chase/carbon_signal.h"
#include "chase/limit_policy.h"
#include "chase/simulated_gpu.h"
#include "chase/time.h"
#include "chase/training.h"

namespace chase::testing {

inline const UtcTime kJobStart = *parse_utc_time("2026-01-01T00:00:00Z");

struct SimulatedTrainingJob {
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(kJobStart);
  std::shared_ptr<SimulatedGpuBackend> gpus =
      make_simulated_gpus(2, synthetic_demo_profile(), clock);

  SimulatedTrainingJob() { gpus->set_all_busy(true); }

  TrainingOptions options() const {
    using namespace std::chrono_literals;
    std::vector<UtcTime> times;
    std::vector<double> values;
    for (int i = 0; i < 8; ++i) {
      times.push_back(kJobStart + i * 30min);
      values.push_back(i % 2 == 0 ? 100 : 600);
    }
    CarbonSignalOptions signal;
    signal.clock = clock;
    signal.horizon = 48h;
    TrainingOptions options;
    options.policy = parse_policy("chase");
    options.carbon = std::make_shared<CarbonSignal>(
        make_replay_provider(CarbonSeries(times, values, 30min, "alternating"), clock), signal);
    options.clock = clock;
    options.profiling.warmup_steps = 2;
    options.profiling.profile_steps = 5;
    return options;
  }

  // Steps (each a batch at the current limit's speed) until `duration` of virtual time passed.
  void train_for(TrainingController& controller, std::chrono::seconds duration) const {
    const auto end = clock->utc_now() + duration;
    while (clock->utc_now() < end) {
      controller.on_step_begin();
      clock->advance(Seconds(512 / gpus->throughput(0)));
      controller.on_step_end();
    }
  }
};

}  // namespace chase::testing
