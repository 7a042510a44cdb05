// chase simulate carbon: one training job over a real carbon-intensity trace under a power-limit
// policy (the same LimitPolicy, selectors, planner and forecasters as live training).
//   chase simulate carbon --trace-dir DIR --gpu G --workload NAME --batch-size B --carbon FILE
//       [--start TIME] [--epochs N] [--period 30m] --policy default|zeus|chase|planner|oracle
//       [--eta X] [--slack S] [--forecast MODEL] [--timeline] [--json]
//   ... --sweep [--starts N] [--from TIME --to TIME] [--etas LIST] [--slacks LIST] [--csv FILE]
//       [--plot FILE]
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "chase/carbon_simulation.h"
#include "chase/error.h"
#include "chase/time.h"
#include "chase/zeus_trace.h"
#include "cli/commands.h"
#include "cli/simulate_carbon.h"

namespace chase::cli {
namespace {

struct CarbonCommandOptions {
  std::string trace_dir;
  std::string gpu = "a40";
  std::string workload = "imagenet";
  std::size_t batch_size = 256;
  std::string carbon;
  std::string start;
  double epochs = 40;
  std::string period = "30m";
  std::string policy = "chase";
  double eta = 0.5;
  double slack = 0.1;
  std::string forecast = "auto";
  double ci_max = 0;
  bool timeline = false;
  bool json = false;
  bool sweep = false;
  std::size_t starts = 12;
  std::string from;
  std::string to;
  std::vector<double> etas{0.5, 0.24};
  std::vector<double> slacks{0.02, 0.05, 0.1, 0.2};
  std::string csv;
  std::string plot;
  int threads = 1;
};

// Enough history before the default start for `auto`: 112 days of features, a week of lags and
// the 28 days it learns from.
constexpr auto kDefaultStartAfter = std::chrono::hours(150 * 24);

std::string default_trace_dir() {
  const char* data = std::getenv("CHASE_DATA_DIR");
  return data && *data ? (std::filesystem::path(data) / "zeus-trace").string() : std::string();
}

CarbonJob load_job(const CarbonCommandOptions& options) {
  if (options.trace_dir.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "no Zeus trace directory: pass --trace-dir DIR or set CHASE_DATA_DIR (its "
                "zeus-trace/ is used)");
  }
  if (options.carbon.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "no carbon trace: pass --carbon FILE (a CSV of UTC times and gCO2eq/kWh)");
  }
  const auto trace =
      ZeusTrace::load(options.trace_dir, options.gpu, zeus_workload(options.workload));
  CarbonCsvOptions csv;
  csv.fill = GapFill::kPrevious;  // a job runs through gaps; they take the last known value
  auto carbon = load_carbon_csv(options.carbon, csv);
  if (carbon.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the carbon trace '{}' has no points", options.carbon));
  }
  return CarbonJob{fmt::format("{}/{} batch {} on {}", trace.workload().dataset,
                               trace.workload().network, options.batch_size, options.gpu),
                   options.carbon, epoch_profile(trace, options.batch_size), std::move(carbon)};
}

PolicyParameters policy_parameters(const CarbonCommandOptions& options) {
  PolicyParameters parameters;
  parameters.eta = options.eta;
  parameters.slowdown_budget = options.slack;
  parameters.max_carbon_intensity = options.ci_max;
  return parameters;
}

CarbonSimulationOptions simulation_options(const CarbonCommandOptions& options,
                                           const CarbonJob& job) {
  CarbonSimulationOptions simulation;
  simulation.policy = parse_policy(options.policy, policy_parameters(options));
  simulation.period = parse_duration_option(options.period, "--period");
  simulation.forecast_model = options.forecast;
  simulation.epochs = options.epochs;
  simulation.start =
      options.start.empty()
          ? std::chrono::floor<std::chrono::days>(job.carbon.start() + kDefaultStartAfter)
          : parse_time_option(options.start, "--start");
  return simulation;
}

double change_percent(double value, double reference) { return 100 * (value / reference - 1); }

