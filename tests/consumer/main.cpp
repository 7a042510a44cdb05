// Measures the energy of two simulated GPUs over 10 s of virtual time with chase::EnergyMonitor and
// checks it against the power profile. Includes every public header of chase::measure, so the build
// also shows that none of them needs another component's headers.
#include <chase/cpu.h>
#include <chase/energy_monitor.h>
#include <chase/error.h>
#include <chase/gpu.h>
#include <chase/nvml.h>
#include <chase/power_limit_guard.h>
#include <chase/power_monitor.h>
#include <chase/simulated_gpu.h>
#include <chase/time.h>

#include <cmath>
#include <cstdio>
#include <memory>

int main() try {
  auto clock = std::make_shared<chase::ManualClock>();
  const chase::PowerProfile profile = chase::synthetic_demo_profile();
  auto gpus = chase::make_simulated_gpus(2, profile, clock);
  gpus->set_power_limit_w(1, 200);
  gpus->set_all_busy(true);

  chase::EnergyMonitorOptions options;
  options.clock = clock;
  chase::EnergyMonitor monitor(gpus, nullptr, options);
  monitor.begin_window("step");
  clock->advance(chase::Seconds(10));
  const chase::Measurement m = monitor.end_window("step");

  const double expected_j = 10 * (profile.power_at(profile.max_limit_w()) + profile.power_at(200));
  std::printf("chase::measure consumer: %zu simulated GPUs, %.1f s, %.1f J (expected %.1f J)\n",
              m.gpus.size(), m.time_s, m.total_energy_j(), expected_j);
  const bool ok = m.complete() && m.gpus.size() == 2 &&
                  std::abs(m.total_energy_j() - expected_j) < 1e-6 * expected_j;
  std::printf("%s\n", ok ? "OK" : "MISMATCH");
  return ok ? 0 : 1;
} catch (const chase::Error& e) {
  std::fprintf(stderr, "chase_consumer: %s\n", e.what());
  return 1;
}
