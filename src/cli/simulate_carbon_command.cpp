// chase simulate carbon: one training job over a real carbon-intensity trace under a power-limit
// policy (the same LimitPolicy, selectors, planner and forecasters as live training).
//   chase simulate carbon --trace-dir DIR --gpu G --workload NAME --batch-size B --carbon FILE
//       [--start TIME] [--epochs N] [--period 30m] --policy default|zeus|chase|planner|oracle
//       [--eta X] [--slack S] [--pause none|idle|release [--idle-power-w W] [--resume-cost-s T]]
//       [--forecast MODEL [--exogenous [--exogenous-lead 24h | --exogenous-published-at HH:MM]
//                                      [--exogenous-refit 6h]]]
//       [--timeline] [--json]
//   ... --sweep [--starts N] [--from TIME --to TIME] [--etas LIST] [--slacks LIST] [--csv FILE]
//       [--plot FILE]
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>

#include "chase/carbon_simulation.h"
#include "chase/carbon_sweep.h"
#include "chase/error.h"
#include "chase/time.h"
#include "chase/zeus_trace.h"
#include "cli/carbon_reporters.h"
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "cli/output_file.h"
#include "cli/progress.h"
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
  std::string pause = "none";
  double idle_power_w = 30;
  double resume_cost_s = 0;
  std::string forecast = "auto";
  bool exogenous = false;
  std::string exogenous_lead = "24h";
  std::string exogenous_published_at;
  std::string exogenous_refit = "6h";
  std::optional<double> ci_max;  // left out: the trace's maximum in the day before the start
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

// Ranges of the numeric options (beyond them a value is a typo, not an experiment): a job of at
// most a million epochs, a slack of at most 100 (101 × the default time), and CI_max at most the
// intensity above which a value is surely in another unit (the providers refuse the same).
constexpr double kMaxEpochs = 1e6;
constexpr double kMaxSlack = 100;
constexpr double kMaxIntensityGPerKwh = 3000;
// An idle GPU above 2 kW or a resume longer than a week is a typo.
constexpr double kMaxIdlePowerW = 2000;
constexpr double kMaxResumeS = 7 * 24 * 3600;

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
  csv.exogenous = options.exogenous;
  auto carbon = load_carbon_csv(options.carbon, csv);
  if (carbon.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the carbon trace '{}' has no points", options.carbon));
  }
  if (options.exogenous && carbon.exogenous().empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--exogenous: the carbon trace '{}' has no column whose name contains "
                            "\"forecast\" (day-ahead weather or generation forecasts); leave "
                            "--exogenous out for this file",
                            options.carbon));
  }
  return CarbonJob{fmt::format("{}/{} batch {} on {}", trace.workload().dataset,
                               trace.workload().network, options.batch_size, options.gpu),
                   options.carbon, epoch_profile(trace, options.batch_size), std::move(carbon)};
}

PolicyParameters policy_parameters(const CarbonCommandOptions& options) {
  PolicyParameters parameters;
  parameters.eta = options.eta;
  parameters.slowdown_budget = options.slack;
  parameters.max_carbon_intensity = options.ci_max.value_or(0);  // 0: chosen by the simulator
  parameters.pause.mode = parse_pause_mode(options.pause);
  parameters.pause.idle_power_w = options.idle_power_w;
  parameters.pause.resume_s = options.resume_cost_s;
  return parameters;
}

CarbonSimulationOptions simulation_options(const CarbonCommandOptions& options,
                                           const CarbonJob& job) {
  CarbonSimulationOptions simulation;
  simulation.policy = parse_policy(options.policy, policy_parameters(options));
  simulation.period = parse_duration_option(options.period, "--period");
  simulation.forecast_model = options.forecast;
  simulation.exogenous_publication.lead =
      parse_duration_option(options.exogenous_lead, "--exogenous-lead");
  if (!options.exogenous_published_at.empty()) {
    simulation.exogenous_publication.daily_at = parse_time_of_day(options.exogenous_published_at);
    if (!simulation.exogenous_publication.daily_at) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("--exogenous-published-at '{}' is not a UTC time of day; give HH:MM, "
                              "e.g. 12:00",
                              options.exogenous_published_at));
    }
  }
  simulation.inputs_refit_interval =
      parse_duration_option(options.exogenous_refit, "--exogenous-refit");
  simulation.epochs = options.epochs;
  simulation.start =
      options.start.empty()
          ? std::chrono::floor<std::chrono::days>(job.carbon.start() + kDefaultStartAfter)
          : parse_time_option(options.start, "--start");
  return simulation;
}

