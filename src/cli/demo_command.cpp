// chase demo: the built-in default job. A data-parallel training run on simulated GPUs (a made-up,
// clearly labelled profile), in virtual time, under a made-up day of grid carbon intensity — so it
// needs no GPU, runs in milliseconds and prints the same tables every time:
//   1. the job measured at every power limit (what profiling sees);
//   2. the whole job run four ways — the default limit, zeus (η = 0.5), chase (η = 0.5, 30-min
//      periods) and the lookahead planner (10 % slowdown budget) — with time, energy and carbon,
//      and an SVG plot of the intensity and the limit each policy chose over time.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>
#include <optional>

#include "chase/carbon.h"
#include "chase/carbon_provider.h"
#include "chase/carbon_signal.h"
#include "chase/energy_monitor.h"
#include "chase/simulated_gpu.h"
#include "chase/training.h"
#include "cli/commands.h"
#include "cli/demo_plot.h"
#include "cli/option_checks.h"
#include "cli/output_file.h"

namespace chase::cli {
namespace {

struct DemoOptions {
  std::size_t gpus = 4;
  double samples_per_limit = 1'281'167;  // one ImageNet-sized epoch per power limit
  std::size_t steps_per_limit = 100;
  double job_samples = 100'000'000;  // the whole job compared across policies (~21 h by default)
  double samples_per_step = 4096;    // over all GPUs
  std::string plot = "chase-demo.svg";
  bool json = false;
};

struct DemoRow {
  double limit_w;
  Measurement measurement;
  double samples;
  double intensity;  // mean gCO2eq/kWh over the window
  double carbon_g;
};

const UtcTime kDemoStart =
    std::chrono::sys_days{std::chrono::year{2026} / std::chrono::January / 1};

// A made-up day of grid intensity (gCO2eq/kWh), hourly for two days: a dirty evening peak and a
// solar dip at midday. Synthetic — not a measurement of any grid.
CarbonSeries synthetic_carbon_day() {
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (int hour = 0; hour < 48; ++hour) {
    const double h = hour % 24;
    const double evening = 120.0 * std::cos(2 * std::numbers::pi * (h - 19.0) / 24.0);
    const double solar = 140.0 * std::exp(-std::pow((h - 13.0) / 3.0, 2));
    times.push_back(kDemoStart + std::chrono::hours(hour));
    values.push_back(std::round(380.0 + evening - solar));
  }
  return CarbonSeries(std::move(times), std::move(values), std::chrono::hours(1),
                      "built-in synthetic day (made-up numbers)");
}

std::vector<DemoRow> run_demo(const DemoOptions& options, const CarbonSeries& carbon) {
  auto clock = std::make_shared<ManualClock>(kDemoStart);
  const auto profile = synthetic_demo_profile();
  auto gpus = make_simulated_gpus(options.gpus, profile, clock);
  EnergyMonitorOptions monitor_options;
  monitor_options.clock = clock;
  EnergyMonitor monitor(gpus, nullptr, monitor_options);

  std::vector<DemoRow> rows;
  gpus->set_all_busy(true);
  monitor.begin_window("whole run");  // nested around the per-limit windows
  const auto& points = profile.points();
  for (auto it = points.rbegin(); it != points.rend(); ++it) {  // from the maximum down
    for (std::size_t g = 0; g < options.gpus; ++g) gpus->set_power_limit_w(g, it->power_limit_w);
    const std::string window = fmt::format("limit_{:.0f}", it->power_limit_w);
    monitor.begin_window(window);
    // Data parallel: each GPU trains on its share of every step; the step takes as long as the
    // slowest GPU (all identical here).
    const double samples_per_step =
        options.samples_per_limit / static_cast<double>(options.steps_per_limit);
    const double step_s =
        samples_per_step / static_cast<double>(options.gpus) / gpus->throughput(0);
    for (std::size_t step = 0; step < options.steps_per_limit; ++step)
      clock->advance(Seconds(step_s));
    auto m = monitor.end_window(window);
    const double carbon_g = emissions_g(m.total_energy_j(), m.start_utc, m.end_utc, carbon);
    const double intensity = carbon_g / m.total_energy_j() * kJoulesPerKwh;
    rows.push_back(
        {it->power_limit_w, std::move(m), options.samples_per_limit, intensity, carbon_g});
  }
  monitor.end_window("whole run");
  return rows;
}

// One policy's run of the whole job.
struct PolicyRun {
  std::string name;
  std::string description;
  RunReport report;
};

struct JobSetup {
  std::shared_ptr<ManualClock> clock;
  std::shared_ptr<SimulatedGpuBackend> gpus;
  std::shared_ptr<CarbonSignal> carbon;
};

JobSetup job_setup(const DemoOptions& options, const CarbonSeries& carbon) {
  JobSetup setup;
  setup.clock = std::make_shared<ManualClock>(kDemoStart);
  setup.gpus = make_simulated_gpus(options.gpus, synthetic_demo_profile(), setup.clock);
  setup.gpus->set_all_busy(true);
  CarbonSignalOptions signal;
  signal.clock = setup.clock;
  signal.horizon = std::chrono::hours(48);
  setup.carbon = std::make_shared<CarbonSignal>(
      make_replay_provider(carbon, setup.clock, "synthetic day"), signal);
  return setup;
}

std::size_t job_steps(const DemoOptions& options) {
  return static_cast<std::size_t>(std::ceil(options.job_samples / options.samples_per_step));
}

// Runs the job under `training` (a policy) on fresh simulated GPUs in virtual time.
RunReport run_policy(const DemoOptions& options, const CarbonSeries& carbon,
                     TrainingOptions training) {
  auto setup = job_setup(options, carbon);
  training.clock = setup.clock;
  training.carbon = setup.carbon;
  training.total_steps = job_steps(options);
  TrainingController controller(setup.gpus, training);
  controller.on_train_begin();
  // Data parallel: each GPU trains on its share of every step; all are identical here.
  const double samples_per_gpu = options.samples_per_step / static_cast<double>(options.gpus);
  for (std::size_t step = 0; step < training.total_steps; ++step) {
    controller.on_step_begin();
    setup.clock->advance(Seconds(samples_per_gpu / setup.gpus->throughput(0)));
    controller.on_step_end();
  }
  controller.on_train_end();
  return controller.report();
}

std::vector<PolicyRun> run_policies(const DemoOptions& options, const CarbonSeries& carbon) {
  TrainingOptions base;
  base.profiling.warmup_steps = 10;
  base.profiling.profile_steps = 40;
  std::vector<PolicyRun> runs;

  // "default": the GPUs' own limit, profiled like the others (a time selector keeps the highest
  // limit), so that every run pays the same profiling.
  auto fixed = base;
  fixed.policy = StaticOptions{make_time_selector()};
  runs.push_back(
      {"default", "the GPUs' default (maximum) limit", run_policy(options, carbon, fixed)});

  auto zeus = base;
  zeus.policy = StaticOptions{make_zeus_selector(0.5)};
  runs.push_back({"zeus", "zeus, eta 0.5: energy-time trade-off, blind to carbon",
                  run_policy(options, carbon, zeus)});

  auto chase = base;
  chase.policy = ChaseOptions{.eta = 0.5};
  runs.push_back({"chase", "chase, eta 0.5: re-chosen every 30 min from the intensity",
                  run_policy(options, carbon, chase)});

  auto planner = base;
  planner.policy = PlannerOptions{.slowdown_budget = 0.1};
  runs.push_back({"planner", "planner: least carbon within a 10 % slowdown budget",
                  run_policy(options, carbon, planner)});
  return runs;
}

void print_policies(std::ostream& out, const DemoOptions& options,
                    const std::vector<PolicyRun>& runs) {
  out << fmt::format(
      "\nThe whole job ({:.0f} samples, {} steps) under four policies, from {}:\n\n"
      "{:<8} {:>9} {:>13} {:>11} {:>9} {:>9}\n",
      options.job_samples, job_steps(options), format_utc_time(kDemoStart), "policy", "time (h)",
      "energy (kWh)", "CO2 (kg)", "time", "CO2");
  const auto& base = runs.front().report;
  for (const auto& run : runs) {
    const auto& r = run.report;
    out << fmt::format("{:<8} {:>9.2f} {:>13.2f} {:>11.3f} {:>+8.1f}% {:>+8.1f}%  {}\n", run.name,
                       r.time_s / 3600, r.energy_j / kJoulesPerKwh, r.carbon_g / 1e3,
                       100 * (r.time_s / base.time_s - 1), 100 * (r.carbon_g / base.carbon_g - 1),
                       run.description);
  }
}

nlohmann::json policies_json(const std::vector<PolicyRun>& runs) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& run : runs) {
    out[run.name] = {{"description", run.description},
                     {"time_s", run.report.time_s},
                     {"energy_j", run.report.energy_j},
                     {"carbon_g", run.report.carbon_g},
                     {"report", nlohmann::json::parse(run_report_json(run.report))}};
  }
  return out;
}

