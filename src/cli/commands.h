// Internal (CLI): the subcommands and the backend opening they share.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "chase/cpu.h"
#include "chase/gpu.h"

namespace chase::cli {

// Each registers its subcommand on `app`; the callback runs the command and sets `exit_code`.
void add_devices_command(CLI::App& app, int& exit_code);
void add_measure_command(CLI::App& app, int& exit_code);
void add_demo_command(CLI::App& app, int& exit_code);
void add_select_command(CLI::App& app, int& exit_code);
void add_forecast_command(CLI::App& app, int& exit_code);
void add_simulate_command(CLI::App& app, int& exit_code);
void add_limits_command(CLI::App& app, int& exit_code);
// Recurring jobs (run_command.cpp): chase run and, for the script it runs, chase run-report.
void add_run_command(CLI::App& app, int& exit_code);
void add_run_report_command(CLI::App& app, int& exit_code);
void add_serve_command(CLI::App& app, int& exit_code);  // serve_command.cpp
// The subcommands of `simulate`, each in its own file.
void add_simulate_recurring_command(CLI::App& simulate, int& exit_code);
void add_simulate_carbon_command(CLI::App& simulate, int& exit_code);

// NVML GPUs, or null with `note` saying why there are none: no driver is not an error for a
// measuring tool (CPU-only machines are measured too), and neither is an NVML that fails as a whole
// (nvmlInit reporting a lost GPU, a failing GPU count): the CPUs are still measured.
struct OpenedGpus {
  std::shared_ptr<GpuBackend> backend;
  std::string note;
  bool lost = false;  // NVML failed because a GPU is lost
};
OpenedGpus open_gpus();

// RAPL zones, or null with `note` (e.g. the permission error and how to fix it).
struct OpenedCpus {
  std::shared_ptr<CpuBackend> backend;
  std::string note;
};
OpenedCpus open_cpus();

}  // namespace chase::cli
