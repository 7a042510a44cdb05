// A small CNN trained with libtorch, with chase choosing the GPU power limit as it trains.
//
// The network really trains (on the CPU, on synthetic images: is the bright square in the top
// half?). The GPU is simulated: each step stands for `--step-seconds` of GPU work at the maximum
// limit, and takes longer at lower limits as the GPU's power-limit profile says, in virtual time —
// so a run of a few seconds covers hours of carbon intensity and the policies have periods to act
// on. On a machine with NVIDIA GPUs, pass chase::open_nvml() and the system clock instead, and move
// the model to CUDA; the loop does not change. All numbers it prints are simulated (and say so).
//
// Usage: chase_example_libtorch [--epochs E] [--steps S] [--batch B] [--policy
// static|chase|planner]
//                               [--carbon-csv FILE] [--step-seconds T]
#include <chase/carbon_provider.h>
#include <chase/carbon_signal.h>
#include <chase/simulated_gpu.h>
#include <chase/training.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <string>

namespace {

struct Args {
  int epochs = 3;
  int steps = 100;  // per epoch
  int batch = 32;
  std::string policy = "chase";
  std::string carbon_csv;    // empty: a built-in synthetic series, alternating clean and dirty
  double step_seconds = 20;  // GPU work a step stands for, at the maximum limit
};

Args parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--epochs")
      args.epochs = std::stoi(value);
    else if (flag == "--steps")
      args.steps = std::stoi(value);
    else if (flag == "--batch")
      args.batch = std::stoi(value);
    else if (flag == "--policy")
      args.policy = value;
    else if (flag == "--carbon-csv")
      args.carbon_csv = value;
    else if (flag == "--step-seconds")
      args.step_seconds = std::stod(value);
    else
      throw std::invalid_argument("unknown option " + flag);
  }
  return args;
}

// 16×16 noise with a bright 4×4 square somewhere; label 1 when the square is in the top half.
std::pair<torch::Tensor, torch::Tensor> synthetic_batch(int n) {
  auto images = 0.3 * torch::rand({n, 1, 16, 16});
  auto labels = torch::zeros({n}, torch::kLong);
  for (int i = 0; i < n; ++i) {
    const auto row = torch::randint(0, 13, {1}).item<int64_t>();
    const auto col = torch::randint(0, 13, {1}).item<int64_t>();
    images[i][0].narrow(0, row, 4).narrow(1, col, 4).add_(1.0);
    labels[i] = row + 2 < 8 ? 1 : 0;
  }
  return {images, labels};
}

struct NetImpl : torch::nn::Module {
  NetImpl()
      : conv1(register_module("conv1",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 8, 3).padding(1)))),
        conv2(register_module("conv2",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 16, 3).padding(1)))),
        fc(register_module("fc", torch::nn::Linear(16 * 4 * 4, 2))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2->forward(x)), 2);
    return fc->forward(x.view({x.size(0), -1}));
  }

  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc;
};
TORCH_MODULE(Net);

const chase::UtcTime kStart = *chase::parse_utc_time("2026-01-01T00:00:00Z");

// Synthetic, labelled so: 30-min periods alternating 120 and 520 gCO2eq/kWh for two days.
chase::CarbonSeries synthetic_carbon() {
  std::vector<chase::UtcTime> times;
  std::vector<double> values;
  for (int i = 0; i < 96; ++i) {
    times.push_back(kStart + std::chrono::minutes(30 * i));
    values.push_back(i % 2 == 0 ? 120 : 520);
  }
  return chase::CarbonSeries(times, values, std::chrono::minutes(30),
                             "synthetic alternating intensity (made-up numbers)");
}

}  // namespace

int main(int argc, char** argv) try {
  const auto args = parse(argc, argv);
  torch::manual_seed(0);

  auto carbon =
      args.carbon_csv.empty() ? synthetic_carbon() : chase::load_carbon_csv(args.carbon_csv);
  auto clock = std::make_shared<chase::ManualClock>(carbon.start());
  const auto profile = chase::synthetic_demo_profile();
  auto gpus = chase::make_simulated_gpus(1, profile, clock);
  gpus->set_all_busy(true);
  // The virtual work of a step, in the profile's samples, so it takes step_seconds at the maximum.
  const double samples_per_step = args.step_seconds * profile.throughput_at(profile.max_limit_w());

  chase::TrainingOptions options;
  options.policy = chase::parse_policy(args.policy);  // names are parsed once, here
  options.clock = clock;
  options.total_steps =
      static_cast<std::size_t>(args.epochs) * static_cast<std::size_t>(args.steps);
  options.profiling.warmup_steps = 2;  // short, so profiling fits in a short run
  options.profiling.profile_steps = 3;
  chase::CarbonSignalOptions signal;
  signal.clock = clock;
  signal.horizon = std::chrono::hours(48);
  options.carbon = std::make_shared<chase::CarbonSignal>(
      chase::make_replay_provider(carbon, clock, carbon.source()), signal);
  chase::TrainingController chase(gpus, options);

  Net net;
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(1e-3));
  chase.on_train_begin();
  for (int epoch = 0; epoch < args.epochs; ++epoch) {
    chase.on_epoch_begin();
    double loss_sum = 0;
    for (int step = 0; step < args.steps; ++step) {
      chase.on_step_begin();
      auto [images, labels] = synthetic_batch(args.batch);
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(images), labels);
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>();
      clock->advance(chase::Seconds(samples_per_step / gpus->throughput(0)));  // the simulated GPU
      chase.on_step_end();
    }
    chase.on_epoch_end();
    std::cout << "epoch " << epoch << ": mean loss " << loss_sum / args.steps << '\n';
  }
  chase.on_train_end();

  torch::NoGradGuard no_grad;
  auto [images, labels] = synthetic_batch(512);
  const double accuracy =
      net->forward(images).argmax(1).eq(labels).to(torch::kDouble).mean().item<double>();
  std::cout << "held-out accuracy " << accuracy << "\n\nSIMULATED GPU, " << carbon.source()
            << ":\n";
  chase::print_run_report(std::cout, chase.report());
  return 0;
} catch (const std::exception& e) {
  std::cerr << "chase_example_libtorch: " << e.what() << '\n';
  return 1;
}
