// The two-line integration of chase into a training loop, in plain C++.
//
//   chase::TrainingController chase(gpus, options);     // line 1: before training
//   chase.on_step_begin(); train_step(); chase.on_step_end();   // line 2: around every step
//
// It profiles every GPU power limit during the first steps, then runs at the limit the policy
// picks, and restores the GPUs' limits when it ends (also on Ctrl-C). The "training" here is a
// busy loop; replace train_step() with yours. With no NVIDIA driver it falls back to simulated
// GPUs (and says so). Usage:
//   chase_example_minimal [--steps N] [--epochs E] [--carbon-csv FILE] [--warmup W] [--profile P]
#include <chase/carbon_provider.h>
#include <chase/carbon_signal.h>
#include <chase/error.h>
#include <chase/nvml.h>
#include <chase/simulated_gpu.h>
#include <chase/training.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

namespace {

struct Args {
  std::size_t steps = 200;  // per epoch
  std::size_t epochs = 2;
  std::string carbon_csv;
  std::size_t warmup = 10;
  std::size_t profile = 40;
};

Args parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--steps")
      args.steps = std::stoul(value);
    else if (flag == "--epochs")
      args.epochs = std::stoul(value);
    else if (flag == "--carbon-csv")
      args.carbon_csv = value;
    else if (flag == "--warmup")
      args.warmup = std::stoul(value);
    else if (flag == "--profile")
      args.profile = std::stoul(value);
    else
      throw std::invalid_argument("unknown option " + flag);
  }
  return args;
}

// Stands in for a real training step: about a millisecond of arithmetic.
double train_step() {
  double x = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
  while (std::chrono::steady_clock::now() < until) x += std::sqrt(x + 1.0);
  return x;
}

std::shared_ptr<chase::GpuBackend> open_gpus() {
  try {
    auto gpus = chase::open_nvml();
    if (!gpus->gpus().empty()) return gpus;
  } catch (const chase::Error& e) {
    std::cerr << "no NVIDIA GPUs (" << e.what() << "); using 2 simulated GPUs\n";
  }
  auto simulated = chase::make_simulated_gpus(2, chase::synthetic_demo_profile());
  simulated->set_all_busy(true);
  return simulated;
}

}  // namespace

int main(int argc, char** argv) try {
  const auto args = parse(argc, argv);
  chase::TrainingOptions options;
  options.profiling.warmup_steps = args.warmup;
  options.profiling.profile_steps = args.profile;
  options.policy = chase::StaticOptions{};  // zeus(η = 0.5) after profiling
  if (!args.carbon_csv.empty()) {           // carbon-aware: chase re-chooses every period
    chase::CarbonProviderOptions file;
    file.file = args.carbon_csv;
    options.carbon =
        std::make_shared<chase::CarbonSignal>(chase::make_carbon_provider("file", file));
    options.policy = chase::ChaseOptions{};
  }

  chase::TrainingController chase(open_gpus(), options);  // line 1
  double sink = 0;
  for (std::size_t epoch = 0; epoch < args.epochs; ++epoch) {
    chase.on_epoch_begin();
    for (std::size_t step = 0; step < args.steps; ++step) {
      chase.on_step_begin();  // line 2 ...
      sink += train_step();
      chase.on_step_end();  // ... and its other half
    }
    chase.on_epoch_end();
  }
  chase.on_train_end();

  chase::print_run_report(std::cout, chase.report());
  const auto& selection = chase.optimizer().selection();
  std::cout << "chosen power limit: ";
  if (selection) {
    std::cout << selection->power_limit_w << " W\n";
  } else {
    std::cout << "none (profiling did not finish)\n";
  }
  return sink < 0 ? 1 : 0;  // uses the result so the "training" is not optimised away
} catch (const std::exception& e) {
  std::cerr << "chase_example_minimal: " << e.what() << '\n';
  return 1;
}
