// A data-parallel training skeleton over MPI with chase (docs/MULTINODE.md): one process per GPU,
// on one or many nodes, every rank running the same power limit, agreed through the MpiCoordinator.
//
//   mpirun -np 8 chase_example_mpi_training --gpus nvml            # 2 nodes × 4 GPUs, real NVML
//   srun --ntasks-per-node=4 --gpus-per-task=1 chase_example_mpi_training --gpus nvml
//   mpirun -np 4 chase_example_mpi_training                        # simulated GPUs and time
//
// Each rank takes its GPUs from the node's allocation (chase/launch.h: CUDA_VISIBLE_DEVICES,
// Slurm's GPU lists, else all) split by its rank on the node, which the MpiCoordinator works out
// from the node names. Ranks started with different options or GPU models stop at once with an
// error naming both values. A "step" waits as for the GPU (real GPUs) or simulated time at the
// GPU's throughput (simulated GPUs), then a gradient all-reduce with a deadline (what NCCL's
// watchdog does): when a rank dies, the survivors raise within the timeout, the
// TrainingController's guard restores the limits as the exception unwinds, and the process exits
// with 69 (unavailable).
//
// With --report-dir DIR every rank writes DIR/rank-R.json (its run report, GPUs and limits in
// order) and rank 0 writes DIR/job.json: energy per rank, per node and in total, and who measured
// which GPU.
#include <chase/carbon_provider.h>
#include <chase/carbon_signal.h>
#include <chase/error.h>
#include <chase/launch.h>
#include <chase/mpi_coordinator.h>
#include <chase/nvml.h>
#include <chase/simulated_gpu.h>
#include <chase/training.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

// The C API only: Open MPI's deprecated C++ bindings do not build cleanly with -Wold-style-cast.
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

namespace {

struct Args {
  std::string gpus = "simulated";  // or "nvml"
  std::size_t gpus_per_node = 2;   // simulated GPUs on each node
  std::size_t steps = 600;
  std::size_t warmup = 2;
  std::size_t profile = 4;
  double step_samples = 2000;  // simulated: work per step (the step takes samples / throughput)
  double step_ms = 5;          // real GPUs: the GPU's time per step (a sleep here)
  long period_s = 1800;
  long timeout_ms = 60000;
  std::string report_dir;
  double clock_skew_ms = 0;  // real GPUs: this node's clock ahead of the others (NTP: ~ms)
  long exit_rank = -1;       // simulate a rank that dies at --exit-step (to try the timeout)
  std::size_t exit_step = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc)
      throw chase::Error(chase::ErrorCode::kInvalidArgument, flag + " needs a value");
    const std::string v = argv[i + 1];
    if (flag == "--gpus")
      a.gpus = v;
    else if (flag == "--gpus-per-node")
      a.gpus_per_node = std::stoul(v);
    else if (flag == "--steps")
      a.steps = std::stoul(v);
    else if (flag == "--warmup")
      a.warmup = std::stoul(v);
    else if (flag == "--profile")
      a.profile = std::stoul(v);
    else if (flag == "--step-samples")
      a.step_samples = std::stod(v);
    else if (flag == "--step-ms")
      a.step_ms = std::stod(v);
    else if (flag == "--period-s")
      a.period_s = std::stol(v);
    else if (flag == "--timeout-ms")
      a.timeout_ms = std::stol(v);
    else if (flag == "--report-dir")
      a.report_dir = v;
    else if (flag == "--clock-skew-ms")
      a.clock_skew_ms = std::stod(v);
    else if (flag == "--exit-rank")
      a.exit_rank = std::stol(v);
    else if (flag == "--exit-step")
      a.exit_step = std::stoul(v);
    else
      throw chase::Error(chase::ErrorCode::kInvalidArgument, "unknown option " + flag);
  }
  if (a.gpus != "simulated" && a.gpus != "nvml") {
    throw chase::Error(chase::ErrorCode::kInvalidArgument, "--gpus is simulated or nvml");
  }
  return a;
}

// The options every rank must share, as text: a rank started differently is an error at start.
std::string shared_options(const Args& a) {
  std::ostringstream out;
  out << "gpus=" << a.gpus << " gpus-per-node=" << a.gpus_per_node << " steps=" << a.steps
      << " warmup=" << a.warmup << " profile=" << a.profile << " period-s=" << a.period_s
      << " step-samples=" << a.step_samples;
  return out.str();
}

