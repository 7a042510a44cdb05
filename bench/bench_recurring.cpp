// Speed of the recurring-job reproduction (issue 5). Run: build/release/bench/chase_bench_recurring
//
// RecurringReproduction/with_loading: the reproduction of docs/ALGORITHMS.md §6 — the six V100
// workloads' traces loaded from ../shared/data/zeus-trace (or $CHASE_DATA_DIR/zeus-trace), then
// 5 seeds each of the default recurrences (η 0.5, β 2). Target: under 0.5 s on 2 cores (the
// reference Python simulator needs about 16 s for the same work).
// RecurringReproduction/simulation_only: the same 30 simulations on traces loaded beforehand.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "chase/recurring_simulation.h"
#include "chase/zeus_trace.h"

namespace {

std::filesystem::path trace_dir() {
  const char* env = std::getenv("CHASE_DATA_DIR");
  return std::filesystem::path(env ? env : CHASE_DEFAULT_DATA_DIR) / "zeus-trace";
}

std::vector<chase::ZeusTrace> load_v100_traces() {
  std::vector<chase::ZeusTrace> traces;
  for (const auto& workload : chase::zeus_workloads()) {
    traces.push_back(chase::ZeusTrace::load(trace_dir(), "v100", workload));
  }
  return traces;
}

// Returns the mean reduction over everything, so the work cannot be optimised away.
double simulate_all(const std::vector<chase::ZeusTrace>& traces) {
  double reductions = 0;
  for (const auto& trace : traces) {
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
      chase::RecurringOptions options;
      options.seed = seed;
      reductions += chase::simulate_recurring(trace, options).summary.energy_reduction;
    }
  }
  return reductions / static_cast<double>(5 * traces.size());
}

void RecurringReproduction(benchmark::State& state, bool include_loading) {
  if (!std::filesystem::exists(trace_dir())) {
    state.SkipWithError(
        ("no Zeus traces at " + trace_dir().string() + "; set CHASE_DATA_DIR").c_str());
    return;
  }
  const auto preloaded = load_v100_traces();
  for (auto _ : state) {
    const double mean = simulate_all(include_loading ? load_v100_traces() : preloaded);
    benchmark::DoNotOptimize(mean);
  }
  state.SetLabel("6 workloads x 5 seeds, V100");
}
BENCHMARK_CAPTURE(RecurringReproduction, with_loading, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RecurringReproduction, simulation_only, false)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
