// chase measure [options] -- CMD [ARGS...]: run a command and report its time, energy and
// emissions.
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <iostream>
#include <memory>
#include <optional>

#include "chase/carbon.h"
#include "chase/energy_monitor.h"
#include "chase/error.h"
#include "chase/launch.h"
#include "chase/power_limit_guard.h"
#include "chase/pushgateway.h"
#include "cli/child_process.h"
#include "cli/commands.h"
#include "cli/job_report.h"
#include "cli/measure_pushgateway.h"
#include "cli/option_checks.h"
#include "cli/output_file.h"
#include "cli/reporting.h"
#include "common/text.h"

namespace chase::cli {
namespace {

struct MeasureOptions {
  std::string gpus = "all";
  std::optional<double> intensity;
  std::string carbon_csv;
  std::string time_column, value_column;
  std::optional<double> interval_s;  // left out: no live line
  bool json = false;
  bool no_cpu = false;
  bool polling = false;
  std::string output;
  std::string csv_log;
  std::string job_dir;                  // under a launcher: where the ranks' parts meet
  double job_timeout_s = 120;           // how long the job leader waits for the other ranks' parts
  std::optional<double> power_limit_w;  // --power-limit: the GPUs' limit for the run
  PushgatewayOptions pushgateway;       // --pushgateway: pushed when its url is set
  std::vector<std::string> command;
};

// Above this, an intensity is in another unit: the dirtiest plants emit about 1200 gCO2eq/kWh (the
// providers refuse the same values).
constexpr double kMaxIntensityGPerKwh = 3000;
// Live lines faster than the power readings refresh (NVML every ~100 ms, the polling integrator
// at ≤ 100 ms) would show noise as power and flood the terminal.
constexpr double kMinIntervalS = 0.1;
constexpr double kMaxIntervalS = 86400;

constexpr std::string_view kCommandWindow = "command";
constexpr std::string_view kIntervalWindow = "interval";

// How often a measured command's GPU counters are read, so a GPU lost mid-run is reported with
// its energy up to at most this long before the loss (one NVML call per GPU, off the hot path).
constexpr std::chrono::milliseconds kCounterRefresh{100};

// "all", "none" or a comma-separated list of GPU indices.
std::vector<std::size_t> parse_gpu_list(const std::string& text, const GpuBackend* backend) {
  std::vector<std::size_t> selected;
  if (text == "all") {
    for (std::size_t i = 0; backend && i < backend->gpu_count(); ++i) selected.push_back(i);
    return selected;
  }
  if (text == "none" || text.empty()) return selected;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    // Digits only: std::stoul would take "-1" and wrap it to the largest index.
    const bool digits = !item.empty() && item.size() <= 9 &&
                        item.find_first_not_of("0123456789") == std::string::npos;
    if (!digits) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("--gpus: '{}' is not a GPU index (use e.g. --gpus 0,2, all or none)",
                              escape_untrusted(item, 40)));
    }
    const std::size_t index = std::stoul(item);
    if (!backend) {
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("--gpus {}: no GPUs can be measured on this machine", text));
    }
    checked_gpu(backend->gpus(), index);
    selected.push_back(index);
    start = comma + 1;
  }
  return selected;
}

// The selected GPUs that can be measured; the others are skipped with a warning saying why, so
// one sick GPU never stops the measurement of the rest (nor the command).
std::vector<std::size_t> measurable_gpus(const std::vector<std::size_t>& selected,
                                         const GpuBackend* backend, MeasureReport& report) {
  std::vector<std::size_t> measurable;
  for (std::size_t index : selected) {
    const GpuInfo& gpu = backend->gpus()[index];
    if (is_healthy(gpu)) {
      measurable.push_back(index);
      if (!gpu.note.empty()) report.warnings.push_back(fmt::format("GPU {}: {}", index, gpu.note));
      continue;
    }
    report.skipped_gpus.push_back(gpu);
    report.warnings.push_back(
        fmt::format("GPU {} skipped ({}): {}", index, to_string(gpu.state), gpu.problem));
  }
  return measurable;
}