nlohmann::json result_json(const CarbonJob& job, const CarbonSimulationOptions& options,
                           const PolicyParameters& parameters, const CarbonSimulationResult& result,
                           const CarbonSimulationResult& baseline) {
  nlohmann::json timeline = nlohmann::json::array();
  for (const auto& s : result.timeline) {
    timeline.push_back({{"time", format_utc_time(s.start)},
                        {"ci", s.carbon_intensity},
                        {"forecast_ci", s.forecast_intensity},
                        {"power_limit_w", s.profiling ? nlohmann::json(nullptr)
                                                      : nlohmann::json(s.power_limit_w)},
                        {"profiling", s.profiling},
                        {"duration_s", s.duration_s},
                        {"epochs", s.epochs},
                        {"energy_j", s.energy_j},
                        {"carbon_g", s.carbon_g}});
  }
  nlohmann::json decisions = nlohmann::json::array();
  for (const auto& d : result.decisions) {
    decisions.push_back({{"time", format_utc_time(d.time)},
                         {"power_limit_w", d.power_limit_w},
                         {"reason", d.reason}});
  }
  return {{"job", job.description},
          {"carbon_file", job.carbon_file},
          {"policy", result.policy},
          {"forecast", result.forecast},
          {"eta", parameters.eta},
          {"slack", parameters.slowdown_budget},
          {"start", format_utc_time(options.start)},
          {"epochs", result.epochs},
          {"carbon_g", result.carbon_g},
          {"energy_j", result.energy_j},
          {"time_s", result.time_s},
          {"max_carbon_intensity", result.max_carbon_intensity},
          {"default",
           {{"carbon_g", baseline.carbon_g},
            {"energy_j", baseline.energy_j},
            {"time_s", baseline.time_s}}},
          {"carbon_change_percent", change_percent(result.carbon_g, baseline.carbon_g)},
          {"slowdown_percent", change_percent(result.time_s, baseline.time_s)},
          {"timeline", timeline},
          {"decisions", decisions}};
}

std::string describe_policy(const CarbonSimulationOptions& options,
                            const PolicyParameters& parameters,
                            const CarbonSimulationResult& result) {
  switch (kind_of(options.policy)) {
    case PolicyKind::kStatic:
      return fmt::format("{} (eta {:g})", result.policy, parameters.eta);
    case PolicyKind::kChase:
      return fmt::format("{} (eta {:g}, forecast {}, CI_max {:.1f} gCO2eq/kWh)", result.policy,
                         parameters.eta, result.forecast, result.max_carbon_intensity);
    case PolicyKind::kPlanner:
    case PolicyKind::kOracle:
      return fmt::format("{} (slack {:g}, forecast {})", result.policy,
                         parameters.slowdown_budget, result.forecast);
    case PolicyKind::kDefault:
      break;
  }
  return result.policy;
}

void print_timeline(std::ostream& out, const CarbonSimulationResult& result) {
  out << fmt::format("  {:<21} {:>9} {:>9} {:>9} {:>8} {:>12} {:>10}\n", "time", "limit (W)",
                     "CI", "forecast", "epochs", "energy (J)", "carbon (g)");
  for (const auto& s : result.timeline) {
    out << fmt::format("  {:<21} {:>9} {:>9.1f} {:>9.1f} {:>8.3f} {:>12.0f} {:>10.1f}\n",
                       format_utc_time(s.start),
                       s.profiling ? std::string("profile") : fmt::format("{:g}", s.power_limit_w),
                       s.carbon_intensity, s.forecast_intensity, s.epochs, s.energy_j, s.carbon_g);
  }
}

void print_result(std::ostream& out, const CarbonJob& job, const CarbonSimulationOptions& options,
                  const PolicyParameters& parameters, const CarbonSimulationResult& result, const CarbonSimulationResult& baseline,
                  bool timeline) {
  out << fmt::format("chase simulate carbon: {}, {:g} epochs from {}\n", job.description,
                     options.epochs, format_utc_time(options.start));
  out << fmt::format("  carbon trace {}\n", job.carbon_file);
  out << fmt::format("  policy {}\n", describe_policy(options, parameters, result));
  out << fmt::format("  {:<10} {:>12} {:>14} {:>10}\n", "", "carbon (g)", "energy (kWh)",
                     "time (h)");
  for (const auto* r : {&baseline, &result}) {
    out << fmt::format("  {:<10} {:>12.1f} {:>14.3f} {:>10.2f}\n", r == &baseline ? "default" : r->policy,
                       r->carbon_g, r->energy_j / kJoulesPerKwh, r->time_s / 3600);
  }
  out << fmt::format("  vs default: carbon {:+.2f} %, energy {:+.2f} %, time {:+.2f} %\n",
                     change_percent(result.carbon_g, baseline.carbon_g),
                     change_percent(result.energy_j, baseline.energy_j),
                     change_percent(result.time_s, baseline.time_s));
  out << fmt::format("  {} decision(s), {} timeline segment(s)\n", result.decisions.size(),
                     result.timeline.size());
  if (timeline) print_timeline(out, result);
}