// --json: the JSON reporter; otherwise the console table (with --timeline, every segment).
std::unique_ptr<CarbonReporter> display_reporter(const CarbonCommandOptions& options,
                                                 std::ostream& out) {
  if (options.json) return std::make_unique<JsonCarbonReporter>(out);
  return std::make_unique<ConsoleCarbonReporter>(out, options.timeline);
}

// The most control periods a simulated job may span: each is a policy decision (a forecast for
// chase and the planner), so a tiny --period on a long job would run for hours.
constexpr double kMaxPeriods = 1e6;

// Refuses a --period that would split the job into more than kMaxPeriods periods, counted at the
// slowest power limit (the longest the job can take).
void check_period_count(const CarbonCommandOptions& options, const CarbonJob& job,
                        const CarbonSimulationOptions& simulation) {
  double slowest_epoch_s = 0;
  for (const auto& point : job.epochs.points()) {
    slowest_epoch_s = std::max(slowest_epoch_s, point.time_s);
  }
  const double periods =
      options.epochs * slowest_epoch_s / static_cast<double>(simulation.period.count());
  if (periods > kMaxPeriods) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--period {} splits this job into up to {:.0f} control periods, more "
                            "than the {:.0f} a simulation runs; give a longer --period or fewer "
                            "--epochs",
                            options.period, periods, kMaxPeriods));
  }
}

void run_single(const CarbonCommandOptions& options) {
  const auto kind = parse_policy_kind(options.policy);
  if (options.pause != "none" && kind != PolicyKind::kPlanner && kind != PolicyKind::kOracle) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--pause {} needs --policy planner or oracle (the {} policy never "
                            "pauses)",
                            options.pause, options.policy));
  }
  auto out = OutputFile::standard_output();
  const CarbonJob job = load_job(options);
  auto simulation = simulation_options(options, job);
  check_period_count(options, job, simulation);
  ProgressLine progress("simulate carbon");
  if (progress.enabled()) {
    simulation.on_progress = [&](double done) { progress.update(done, options.epochs, "epochs"); };
  }
  const auto result = simulate_carbon(job.epochs, job.carbon, simulation);
  simulation.on_progress = nullptr;
  auto default_options = simulation;
  default_options.policy = FixedLimitOptions{};
  const auto baseline = simulate_carbon(job.epochs, job.carbon, default_options);
  const auto parameters = policy_parameters(options);
  display_reporter(options, out.stream())
      ->report_run(job, {simulation, parameters, result, baseline});
  out.close();
}