// A GPU lost during the run keeps the energy measured up to the loss; say so next to the numbers.
void note_lost_gpus(MeasureReport& report) {
  for (const auto& gpu : report.measurement.gpus) {
    if (!gpu.lost_after_s) continue;
    report.warnings.push_back(
        fmt::format("GPU {} was lost {:.1f} s into the run; its energy covers only that part, "
                    "and the totals and emissions are a lower bound: {}",
                    gpu.index, *gpu.lost_after_s, gpu.error));
  }
}

std::optional<CarbonSeries> load_series(const MeasureOptions& options) {
  if (options.carbon_csv.empty()) return std::nullopt;
  return load_carbon_csv(options.carbon_csv, {options.time_column, options.value_column});
}

// One live line per interval (or a progress line redrawn in place on a terminal).
class LiveReporter {
 public:
  LiveReporter(EnergyMonitor& monitor, std::ostream& out, bool tty, PushgatewayReporter* pushes)
      : monitor_(monitor), out_(out), tty_(tty), pushes_(pushes) {}

  void tick() {
    const auto m = monitor_.end_window(kIntervalWindow);
    monitor_.begin_window(kIntervalWindow);
    elapsed_s_ += m.time_s;
    energy_j_ += m.total_energy_j();
    so_far_.time_s = elapsed_s_;
    so_far_.gpu_energy_j += m.gpu_energy_j();
    so_far_.cpu_energy_j += m.cpu_energy_j();
    if (pushes_ != nullptr) pushes_->push(measure_metrics(so_far_, true));
    const auto line =
        fmt::format("[{:8.1f} s] GPU {:8.1f} W  CPU {:7.1f} W  energy {}", elapsed_s_,
                    m.time_s > 0 ? m.gpu_energy_j() / m.time_s : 0.0,
                    m.time_s > 0 ? m.cpu_energy_j() / m.time_s : 0.0, format_energy(energy_j_));
    if (tty_) {
      out_ << "\r\033[K" << line << std::flush;
      drew_ = true;
    } else {
      out_ << line << '\n' << std::flush;
    }
  }
  void finish() {
    if (drew_) out_ << '\n' << std::flush;
  }

 private:
  EnergyMonitor& monitor_;
  std::ostream& out_;
  bool tty_;
  PushgatewayReporter* pushes_;  // null: no --pushgateway
  MeasuredSoFar so_far_;
  bool drew_ = false;
  double elapsed_s_ = 0;
  double energy_j_ = 0;
};

// --power-limit: sets every measured GPU to `watts` (directly, or through chased when CHASE_DAEMON
// names it) and says so on stderr.
std::unique_ptr<PowerLimitGuard> apply_power_limit(double watts,
                                                   const std::vector<std::size_t>& gpus,
                                                   const std::shared_ptr<GpuBackend>& backend) {
  if (!backend || gpus.empty()) {
    throw Error(ErrorCode::kUnavailable,
                "--power-limit: no GPU to set a limit on (no GPUs measured on this machine)");
  }
  auto guard = std::make_unique<PowerLimitGuard>(backend);
  for (std::size_t gpu : gpus) {
    guard->set_power_limit_w(gpu, watts);
    std::cerr << fmt::format(
        "chase: GPU {} runs at a {} W power limit (was {} W; restored "
        "afterwards{})\n",
        gpu, watts, guard->original_limit_w(gpu).value_or(0),
        backend->backend_name() == "chased" ? " by chased" : "");
  }
  return guard;
}

void restore_power_limits(PowerLimitGuard& guard, MeasureReport& report) {
  try {
    guard.restore();
  } catch (const Error& e) {
    report.warnings.push_back(
        fmt::format("--power-limit: a limit could not be restored: {}; check with `chase limits "
                    "show` and `nvidia-smi -q -d POWER`",
                    e.what()));
  }
}

void add_carbon(const MeasureOptions& options, const std::optional<CarbonSeries>& series,
                MeasureReport& report) {
  const auto& m = report.measurement;
  try {
    if (options.intensity) {
      report.intensity_g_per_kwh = *options.intensity;
      report.carbon_g = emissions_g(m.total_energy_j(), *options.intensity);
    } else if (series) {
      report.carbon_source = options.carbon_csv;
      report.carbon_g = emissions_g(m.total_energy_j(), m.start_utc, m.end_utc, *series);
    }
  } catch (const Error& e) {
    // The energy is still reported; only the emissions are missing, and we say why.
    report.warnings.push_back(fmt::format("no emissions: {}", e.what()));
  }
}