void write_plot(OutputFile& plot, const CarbonSeries& carbon, const std::vector<PolicyRun>& runs) {
  std::vector<PlotPolicy> policies;
  for (const auto& run : runs) policies.push_back({run.name, run.report});
  write_demo_plot(plot.stream(), carbon, kDemoStart, policies);
  plot.close();
}

void print_table(std::ostream& out, const DemoOptions& options, const std::vector<DemoRow>& rows,
                 const CarbonSeries& carbon) {
  const auto profile = synthetic_demo_profile();
  out << fmt::format(
      "chase demo — measuring a simulated training job on {} simulated GPUs\n"
      "  profile:  {} on a {} (SYNTHETIC: made-up numbers, not a measurement)\n"
      "  carbon:   {}\n"
      "  work:     {:.0f} samples at each power limit, data parallel, virtual time from {}\n\n",
      options.gpus, profile.workload(), profile.gpu(), carbon.source(), options.samples_per_limit,
      format_utc_time(kDemoStart));
  out << fmt::format("{:>9} {:>10} {:>12} {:>13} {:>11} {:>10} {:>13} {:>10}\n", "limit (W)",
                     "time (s)", "energy (kJ)", "avg power (W)", "samples/s", "J/sample",
                     "CI (g/kWh)", "CO2 (g)");
  const DemoRow* best = &rows.front();
  for (const auto& row : rows) {
    const auto& m = row.measurement;
    out << fmt::format(
        "{:>9.0f} {:>10.1f} {:>12.1f} {:>13.1f} {:>11.1f} {:>10.3f} {:>13.0f} {:>10.1f}\n",
        row.limit_w, m.time_s, m.total_energy_j() / 1e3, m.total_energy_j() / m.time_s,
        row.samples / m.time_s, m.total_energy_j() / row.samples, row.intensity, row.carbon_g);
    if (m.total_energy_j() < best->measurement.total_energy_j()) best = &row;
  }
  const auto& fastest = rows.front().measurement;
  out << fmt::format(
      "\nLowest energy: {:.0f} W uses {:.1f} % less energy than {:.0f} W and takes {:.1f} % "
      "longer.\n",
      best->limit_w, 100.0 * (1.0 - best->measurement.total_energy_j() / fastest.total_energy_j()),
      rows.front().limit_w, 100.0 * (best->measurement.time_s / fastest.time_s - 1.0));
}