void run_single(const CarbonCommandOptions& options) {
  const CarbonJob job = load_job(options);
  const auto simulation = simulation_options(options, job);
  const auto result = simulate_carbon(job.epochs, job.carbon, simulation);
  auto default_options = simulation;
  default_options.policy = FixedLimitOptions{};
  const auto baseline = simulate_carbon(job.epochs, job.carbon, default_options);
  const auto parameters = policy_parameters(options);
  if (options.json) {
    std::cout << result_json(job, simulation, parameters, result, baseline).dump(2) << '\n';
  } else {
    print_result(std::cout, job, simulation, parameters, result, baseline, options.timeline);
  }
}

void run_sweep(const CarbonCommandOptions& options) {
  const CarbonJob job = load_job(options);
  const auto base = simulation_options(options, job);
  SweepOptions sweep;
  sweep.etas = options.etas;
  sweep.slacks = options.slacks;
  sweep.starts = options.starts;
  sweep.from = options.from.empty() ? base.start : parse_time_option(options.from, "--from");
  sweep.to = options.to.empty() ? job.carbon.end() - std::chrono::days(7)
                                : parse_time_option(options.to, "--to");
  sweep.csv = options.csv;
  sweep.plot = options.plot;
  sweep.json = options.json;
  sweep.threads = options.threads;
  run_carbon_sweep(job, base, policy_parameters(options), sweep, std::cout);
}

}  // namespace

void add_simulate_carbon_command(CLI::App& simulate, int& exit_code) {
  auto* cmd = simulate.add_subcommand(
      "carbon", "One training job over a real carbon-intensity trace under a power-limit policy");
  auto options = std::make_shared<CarbonCommandOptions>();
  options->trace_dir = default_trace_dir();
  cmd->add_option("--trace-dir", options->trace_dir,
                  "Zeus trace directory (default: $CHASE_DATA_DIR/zeus-trace)");
  cmd->add_option("--gpu", options->gpu, "GPU of the trace: a40, v100, p100, rtx6000")
      ->capture_default_str();
  cmd->add_option("--workload", options->workload, "Dataset of the trace, e.g. imagenet")
      ->capture_default_str();
  cmd->add_option("--batch-size", options->batch_size, "Batch size")->capture_default_str();
  cmd->add_option("--carbon", options->carbon, "Carbon-intensity CSV (e.g. a DACF file)");
  cmd->add_option("--start", options->start,
                  fmt::format("Job start, a UTC time: {} (default: the first midnight 150 days "
                              "into the trace)",
                              kTimeGrammar));
  cmd->add_option("--epochs", options->epochs, "Epochs of the job")->capture_default_str();
  cmd->add_option("--period", options->period,
                  fmt::format("Control period: a duration, {}", kDurationGrammar))
      ->capture_default_str();
  cmd->add_option("--policy", options->policy, "default, zeus, chase, planner or oracle")
      ->check(CLI::IsMember(carbon_simulation_policies()))
      ->capture_default_str();
  cmd->add_option("--eta", options->eta, "zeus, chase: weight of energy/carbon against time")
      ->capture_default_str();
  cmd->add_option("--slack", options->slack,
                  "planner, oracle: finish within (1 + slack) × the default time")
      ->capture_default_str();
  cmd->add_option("--forecast", options->forecast, "Forecaster for chase and planner")
      ->capture_default_str();
  cmd->add_option("--ci-max", options->ci_max,
                  "chase: CI_max (default: the trace's maximum in the day before the start)");
  cmd->add_flag("--timeline", options->timeline, "Print every segment of the run");
  cmd->add_flag("--json", options->json, "Print JSON instead of a summary");
  cmd->add_flag("--sweep", options->sweep,
                "Run every policy over --etas / --slacks and --starts start times");
  cmd->add_option("--starts", options->starts, "sweep: start times, spread from --from to --to")
      ->capture_default_str();
  cmd->add_option("--from", options->from, "sweep: first start, a UTC time (default: as --start)");
  cmd->add_option("--to", options->to,
                  "sweep: last start, a UTC time (default: a week before the trace ends)");
  cmd->add_option("--etas", options->etas, "sweep: η values of zeus and chase")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--slacks", options->slacks, "sweep: slack values of planner and oracle")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--csv", options->csv, "sweep: write every run to this CSV");
  cmd->add_option("--plot", options->plot, "sweep: write the carbon-vs-time frontier (SVG)");
  cmd->add_option("--threads", options->threads, "sweep: simulations run in parallel")
      ->capture_default_str();
  cmd->callback([options, &exit_code] {
    if (options->sweep) {
      run_sweep(*options);
    } else {
      run_single(*options);
    }
    exit_code = 0;
  });
}

}  // namespace chase::cli