std::string final_metrics(const MeasureReport& report) {
  MeasuredSoFar measured;
  measured.time_s = report.measurement.time_s;
  measured.gpu_energy_j = report.measurement.gpu_energy_j();
  measured.cpu_energy_j = report.measurement.cpu_energy_j();
  measured.carbon_g = report.carbon_g;
  measured.intensity_g_per_kwh = report.intensity_g_per_kwh;
  measured.exit_code = report.signal != 0 ? 128 + report.signal : report.exit_code;
  return measure_metrics(measured, false);
}

// The exit code when the report cannot be written: the command's own when it failed (so a
// script still sees that), else EX_IOERR (sysexits), so a lost report never looks like success.
constexpr int kReportFailedExitCode = 74;

void render_report(std::ostream& out, const MeasureOptions& options, const MeasureReport& report) {
  if (options.json) {
    out << measurement_json(report).dump(2) << '\n';
  } else {
    print_measurement(out, report);
  }
}

// Writes the report to its output. When that fails the measurement is not lost: the report goes
// to standard error instead, with the error and the command's exit code. Returns chase's exit code.
// `shown_early`: how many of the report's warnings were already printed on stderr before the run.
int write_report(const MeasureOptions& options, OutputFile& out, MeasureReport report,
                 std::size_t shown_early) {
  auto to_terminal = report;
  // The table goes to the same stderr: do not repeat what the user has already seen there.
  to_terminal.warnings.erase(
      to_terminal.warnings.begin(),
      to_terminal.warnings.begin() + static_cast<std::ptrdiff_t>(shown_early));
  const bool on_stderr = out.is_standard_stream() && !options.json;
  std::string failure;
  try {
    render_report(out.stream(), options, on_stderr ? to_terminal : report);
    out.close();
  } catch (const Error& e) {
    failure = e.what();
  }
  const int command_code = report.exit_code;
  if (!failure.empty()) {
    if (!out.is_standard_stream()) {
      std::cerr << "chase: the report could not be written; here it is instead:\n";
      render_report(std::cerr, options, to_terminal);
    }
    std::cerr << fmt::format("chase: error: {}; the measured command exited with code {}\n",
                             failure, command_code);
    std::cerr.flush();
    return command_code != 0 ? command_code : kReportFailedExitCode;
  }
  if (!report.measurement.log_error.empty()) {
    std::cerr << fmt::format("chase: error: {}; the measured command exited with code {}\n",
                             report.measurement.log_error, command_code);
    return command_code != 0 ? command_code : kReportFailedExitCode;
  }
  return command_code;
}

// Under a launcher: this rank's part goes to the job directory; the job leader merges every part
// into the one report (cli/job_report.h). Returns chase's exit code.
int finish_in_job(const MeasureOptions& options, OutputFile& out, const LaunchInfo& launch,
                  const GpuBackend* backend, const MeasureReport& report) {
  auto part = measurement_json(report);
  for (auto& gpu : part["gpus"]) {
    if (backend) gpu["uuid"] = backend->gpus().at(gpu["index"].get<std::size_t>()).uuid;
  }
  const std::filesystem::path base =
      !options.job_dir.empty() ? std::filesystem::path(options.job_dir)
      : options.output.empty() ? std::filesystem::current_path()
                               : std::filesystem::absolute(options.output).parent_path();
  const auto directory = job_part_directory(base, launch);
  const int command_code = report.exit_code;
  try {
    write_job_part(directory, launch, part);
    if (!launch.job_leader()) return command_code;
    const auto job = collect_job_report(
        directory, launch,
        std::chrono::milliseconds(static_cast<long long>(options.job_timeout_s * 1000)),
        report.measurement.start_utc);
    if (options.json) {
      out.stream() << job.dump(2) << '\n';
    } else {
      print_job_report(out.stream(), job);
    }
    out.close();
    if (!job["job"]["complete"].get<bool>()) {
      return command_code != 0 ? command_code : kReportFailedExitCode;
    }
  } catch (const Error& e) {
    std::cerr << fmt::format(
        "chase: error: rank {}: {}; the measured command exited with code {}\n", launch.rank,
        escape_untrusted(e.what()), command_code);
    return command_code != 0 ? command_code : kReportFailedExitCode;
  }
  return command_code;
}

