// A toy recurring job for `chase run` (tests/store/run_command_test.cpp): it "trains" along a Zeus
// trace. Its batch size comes from chase run; like the trace simulator it draws one recorded
// training path of that size (the epoch it reaches the target at), with the simulator's random
// stream: one draw per decision the job has had, replayed from the store's observations. Each
// epoch costs the trace's epoch at the chosen power limit; the first run of a batch size profiles
// (the trace's epochs at every limit, reported to chase run, whose selector picks the limit) and
// its first epoch costs the profiling epoch. It reports epoch, metric (1 once the path's epoch is
// reached, else 0) and its own energy and time so far, and stops when chase run says so.
//
//   toy_job TRACE_DIR GPU WORKLOAD SEED
#include <cstdlib>
#include <iostream>
#include <random>

#include "chase/recurring_store.h"
#include "chase/run_client.h"
#include "chase/zeus_trace.h"

int main(int argc, char** argv) try {
  if (argc != 5) {
    std::cerr << "usage: toy_job TRACE_DIR GPU WORKLOAD SEED\n";
    return 2;
  }
  const auto trace = chase::ZeusTrace::load(argv[1], argv[2], chase::zeus_workload(argv[3]));
  const std::uint64_t seed = std::strtoull(argv[4], nullptr, 10);
  const auto run = chase::RunClient::from_environment();
  const auto batch_size = run.batch_size();

  // The simulator draws a path on every decision, ruled-out ones included, in decision order.
  const auto store = chase::open_recurring_store(std::getenv("CHASE_STORE"));
  const auto before = store->load(run.job());
  const auto sequence = std::strtoull(std::getenv("CHASE_RUN_SEQUENCE"), nullptr, 10);
  std::mt19937_64 random(seed);
  const auto draw = [&](std::size_t size) {
    const auto& paths = trace.paths(size);
    return paths[std::uniform_int_distribution<std::size_t>(0, paths.size() - 1)(random)];
  };
  for (std::size_t i = 0; i < sequence; ++i) draw(before.at(i).batch_size);
  const auto path = draw(batch_size);

  const auto profile = chase::epoch_profile(trace, batch_size);
  const bool profiling = run.profiling();
  const double limit = profiling ? run.report_profile(profile) : *run.power_limit_w();
  const auto epoch = *trace.epoch(batch_size, limit);
  const auto profiling_epoch = chase::profiling_epoch(profile);
  for (std::size_t e = 1;; ++e) {
    // The simulator's arithmetic, term for term, so the costs agree to the bit.
    const double at_limit = static_cast<double>(profiling ? e - 1 : e);
    const double energy =
        at_limit * epoch.energy_j() + (profiling ? profiling_epoch.energy_j() : 0);
    const double time = at_limit * epoch.time_s + (profiling ? profiling_epoch.time_s : 0);
    const double metric = path && static_cast<double>(e) >= *path ? 1.0 : 0.0;
    if (run.report(e, metric, chase::RunAccount{energy, time}).stop) return 0;
  }
} catch (const std::exception& e) {
  std::cerr << "toy_job: " << e.what() << '\n';
  return 1;
}
