// chase simulate: trace simulators (docs/ALGORITHMS.md §5–§6) — the parent of `recurring` (the
// batch-size and power-limit optimiser over a recurring job's training traces) and `carbon` (one
// job over a real carbon-intensity trace under a power-limit policy).
#include "cli/commands.h"

namespace chase::cli {

void add_simulate_command(CLI::App& app, int& exit_code) {
  auto* simulate = app.add_subcommand(
      "simulate", "Replay real traces: recurring jobs (Zeus traces) and carbon-aware runs");
  simulate->require_subcommand(1);
  add_simulate_recurring_command(*simulate, exit_code);
  add_simulate_carbon_command(*simulate, exit_code);
}

}  // namespace chase::cli