int run_measure(MeasureOptions& options) {
  if (options.command.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "no command to measure: chase measure -- CMD [ARGS...]");
  }
  // Every output is checked and opened before the command runs: a missing directory must not cost
  // an hours-long measurement, and no output may overwrite the carbon CSV it reads.
  // Under mpirun/srun/torchrun each rank measures its share and the job leader alone writes.
  const LaunchInfo launch = detect_launch();
  const bool in_job = launch.size > 1;
  RunFiles files;
  files.input("--carbon-csv", options.carbon_csv);
  OutputFile out = options.output.empty() || (in_job && !launch.job_leader())
                       ? OutputFile::standard_error()
                       : files.open_output("-o", options.output);
  if (!options.csv_log.empty()) files.claim_output("--log", options.csv_log);

  block_forwarded_signals();                 // before the monitor starts its thread
  const auto series = load_series(options);  // a bad file fails before the job runs, not after

  MeasureReport report;
  report.command = options.command;
  // --gpus none never touches NVML, so not even a driver that fails as a whole can stop the run.
  const bool wants_gpus = options.gpus != "none" && !options.gpus.empty();
  OpenedGpus gpus;
  if (wants_gpus) {
    gpus = open_gpus();
    if (!gpus.backend) report.warnings.push_back("no GPUs: " + gpus.note);
  }
  OpenedCpus cpus;
  if (!options.no_cpu && (!in_job || launch.node_leader())) {  // node-wide: read once per node
    cpus = open_cpus();
    if (!cpus.backend) report.warnings.push_back("no CPU energy: " + cpus.note);
    if (cpus.backend) {
      for (const auto& note : cpus.backend->notes()) report.warnings.push_back("CPU: " + note);
    }
  }
  EnergyMonitorOptions monitor_options;
  auto selected = parse_gpu_list(options.gpus, gpus.backend.get());
  if (in_job && options.gpus == "all" && gpus.backend) {  // this rank's share of the node's GPUs
    selected = assign_devices(node_gpus(gpus.backend->gpus()), launch).measured;
  }
  monitor_options.gpus = measurable_gpus(selected, gpus.backend.get(), report);
  monitor_options.counter_refresh_period = kCounterRefresh;
  const bool no_gpus = monitor_options.gpus.empty();
  monitor_options.csv_log = options.csv_log;  // opened (and its header written) here, before
  monitor_options.force_polling = options.polling;
  EnergyMonitor monitor(no_gpus ? nullptr : gpus.backend, cpus.backend, monitor_options);
  // Checked before any limit changes, so a bad URL refuses the run; pushes never hold the command.
  std::unique_ptr<PushgatewayReporter> pushes;
  if (!options.pushgateway.url.empty()) {
    // Under a launcher every rank pushes its own share: one group per rank, not one overwritten.
    if (in_job) options.pushgateway.instance = fmt::format("rank-{}", launch.rank);
    pushes = std::make_unique<PushgatewayReporter>(options.pushgateway);
  }
  // Before the command starts, after every check that can refuse the run: a refused run leaves no
  // limit changed. The guard restores on every way out (return, exception, signal).
  std::unique_ptr<PowerLimitGuard> limits;
  if (options.power_limit_w) {
    limits = apply_power_limit(*options.power_limit_w, monitor_options.gpus, gpus.backend);
  }

  for (const auto& warning : report.warnings) {
    std::cerr << "chase: warning: " << escape_untrusted(warning) << '\n';
  }
  const std::size_t shown_early = report.warnings.size();
  LiveReporter live(monitor, std::cerr, isatty(STDERR_FILENO) == 1, pushes.get());
  const auto tick = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(options.interval_s.value_or(0)));
  monitor.begin_window(kCommandWindow);
  if (tick.count() > 0) monitor.begin_window(kIntervalWindow);
  CommandOutcome outcome;
  try {
    outcome = run_command(options.command, tick, [&] { live.tick(); });
  } catch (const Error& e) {
    std::cerr << "chase: error: " << escape_untrusted(e.what()) << '\n';
    return e.code() == ErrorCode::kNotFound ? 127 : 126;  // the shell's codes
  }
  report.measurement = monitor.end_window(kCommandWindow);
  if (monitor.is_window_open(kIntervalWindow)) monitor.cancel_window(kIntervalWindow);
  live.finish();
  if (limits) restore_power_limits(*limits, report);
  note_lost_gpus(report);

  report.exit_code = outcome.exit_code;
  report.signal = outcome.signal;
  add_carbon(options, series, report);
  if (pushes) pushes->push(final_metrics(report));
  pushes.reset();  // waits (at most its timeout) for the final push
  if (!report.measurement.log_error.empty()) {
    report.warnings.push_back(report.measurement.log_error);
  }
  if (in_job) return finish_in_job(options, out, launch, gpus.backend.get(), report);
  return write_report(options, out, std::move(report), shown_early);
}

}  // namespace