void print_json(std::ostream& out, const std::vector<DemoRow>& rows,
                const std::vector<PolicyRun>& runs) {
  nlohmann::json windows = nlohmann::json::array();
  for (const auto& row : rows) {
    const auto& m = row.measurement;
    windows.push_back({{"power_limit_w", row.limit_w},
                       {"time_s", m.time_s},
                       {"energy_j", m.total_energy_j()},
                       {"avg_power_w", m.total_energy_j() / m.time_s},
                       {"throughput", row.samples / m.time_s},
                       {"intensity_g_per_kwh", row.intensity},
                       {"carbon_g", row.carbon_g},
                       {"start_time", format_utc_time(m.start_utc)}});
  }
  out << nlohmann::json{{"synthetic", true},
                        {"windows", windows},
                        {"policies", policies_json(runs)}}
             .dump(2)
      << '\n';
}

}  // namespace

void add_demo_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<DemoOptions>();
  auto* cmd = app.add_subcommand(
      "demo",
      "Run a simulated training job at every power limit and under four policies (no GPU needed)");
  cmd->add_option("--gpus", options->gpus, "Number of simulated GPUs")
      ->transform(whole_number(1, 64))
      ->capture_default_str();
  cmd->add_option("--plot", options->plot, "SVG file for the plot (empty: none)")
      ->capture_default_str();
  cmd->add_flag("--json", options->json, "Print JSON instead of tables");
  cmd->callback([options, &exit_code] {
    // The plot file is opened before the work, and a plot that cannot be written does not stop the
    // tables (a partial result beats none); the first failure fails the command at the end.
    RunFiles files;
    std::optional<OutputFile> plot;
    if (!options->plot.empty()) plot.emplace(files.open_output("--plot", options->plot));
    auto out = OutputFile::standard_output();
    const auto carbon = synthetic_carbon_day();
    const auto rows = run_demo(*options, carbon);
    const auto runs = run_policies(*options, carbon);
    FirstFailure failure;
    if (plot) failure.attempt([&] { write_plot(*plot, carbon, runs); });
    if (options->json) {
      print_json(out.stream(), rows, runs);
    } else {
      print_table(out.stream(), *options, rows, carbon);
      print_policies(out.stream(), *options, runs);
      if (plot && !failure.failed()) {
        out.stream() << fmt::format("\nPlot of intensity and chosen limits: {}\n", options->plot);
      }
      out.stream() << "\nAll numbers are simulated from made-up inputs. Run `chase measure -- CMD` "
                      "to measure a real job.\n";
    }
    failure.attempt([&] { out.close(); });
    failure.rethrow();
    exit_code = 0;
  });
}

}  // namespace chase::cli