// Made-up hourly carbon intensity for the simulated run (labelled so in its source name): it
// changes every hour, so chase picks a different limit in different periods.
std::shared_ptr<chase::CarbonSignal> simulated_carbon(std::shared_ptr<chase::ManualClock> clock,
                                                      chase::UtcTime start) {
  const double pattern[] = {120, 480, 260, 610, 90, 350};
  std::vector<chase::UtcTime> times;
  std::vector<double> values;
  for (int h = 0; h < 72; ++h) {
    times.push_back(start + std::chrono::hours(h));
    values.push_back(pattern[h % 6]);
  }
  chase::CarbonSignalOptions options;
  options.clock = clock;
  options.horizon = std::chrono::hours(48);
  auto series = chase::CarbonSeries(times, values, std::chrono::hours(1), "made-up example");
  return std::make_shared<chase::CarbonSignal>(chase::make_replay_provider(series, clock), options);
}

// The system clock, `skew` ahead: nodes' clocks differ by milliseconds even under NTP. A period
// boundary then falls on different steps on different nodes unless the ranks agree on one clock.
class SkewedClock final : public chase::Clock {
 public:
  explicit SkewedClock(std::chrono::nanoseconds skew) : skew_(skew) {}
  std::chrono::nanoseconds monotonic() const noexcept override {
    return chase::system_clock()->monotonic();
  }
  chase::UtcTime utc_now() const noexcept override {
    return chase::system_clock()->utc_now() +
           std::chrono::duration_cast<chase::UtcTime::duration>(skew_);
  }

 private:
  std::chrono::nanoseconds skew_;
};

