// Overhead of measurement windows. Run: build/release/bench/chase_bench_energy_monitor
//
// - WindowPair/<backend>: begin_window + end_window on 8 GPUs.
// - EnergyRead/<backend>: one GPU energy read.
// Backends: "fake_nvml" is the real NVML backend over the fake NVML library (dlopen, function
// pointers, the fake's own bookkeeping: what a real driver call replaces); "null" is an in-memory
// backend whose reads cost almost nothing, so WindowPair/null is chase's own overhead per window
// pair with the NVML calls excluded (target: < 2 µs).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "chase/energy_monitor.h"
#include "chase/nvml.h"

namespace {

constexpr std::size_t kGpus = 8;

// Reads cost one increment: what is left of a window pair is the monitor's own work.
class NullGpuBackend final : public chase::GpuBackend {
 public:
  explicit NullGpuBackend(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      chase::GpuInfo info;
      info.index = i;
      info.name = "NVIDIA A100-SXM4-80GB";  // a realistic name length (beyond the SSO buffer)
      info.min_power_limit_w = 100;
      info.max_power_limit_w = 400;
      info.has_energy_counter = true;
      infos_.push_back(info);
    }
  }
  std::string_view backend_name() const noexcept override { return "null"; }
  const std::vector<chase::GpuInfo>& gpus() const noexcept override { return infos_; }
  double energy_j(std::size_t) override { return counter_ += 1.0; }
  double power_w(std::size_t) override { return 100; }
  double power_limit_w(std::size_t) override { return 400; }
  void set_power_limit_w(std::size_t, double) override {}

 private:
  std::vector<chase::GpuInfo> infos_;
  double counter_ = 0;
};

std::shared_ptr<chase::GpuBackend> open_fake_nvml() {
#ifdef FAKE_NVML_LIBRARY
  const auto config = std::filesystem::temp_directory_path() /
                      ("chase_bench_fake_nvml_" + std::to_string(::getpid()) + ".json");
  nlohmann::json gpus = nlohmann::json::array();
  for (std::size_t i = 0; i < kGpus; ++i) {
    gpus.push_back({{"name", "NVIDIA A100-SXM4-80GB"},
                    {"uuid", "GPU-bench-" + std::to_string(i)},
                    {"architecture", 7},
                    {"min_limit_w", 100},
                    {"max_limit_w", 400},
                    {"default_limit_w", 400},
                    {"load", 0.8}});
  }
  std::ofstream(config) << nlohmann::json{{"gpus", gpus}}.dump();
  ::setenv("FAKE_NVML_CONFIG", config.c_str(), 1);
  ::unsetenv("FAKE_NVML_STATE");
  ::unsetenv("CUDA_VISIBLE_DEVICES");
  chase::NvmlOptions options;
  options.library_path = FAKE_NVML_LIBRARY;
  auto backend = chase::open_nvml(options);
  std::filesystem::remove(config);
  return backend;
#else
  return nullptr;
#endif
}

std::shared_ptr<chase::GpuBackend> backend_for(int kind) {
  if (kind == 0) return std::make_shared<NullGpuBackend>(kGpus);
  static auto fake = open_fake_nvml();
  return fake;
}

const char* label_for(int kind) { return kind == 0 ? "null" : "fake_nvml"; }

void WindowPair(benchmark::State& state) {
  auto gpus = backend_for(static_cast<int>(state.range(0)));
  if (!gpus) {
    state.SkipWithError("built without the fake NVML library (CHASE_BUILD_TESTS=OFF)");
    return;
  }
  chase::EnergyMonitor monitor(gpus, nullptr);
  for (auto _ : state) {
    monitor.begin_window("step");
    auto m = monitor.end_window("step");
    benchmark::DoNotOptimize(m);
  }
  state.SetLabel(std::string(label_for(static_cast<int>(state.range(0)))) + ", 8 GPUs");
}
BENCHMARK(WindowPair)->Arg(0)->Arg(1);

void EnergyRead(benchmark::State& state) {
  auto gpus = backend_for(static_cast<int>(state.range(0)));
  if (!gpus) {
    state.SkipWithError("built without the fake NVML library (CHASE_BUILD_TESTS=OFF)");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(gpus->energy_j(0));
  state.SetLabel(label_for(static_cast<int>(state.range(0))));
}
BENCHMARK(EnergyRead)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