void run_sweep(const CarbonCommandOptions& options) {
  // The files are opened before the sweep (which may run for hours) and may not name its inputs.
  RunFiles files;
  files.input("--carbon", options.carbon);
  files.input("--trace-dir", options.trace_dir);
  std::optional<OutputFile> csv, plot;
  if (!options.csv.empty()) csv.emplace(files.open_output("--csv", options.csv));
  if (!options.plot.empty()) plot.emplace(files.open_output("--plot", options.plot));
  auto out = OutputFile::standard_output();
  const CarbonJob job = load_job(options);
  CarbonSweepOptions sweep;
  sweep.base = simulation_options(options, job);
  check_period_count(options, job, sweep.base);
  sweep.parameters = policy_parameters(options);
  sweep.etas = options.etas;
  sweep.slacks = options.slacks;
  sweep.starts = options.starts;
  sweep.from = options.from.empty() ? sweep.base.start : parse_time_option(options.from, "--from");
  sweep.to = options.to.empty() ? job.carbon.end() - std::chrono::days(7)
                                : parse_time_option(options.to, "--to");
  sweep.threads = options.threads;
  if (sweep.starts == 0 || sweep.to < sweep.from) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--sweep needs at least one start and --from ({}) no later than --to "
                            "({})",
                            format_utc_time(sweep.from), format_utc_time(sweep.to)));
  }
  const auto result = run_carbon_sweep(plan_carbon_sweep(sweep), job.epochs, job.carbon);
  // Every output gets its part even when another fails; the first failure fails the command.
  FirstFailure failure;
  if (csv) {
    failure.attempt([&] {
      CsvCarbonReporter(csv->stream()).report_sweep(job, result);
      csv->close();
    });
  }
  if (plot) {
    failure.attempt([&] {
      write_sweep_plot(plot->stream(), job, result);
      plot->close();
    });
  }
  failure.attempt([&] {
    display_reporter(options, out.stream())->report_sweep(job, result);
    out.close();
  });
  failure.rethrow();
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
  cmd->add_option("--batch-size", options->batch_size, "Batch size")
      ->transform(whole_number(1))
      ->capture_default_str();
  cmd->add_option("--carbon", options->carbon, "Carbon-intensity CSV (e.g. a DACF file)");
  cmd->add_option("--start", options->start,
                  fmt::format("Job start, a UTC time: {} (default: the first midnight 150 days "
                              "into the trace)",
                              kTimeGrammar));
  cmd->add_option("--epochs", options->epochs, "Epochs of the job")
      ->check(positive_number(kMaxEpochs))
      ->capture_default_str();
  cmd->add_option("--period", options->period,
                  fmt::format("Control period: a duration, {}", kDurationGrammar))
      ->capture_default_str();
  cmd->add_option("--policy", options->policy, "default, zeus, chase, planner or oracle")
      ->check(CLI::IsMember(carbon_simulation_policies()))
      ->capture_default_str();
  cmd->add_option("--eta", options->eta, "zeus, chase: weight of energy/carbon against time")
      ->check(fraction())
      ->capture_default_str();
  cmd->add_option("--slack", options->slack,
                  "planner, oracle: finish within (1 + slack) × the default time")
      ->check(non_negative_number(kMaxSlack))
      ->capture_default_str();
  cmd->add_option("--pause", options->pause,
                  "planner, oracle: deadline mode — pause none, idle (keep the GPUs at the "
                  "minimum limit) or release (checkpoint and exit)")
      ->check(CLI::IsMember({"none", "idle", "release"}))
      ->capture_default_str();
  cmd->add_option("--idle-power-w", options->idle_power_w,
                  "--pause idle: power per GPU while paused, W")
      ->check(non_negative_number(kMaxIdlePowerW))
      ->capture_default_str();
  cmd->add_option("--resume-cost-s", options->resume_cost_s,
                  "deadline mode: time a resume takes (reloading a checkpoint), s; it draws the "
                  "power of the minimum limit")
      ->check(non_negative_number(kMaxResumeS))
      ->capture_default_str();
  cmd->add_option("--forecast", options->forecast, "Forecaster for chase and planner")
      ->capture_default_str();
  cmd->add_flag("--exogenous", options->exogenous,
                "chase, planner: let the forecaster read the trace's day-ahead columns (those "
                "whose name contains \"forecast\", e.g. DACF's weather and generation "
                "forecasts) for the hours they are published ahead");
  cmd->add_option("--exogenous-lead", options->exogenous_lead,
                  fmt::format("--exogenous: how far ahead of now those columns count as "
                              "published: a duration, {}",
                              kDurationGrammar))
      ->capture_default_str();
  cmd->add_option("--exogenous-published-at", options->exogenous_published_at,
                  "--exogenous: published once a day at this UTC time (HH:MM), each time up to "
                  "the end of the next UTC day, instead of a rolling --exogenous-lead")
      ->excludes("--exogenous-lead");
  cmd->add_option("--exogenous-refit", options->exogenous_refit,
                  fmt::format("--exogenous: refit the model reading them after this much new "
                              "data (in between it predicts with its last coefficients): a "
                              "duration, {}",
                              kDurationGrammar))
      ->capture_default_str();
  cmd->add_option("--ci-max", options->ci_max,
                  "chase: CI_max in gCO2eq/kWh (left out: the trace's maximum in the day before "
                  "the start)")
      ->check(positive_number(kMaxIntensityGPerKwh));
  cmd->add_flag("--timeline", options->timeline, "Print every segment of the run");
  cmd->add_flag("--json", options->json, "Print JSON instead of a summary");
  cmd->add_flag("--sweep", options->sweep,
                "Run every policy over --etas / --slacks and --starts start times");
  cmd->add_option("--starts", options->starts, "sweep: start times, spread from --from to --to")
      ->transform(whole_number(1, 100000))
      ->capture_default_str();
  cmd->add_option("--from", options->from, "sweep: first start, a UTC time (default: as --start)");
  cmd->add_option("--to", options->to,
                  "sweep: last start, a UTC time (default: a week before the trace ends)");
  cmd->add_option("--etas", options->etas, "sweep: η values of zeus and chase")
      ->delimiter(',')
      ->check(fraction())
      ->capture_default_str();
  cmd->add_option("--slacks", options->slacks, "sweep: slack values of planner and oracle")
      ->delimiter(',')
      ->check(non_negative_number(kMaxSlack))
      ->capture_default_str();
  cmd->add_option("--csv", options->csv, "sweep: write every run to this CSV");
  cmd->add_option("--plot", options->plot, "sweep: write the carbon-vs-time frontier (SVG)");
  cmd->add_option("--threads", options->threads, "sweep: simulations run in parallel")
      ->transform(whole_number(1, 256))
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
