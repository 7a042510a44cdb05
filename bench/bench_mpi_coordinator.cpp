// One combine() + agree() round of the MpiCoordinator (chase/mpi_coordinator.h): what a data-
// parallel job pays per profiling window and per period boundary (and the one agree() per step that
// keeps the ranks' clocks together, chase/training.h). Run under mpirun, e.g.
//   mpirun --oversubscribe -np 4 --mca btl self,vader build/bench/chase_bench_mpi_coordinator
// Every rank runs the same fixed number of iterations (collectives must match); rank 0 reports.
#include <benchmark/benchmark.h>

#include <memory>

#include "chase/mpi_coordinator.h"

namespace {

std::shared_ptr<chase::MpiCoordinator> g_coordinator;

void BM_CombineAndAgree(benchmark::State& state) {
  chase::Coordinator::Window window{0.5, 120.0 + static_cast<double>(g_coordinator->rank()), false};
  double limit = 250;
  for (auto _ : state) {
    const auto job = g_coordinator->combine(window);
    benchmark::DoNotOptimize(job);
    limit = g_coordinator->agree(limit);
    benchmark::DoNotOptimize(limit);
  }
  state.counters["ranks"] = static_cast<double>(g_coordinator->size());
}
BENCHMARK(BM_CombineAndAgree)->Iterations(2000)->Repetitions(3)->Unit(benchmark::kMicrosecond);

void BM_AgreeOnly(benchmark::State& state) {
  double now = 1.7e9;
  for (auto _ : state) {
    now = g_coordinator->agree(now + 1e-3);
    benchmark::DoNotOptimize(now);
  }
}
BENCHMARK(BM_AgreeOnly)->Iterations(2000)->Repetitions(3)->Unit(benchmark::kMicrosecond);

// The other ranks run the same benchmarks silently.
class SilentReporter final : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  chase::MpiSession mpi(&argc, &argv);
  g_coordinator = std::make_shared<chase::MpiCoordinator>();
  benchmark::Initialize(&argc, argv);
  if (g_coordinator->rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    SilentReporter silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
  g_coordinator.reset();
  return 0;
}
