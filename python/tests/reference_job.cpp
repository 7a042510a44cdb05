// The C++ side of the Python example's equality test: the simulated job of
// examples/python/pytorch_loop.py — the same simulated GPUs, virtual clock, carbon series, policy
// and profiling options, driven by the C++ TrainingController with no model (the model does not
// touch the virtual clock) — printing run_report_json(). python/tests/test_examples.py runs both
// and requires the same numbers.
//
// Usage: chase_python_reference_job [--gpus N] [--epochs E] [--steps S] [--step-seconds T]
//                                   [--policy NAME]
#include <chase/carbon_provider.h>
#include <chase/carbon_signal.h>
#include <chase/simulated_gpu.h>
#include <chase/training.h>

#include <chrono>
#include <iostream>
#include <stdexcept>
#include <string>

int main(int argc, char** argv) try {
  std::size_t gpu_count = 1, epochs = 3, steps = 40;
  double step_seconds = 120;
  std::string policy = "chase";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--gpus")
      gpu_count = std::stoul(value);
    else if (flag == "--epochs")
      epochs = std::stoul(value);
    else if (flag == "--steps")
      steps = std::stoul(value);
    else if (flag == "--step-seconds")
      step_seconds = std::stod(value);
    else if (flag == "--policy")
      policy = value;
    else
      throw std::invalid_argument("unknown option " + flag);
  }
  // Synthetic, labelled so: 30-min periods alternating 120 and 520 gCO2eq/kWh for two days.
  const auto start = *chase::parse_utc_time("2026-01-01T00:00:00Z");
  std::vector<chase::UtcTime> times;
  std::vector<double> values;
  for (int i = 0; i < 96; ++i) {
    times.push_back(start + std::chrono::minutes(30 * i));
    values.push_back(i % 2 == 0 ? 120 : 520);
  }
  chase::CarbonSeries carbon(times, values, std::chrono::minutes(30),
                             "synthetic alternating intensity (made-up numbers)");
  auto clock = std::make_shared<chase::ManualClock>(carbon.start());
  const auto profile = chase::synthetic_demo_profile();
  auto gpus = chase::make_simulated_gpus(gpu_count, profile, clock);
  gpus->set_all_busy(true);
  const double samples_per_step = step_seconds * profile.throughput_at(profile.max_limit_w());

  chase::TrainingOptions options;
  options.policy = chase::parse_policy(policy);
  options.clock = clock;
  options.total_steps = epochs * steps;
  options.profiling.warmup_steps = 2;
  options.profiling.profile_steps = 3;
  chase::CarbonSignalOptions signal;
  signal.clock = clock;
  signal.horizon = std::chrono::hours(48);
  options.carbon = std::make_shared<chase::CarbonSignal>(
      chase::make_replay_provider(carbon, clock, carbon.source()), signal);
  chase::TrainingController controller(gpus, options);
  controller.on_train_begin();
  for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
    controller.on_epoch_begin();
    for (std::size_t step = 0; step < steps; ++step) {
      controller.on_step_begin();
      clock->advance(chase::Seconds(samples_per_step / gpus->throughput(0)));
      controller.on_step_end();
    }
    controller.on_epoch_end();
  }
  controller.on_train_end();
  std::cout << chase::run_report_json(controller.report()) << '\n';
  return 0;
} catch (const std::exception& e) {
  std::cerr << "chase_python_reference_job: " << e.what() << '\n';
  return 1;
}