// The gradient exchange of a data-parallel step, with a deadline like NCCL's watchdog: MPI's own
// Allreduce would wait forever for a dead rank.
void exchange_gradients(MPI_Comm comm, std::chrono::milliseconds timeout) {
  double gradient = 1.0, sum = 0;
  MPI_Request request;
  MPI_Iallreduce(&gradient, &sum, 1, MPI_DOUBLE, MPI_SUM, comm, &request);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int done = 0; !done;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (!done && std::chrono::steady_clock::now() > deadline) {
      throw chase::Error(chase::ErrorCode::kUnavailable,
                         "the gradient all-reduce did not complete: a rank died or hung");
    }
    if (!done) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

// Stands in for the GPU's share of a step: the CPU mostly waits for the kernels to finish.
void wait_for_gpu(double ms) {
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
}

void write_json(const std::string& path, const nlohmann::json& json) {
  std::ofstream out(path);
  out << json.dump(2) << '\n';
  if (!out.flush()) throw chase::Error(chase::ErrorCode::kIo, "cannot write " + path);
}

int run(const Args& args) {
  auto coordinator = std::make_shared<chase::MpiCoordinator>(
      chase::MpiCoordinatorOptions{std::chrono::milliseconds(args.timeout_ms)});
  const auto& node = coordinator->node();
  coordinator->require_same("the job's options", shared_options(args));

  const bool simulated = args.gpus == "simulated";
  const auto start = *chase::parse_utc_time("2024-03-01T00:00:00Z");
  auto manual_clock = std::make_shared<chase::ManualClock>(start);
  std::shared_ptr<chase::Clock> clock = chase::system_clock();
  std::shared_ptr<chase::GpuBackend> backend;
  std::shared_ptr<chase::SimulatedGpuBackend> simulated_gpus;
  if (simulated) {
    clock = manual_clock;
    simulated_gpus = chase::make_simulated_gpus(args.gpus_per_node, chase::synthetic_demo_profile(),
                                                manual_clock);
    backend = simulated_gpus;
  } else {
    backend = chase::open_nvml();
    clock = std::make_shared<SkewedClock>(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double, std::milli>(args.clock_skew_ms)));
  }

  // This rank's GPUs: the node's allocation, split by its rank on the node.
  chase::LaunchInfo launch = chase::detect_launch();
  launch.local_rank = node.local_rank;
  launch.local_size = node.local_size;
  // Simulated GPUs are no CUDA devices: CUDA_VISIBLE_DEVICES and Slurm's lists do not apply.
  chase::NodeGpus allocation{{}, "simulated"};
  if (simulated) {
    for (const auto& gpu : backend->gpus()) allocation.gpus.push_back(gpu.index);
  } else {
    allocation = chase::node_gpus(backend->gpus());
  }
  const auto devices = chase::assign_devices(allocation, launch);
  if (devices.controlled.empty()) {
    throw chase::Error(chase::ErrorCode::kNotFound, "rank " + std::to_string(coordinator->rank()) +
                                                        " on node " + node.node + " has no GPU (" +
                                                        allocation.source + ")");
  }
  const auto& first = backend->gpus()[devices.controlled.front()];
  coordinator->require_same("the GPUs of one rank",
                            std::to_string(devices.controlled.size()) + " × " + first.name + " (" +
                                std::to_string(first.min_power_limit_w) + "–" +
                                std::to_string(first.max_power_limit_w) + " W)");
  if (simulated) {
    for (auto gpu : devices.controlled) simulated_gpus->set_busy(gpu, true);
  }

  chase::TrainingOptions options;
  options.clock = clock;
  options.period = std::chrono::seconds(args.period_s);
  options.profiling.warmup_steps = args.warmup;
  options.profiling.profile_steps = args.profile;
  options.profiling.gpus = devices.controlled;
  options.profiling.coordinator = coordinator;
  options.policy = chase::StaticOptions{};  // real GPUs: zeus(η = 0.5) after profiling
  if (simulated) {  // carbon-aware over a made-up signal: the limit changes with the hour
    options.carbon = simulated_carbon(manual_clock, start);
    options.policy = chase::ChaseOptions{.eta = 0.9, .max_carbon_intensity = 700};
  }

  MPI_Comm gradients;
  MPI_Comm_dup(MPI_COMM_WORLD, &gradients);
  std::vector<double> limits_applied;
  chase::TrainingController chase(backend, options);
  for (std::size_t step = 0; step < args.steps; ++step) {
    if (static_cast<long>(coordinator->rank()) == args.exit_rank && step == args.exit_step) {
      std::cerr << "rank " << coordinator->rank() << ": dying at step " << step << " (as asked)\n";
      std::cerr.flush();
      ::raise(SIGKILL);
    }
    chase.on_step_begin();
    const double limit = backend->power_limit_w(devices.controlled.front());
    if (limits_applied.empty() || limits_applied.back() != limit) limits_applied.push_back(limit);
    if (simulated) {
      const double rate = simulated_gpus->throughput(devices.controlled.front());
      manual_clock->advance(chase::Seconds(args.step_samples / rate));
    } else {
      wait_for_gpu(args.step_ms);
    }
    exchange_gradients(gradients, std::chrono::milliseconds(args.timeout_ms));
    chase.on_step_end();
  }
  chase.on_train_end();
  const auto report = chase.report();

  // Who measured what: every rank measured its own GPUs (each GPU once, chase/launch.h).
  nlohmann::json mine = {{"rank", coordinator->rank()},   {"node", node.node},
                         {"local_rank", node.local_rank}, {"gpus", nlohmann::json::array()},
                         {"energy_j", report.energy_j},   {"limits_w", limits_applied}};
  for (auto gpu : devices.measured) {
    mine["gpus"].push_back({{"index", gpu}, {"uuid", backend->gpus()[gpu].uuid}});
  }
  const auto everyone = coordinator->all_gather(mine.dump());
  if (!args.report_dir.empty()) {
    auto rank_json = nlohmann::json::parse(chase::run_report_json(report));
    rank_json["rank"] = mine;
    write_json(args.report_dir + "/rank-" + std::to_string(coordinator->rank()) + ".json",
               rank_json);
  }
  if (coordinator->rank() == 0) {
    nlohmann::json job = {{"ranks", nlohmann::json::array()}, {"nodes", nlohmann::json::object()}};
    double total = 0;
    for (const auto& text : everyone) {
      auto rank = nlohmann::json::parse(text);
      auto& per_node = job["nodes"][rank["node"].get<std::string>()];
      if (per_node.is_null()) per_node = {{"energy_j", 0.0}, {"ranks", nlohmann::json::array()}};
      per_node["energy_j"] = per_node["energy_j"].get<double>() + rank["energy_j"].get<double>();
      per_node["ranks"].push_back(rank["rank"]);
      total += rank["energy_j"].get<double>();
      job["ranks"].push_back(rank);
    }
    job["total_energy_j"] = total;
    if (!args.report_dir.empty()) write_json(args.report_dir + "/job.json", job);
    chase::print_run_report(std::cout, report);
    std::cout << "job energy over " << coordinator->size() << " ranks on " << node.node_count
              << " node(s): " << total << " J\n";
  }
  MPI_Comm_free(&gradients);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  chase::MpiSession mpi(&argc, &argv);
  try {
    return run(parse(argc, argv));
  } catch (const chase::Error& e) {
    // The controller is gone (its guard restored the limits as run() unwound). After a broken
    // collective MPI cannot be finalised (it would wait for the dead peer): exit without it.
    std::cerr << "chase_example_mpi_training: " << e.what() << '\n';
    std::cerr.flush();
    if (e.code() == chase::ErrorCode::kUnavailable) std::_Exit(69);
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "chase_example_mpi_training: " << e.what() << '\n';
    return 2;
  }
}