void add_measure_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<MeasureOptions>();
  auto* cmd = app.add_subcommand(
      "measure", "Run a command and report its wall time, energy per device and emissions");
  cmd->add_option("--gpus", options->gpus, "GPU indices to measure: e.g. 0,2 | all | none")
      ->capture_default_str();
  auto* intensity =
      cmd->add_option("--intensity", options->intensity, "Constant carbon intensity in gCO2eq/kWh")
          ->check(non_negative_number(kMaxIntensityGPerKwh));
  auto* csv = cmd->add_option("--carbon-csv", options->carbon_csv,
                              "Carbon-intensity CSV (UTC time + gCO2eq/kWh columns)")
                  ->check(CLI::ExistingFile);
  intensity->excludes(csv);
  cmd->add_option("--time-col", options->time_column, "Time column of --carbon-csv")->needs(csv);
  cmd->add_option("--value-col", options->value_column, "Intensity column of --carbon-csv")
      ->needs(csv);
  cmd->add_option("--interval", options->interval_s,
                  fmt::format("Print a live power/energy line every S seconds, at least {:g} (a "
                              "progress line on a terminal; left out: none)",
                              kMinIntervalS))
      ->check(finite_number(kMinIntervalS, kMaxIntervalS));
  cmd->add_option("--power-limit", options->power_limit_w,
                  "Run the command with the measured GPUs at this power limit in W, restored "
                  "afterwards (through chased when CHASE_DAEMON is set)")
      ->check(finite_number(1, 100000));
  auto* pushgateway =
      cmd->add_option("--pushgateway", options->pushgateway.url,
                      "Push the measurement (every --interval and at the end) to this Prometheus "
                      "Pushgateway, e.g. http://127.0.0.1:9091");
  cmd->add_option("--pushgateway-job", options->pushgateway.job,
                  "The Pushgateway's job label for the pushes")
      ->needs(pushgateway)
      ->capture_default_str();
  cmd->add_flag("--json", options->json, "Report as JSON");
  cmd->add_flag("--no-cpu", options->no_cpu, "Do not measure CPU energy (RAPL)");
  cmd->add_flag("--polling", options->polling,
                "Integrate sampled GPU power even where an energy counter exists (for validation)");
  cmd->add_option("-o,--output", options->output,
                  "Write the report to this file instead of standard error");
  cmd->add_option("--log", options->csv_log, "Append the measured window to this CSV log");
  cmd->add_option("--job-dir", options->job_dir,
                  "Under mpirun/srun/torchrun: a directory every rank can write, where the ranks' "
                  "measurements meet (default: the report's directory, else the current one)");
  cmd->add_option("--job-timeout", options->job_timeout_s,
                  "Under a launcher: seconds the job leader waits for the other ranks")
      ->check(finite_number(0.1, 86400))
      ->capture_default_str();
  cmd->add_option("command", options->command, "The command and its arguments, after --")
      ->required();
  cmd->footer(
      "The command runs without a shell; SIGINT/SIGTERM sent to chase are forwarded to it and "
      "chase "
      "exits with its exit code (128 + N when signal N killed it). The report goes to standard "
      "error (like time(1)) unless -o is given.");
  cmd->callback([options, &exit_code] { exit_code = run_measure(*options); });
}

}  // namespace chase::cli
