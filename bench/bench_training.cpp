// Overhead of the training-loop hooks. Run: build/release/bench/chase_bench_training
//
// StepHooks/<policy>: TrainingController::on_step_begin() + on_step_end() in the steady state
// (profiling done, inside a period: no limit change, no measurement window opened or closed), on
// 8 simulated GPUs with the system clock. Target (issue 4): under 1 µs.
#include <benchmark/benchmark.h>

#include <chrono>
#include <thread>

#include "chase/carbon_provider.h"
#include "chase/carbon_signal.h"
#include "chase/simulated_gpu.h"
#include "chase/training.h"

namespace {

using namespace std::chrono_literals;

// A flat day of intensity around now, so the signal always has data.
std::shared_ptr<chase::CarbonSignal> flat_signal() {
  std::vector<chase::UtcTime> times;
  std::vector<double> values;
  const auto start = std::chrono::floor<std::chrono::hours>(std::chrono::system_clock::now()) - 2h;
  for (int i = 0; i < 96; ++i) {
    times.push_back(start + i * 30min);
    values.push_back(300);
  }
  chase::CarbonSeries series(times, values, 30min, "bench");
  return std::make_shared<chase::CarbonSignal>(chase::make_replay_provider(series));
}

void StepHooks(benchmark::State& state, const char* policy) {
  auto gpus = chase::make_simulated_gpus(8, chase::synthetic_demo_profile());
  gpus->set_all_busy(true);
  chase::TrainingOptions options;
  options.policy = chase::parse_policy(policy);
  options.carbon = flat_signal();
  options.total_steps = 1'000'000'000;
  options.profiling.wait_steps = 0;
  options.profiling.warmup_steps = 1;
  options.profiling.profile_steps = 2;
  chase::TrainingController controller(gpus, options);
  controller.on_train_begin();
  // Profile every limit (a little real time per step so windows measure energy).
  while (controller.optimizer().state() != chase::OptimizerState::kDone) {
    controller.on_step_begin();
    std::this_thread::sleep_for(1ms);
    controller.on_step_end();
  }
  for (auto _ : state) {
    controller.on_step_begin();
    controller.on_step_end();
  }
  state.SetLabel(std::string(policy) + ", 8 simulated GPUs");
}
BENCHMARK_CAPTURE(StepHooks, static, "static");
BENCHMARK_CAPTURE(StepHooks, chase, "chase");
BENCHMARK_CAPTURE(StepHooks, planner, "planner");

}  // namespace

BENCHMARK_MAIN();
