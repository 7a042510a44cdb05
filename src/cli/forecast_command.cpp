// chase forecast: backtest forecasting models on a carbon-intensity history, or forecast the next
// hours after it.
//   chase forecast backtest --data FILE --protocol chase|rolling [--models LIST] [--windows N]
//                           [--horizon STEPS|DURATION] [--start T --end T] [--exogenous] [--json]
//   chase forecast predict  --data FILE --horizon 24h [--model auto] [--json]
// Loader options shared by both: --time-col, --value-col, --fill, --resample, --duplicates,
// --exogenous, --exogenous-cols.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "chase/backtest.h"
#include "chase/carbon.h"
#include "chase/carbon_provider.h"
#include "chase/error.h"
#include "chase/forecast.h"
#include "chase/time.h"
#include "cli/commands.h"
#include "cli/forecast_reporting.h"
#include "cli/option_checks.h"
#include "cli/output_file.h"
#include "cli/progress.h"

namespace chase::cli {
namespace {

struct LoadOptions {
  std::string data;
  std::string time_column;
  std::string value_column;
  std::string fill = "none";
  std::string resample;
  std::string duplicates = "error";
  bool exogenous = false;
  std::vector<std::string> exogenous_columns;
};

struct BacktestOptions {
  LoadOptions load;
  std::string protocol = "rolling";
  std::vector<std::string> models;
  std::size_t windows = 20;
  std::size_t history_days = 28;
  std::string horizon = "1";
  std::string start;
  std::string end;
  std::uint64_t seed = 42;
  int threads = 1;
  bool json = false;
};

struct PredictOptions {
  LoadOptions load;
  std::string provider;
  std::string provider_config;
  std::size_t history_days = 28;
  std::string horizon = "24h";
  std::string model = "auto";
  std::uint64_t seed = 42;
  bool json = false;
};

// A horizon in steps: a bare number of steps, or a duration that is a whole number of steps.
std::size_t parse_horizon(const std::string& text, std::chrono::seconds resolution) {
  const auto duration = parse_duration(text);
  if (!duration) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--horizon '{}' is not a horizon: give a number of steps (e.g. 1) or "
                            "a duration, {}.",
                            text, kDurationGrammar));
  }
  // parse_duration reads a bare number as seconds; for a horizon it counts steps.
  const bool steps = text.find_first_not_of("0123456789") == std::string::npos;
  if (steps) return static_cast<std::size_t>(duration->count());
  if (duration->count() % resolution.count() != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--horizon {} is not a whole number of the series' steps ({} s); "
                            "give a multiple of the resolution or a number of steps.",
                            text, resolution.count()));
  }
  return static_cast<std::size_t>(*duration / resolution);
}

// The horizon asked for must leave history to forecast from: k steps ahead of the last point reads
// the value k steps before it. Said up front, with the number asked for (the loop over the steps
// would otherwise fail at the first step too far, naming that step instead).
void check_horizon(std::size_t steps, const std::string& text, const CarbonSeries& series,
                   const std::string& source) {
  if (steps < series.size()) return;
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("--horizon {} is {} step(s) of {} s, but '{}' has {} points: it can be "
                          "forecast at most {} step(s) ahead. Give a shorter --horizon or a "
                          "longer history.",
                          text, steps, series.resolution().count(), source, series.size(),
                          series.size() - 1));
}

// A duration as the options spell it: "30m", "1h", "90s".
std::string duration_text(UtcTime::duration duration) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(duration).count();
  if (seconds % 86400 == 0) return fmt::format("{}d", seconds / 86400);
  if (seconds % 3600 == 0) return fmt::format("{}h", seconds / 3600);
  if (seconds % 60 == 0) return fmt::format("{}m", seconds / 60);
  return fmt::format("{}s", seconds);
}

struct Step {
  UtcTime from;
  UtcTime to;
};

// The first two points closer together than the series' resolution: the file changed its spacing
// (e.g. 30-min rows, then 15-min rows). Filling cannot fix that, only resampling can.
std::optional<Step> first_finer_step(const CarbonSeries& series) {
  const auto& times = series.times();
  for (std::size_t i = 1; i < times.size(); ++i) {
    if (times[i] - times[i - 1] < series.resolution()) return Step{times[i - 1], times[i]};
  }
  return std::nullopt;
}

// The history a command works on. Today a CSV file (--data); a live provider (--provider NAME)
// will be one more branch here, returning the same LoadedSeries.
LoadedSeries load_history(const LoadOptions& options) {
  CarbonCsvOptions csv(options.time_column, options.value_column);
  const auto fill = parse_gap_fill(options.fill);
  if (!fill) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--fill '{}' is not one of none, previous, linear.", options.fill));
  }
  csv.fill = *fill;
  const auto duplicates = parse_duplicate_times(options.duplicates);
  if (!duplicates) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("--duplicates '{}' is not one of error, first, last.", options.duplicates));
  }
  csv.duplicates = *duplicates;
  if (!options.resample.empty())
    csv.resample = parse_duration_option(options.resample, "--resample");
  csv.exogenous = options.exogenous;
  csv.exogenous_columns = options.exogenous_columns;
  LoadedSeries loaded;
  loaded.series = load_carbon_csv(options.data, csv, &loaded.report);
  if (loaded.series.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("'{}' gave an empty series.", options.data));
  }
  if (const auto step = first_finer_step(loaded.series)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("'{}' changes its spacing: its rows are mostly {} apart, but {} and "
                            "{} are {} apart. Forecasting needs one spacing: pass --resample {} "
                            "(a finer part is averaged into it; add --fill previous for gaps).",
                            options.data, duration_text(loaded.series.resolution()),
                            format_utc_time(step->from), format_utc_time(step->to),
                            duration_text(step->to - step->from),
                            duration_text(loaded.series.resolution())));
  }
  if (!loaded.series.regular()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("'{}' has {} gap(s) ({} missing point(s); first: {}). Forecasting "
                            "needs a regular series: pass --fill previous or --fill linear "
                            "(or --resample PERIOD with a fill).",
                            options.data, loaded.report.gaps, loaded.report.missing_points,
                            loaded.report.gap_examples.empty() ? std::string("?")
                                                               : loaded.report.gap_examples[0]));
  }
  return loaded;
}

void add_load_options(CLI::App* cmd, LoadOptions& options, bool allow_exogenous) {
  cmd->add_option("--time-col", options.time_column, "Time column (default: detected by header)");
  cmd->add_option("--value-col", options.value_column,
                  "Intensity column (default: detected by header)");
  cmd->add_option("--fill", options.fill, "Fill gaps: none | previous | linear")
      ->capture_default_str();
  cmd->add_option("--resample", options.resample,
                  fmt::format("Resample to this period (mean when downsampling): a duration, {}",
                              kDurationGrammar));
  cmd->add_option("--duplicates", options.duplicates,
                  "Rows with the same time: error | first | last (keep that row)")
      ->capture_default_str();
  if (allow_exogenous) {
    cmd->add_flag("--exogenous", options.exogenous,
                  "Let models use the file's forecast columns (header containing 'forecast')");
    cmd->add_option("--exogenous-cols", options.exogenous_columns,
                    "Use exactly these columns as exogenous inputs (comma separated); they must be "
                    "known a day ahead")
        ->delimiter(',');
  }
}

int run_backtest(const BacktestOptions& options) {
  auto out = OutputFile::standard_output();
  const LoadedSeries loaded = load_history(options.load);
  const CarbonSeries& series = loaded.series;
  ForecasterOptions forecaster;
  forecaster.seed = options.seed;
  forecaster.threads = options.threads;
  forecaster.use_exogenous = !series.exogenous().empty();
  std::vector<std::string> models = options.models;
  if (models.empty()) models = forecaster_names();

  BacktestReport report;
  report.loaded = &loaded;
  report.protocol = options.protocol;
  report.models = models;
  if (options.protocol == "chase") {
    if (!options.start.empty() || !options.end.empty() || options.horizon != "1") {
      throw Error(ErrorCode::kInvalidArgument,
                  "--start, --end and --horizon belong to the rolling protocol; the chase "
                  "protocol forecasts one step ahead over evenly spread windows (--windows N).");
    }
    ChaseProtocolOptions protocol;
    protocol.windows = options.windows;
    report.windows = options.windows;
    report.horizon_steps = 1;
    report.scores = backtest_chase(series, models, protocol, forecaster);
  } else if (options.protocol == "rolling") {
    RollingProtocolOptions protocol;
    protocol.history_days = options.history_days;
    protocol.horizon_steps = parse_horizon(options.horizon, series.resolution());
    check_horizon(protocol.horizon_steps, options.horizon, series, options.load.data);
    if (!options.start.empty()) protocol.start = parse_time_option(options.start, "--start");
    if (!options.end.empty()) protocol.end = parse_time_option(options.end, "--end");
    report.history_days = options.history_days;
    report.horizon_steps = protocol.horizon_steps;
    report.scores = backtest_rolling(series, models, protocol, forecaster);
  } else {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--protocol '{}' is not one of chase, rolling.", options.protocol));
  }
  if (options.json) {
    out.stream() << backtest_json(report).dump(2) << '\n';
  } else {
    print_backtest(out.stream(), report);
  }
  out.close();
  return 0;
}

// The last `days` of a live provider's history, on a regular grid (providers drop null values,
// which leaves holes; they are filled with the previous value and counted in the report).
LoadedSeries load_provider_history(const PredictOptions& options) {
  auto provider = make_carbon_provider(
      options.provider, load_carbon_provider_options(options.provider, options.provider_config));
  const auto now = std::chrono::system_clock::now();
  const auto raw = provider->history(now - std::chrono::days(options.history_days), now);
  if (raw.size() < 2) {
    throw Error(ErrorCode::kUnavailable,
                fmt::format("--provider {}: {} point(s) of history in the last {} days, too few "
                            "to forecast from.",
                            options.provider, raw.size(), options.history_days));
  }
  LoadedSeries loaded;
  loaded.series = fill_gaps(raw, GapFill::kPrevious, &loaded.report.filled_points);
  loaded.report.rows = raw.size();
  loaded.report.source_resolution = raw.resolution();
  return loaded;
}

// predict fits one model per step ahead: a day at 1-second resolution would be 86400 fits, each
// on 28 days of points. More steps than this is refused with what to do instead.
constexpr std::size_t kMaxPredictSteps = 10'000;

void check_forecast_steps(std::size_t steps, const std::string& horizon,
                          std::chrono::seconds resolution) {
  if (steps <= kMaxPredictSteps) return;
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("--horizon {} is {} steps of the series' {} s: more than the {} models "
                          "predict fits (one per step); resample the history (--resample, e.g. "
                          "1h) or give a shorter horizon",
                          horizon, steps, resolution.count(), kMaxPredictSteps));
}

int run_predict(const PredictOptions& options) {
  auto out = OutputFile::standard_output();
  if (options.load.data.empty() && options.provider.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "Give the history to forecast from: --data FILE or --provider NAME.");
  }
  const LoadedSeries loaded =
      options.provider.empty() ? load_history(options.load) : load_provider_history(options);
  const std::string source =
      options.provider.empty() ? options.load.data : "provider " + options.provider;
  const CarbonSeries& series = loaded.series;
  const std::size_t steps = parse_horizon(options.horizon, series.resolution());
  check_horizon(steps, options.horizon, series, source);  // first: a shorter horizon is the fix
  check_forecast_steps(steps, options.horizon, series.resolution());
  const std::size_t n = series.size();

  // The series extended by `steps` future points. Their values are placeholders (the last value):
  // a forecast of target t at horizon k reads values at t − k ≤ n − 1 only, never these.
  std::vector<UtcTime> times = series.times();
  std::vector<double> values = series.values();
  for (std::size_t k = 1; k <= steps; ++k) {
    times.push_back(series.times().back() + series.resolution() * static_cast<std::int64_t>(k));
    values.push_back(series.values().back());
  }
  const CarbonSeries extended(std::move(times), std::move(values), series.resolution(),
                              series.source());

  ForecasterOptions forecaster_options;
  forecaster_options.seed = options.seed;
  Prediction prediction;
  prediction.loaded = &loaded;
  prediction.model = options.model;
  prediction.horizon_steps = steps;
  auto forecaster = make_forecaster(options.model, forecaster_options);
  ProgressLine progress("forecast predict");
  // Direct forecasts: one fit per step ahead k, on the last max(28 days, history_needed) points.
  for (std::size_t k = 1; k <= steps; ++k) {
    progress.update(static_cast<double>(k - 1), static_cast<double>(steps), "steps");
    const std::size_t window = std::max<std::size_t>(
        28 * static_cast<std::size_t>(86400 /
                                      std::max<std::int64_t>(1, series.resolution().count())),
        forecaster->history_needed(k));
    const std::size_t begin = n > window + k ? n - window : k;
    if (begin >= n) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("'{}' has {} points, too few to forecast {} step(s) ahead; give a "
                              "longer history.",
                              source, n, k));
    }
    forecaster->fit(series, begin, n, k);
    const std::size_t target = n - 1 + k;
    prediction.times.push_back(extended.times()[target]);
    prediction.values.push_back(forecaster->predict(extended, target, target + 1, k).front());
  }
  if (options.json) {
    out.stream() << prediction_json(prediction).dump(2) << '\n';
  } else {
    print_prediction(out.stream(), prediction);
  }
  out.close();
  return 0;
}

}  // namespace

void add_forecast_command(CLI::App& app, int& exit_code) {
  auto* forecast = app.add_subcommand(
      "forecast", "Forecast carbon intensity, or backtest forecasting models on a history");
  forecast->require_subcommand(1);

  auto backtest = std::make_shared<BacktestOptions>();
  auto* bt = forecast->add_subcommand("backtest", "Score forecasting models on a history");
  bt->add_option("--data", backtest->load.data, "Carbon-intensity CSV")
      ->required()
      ->check(CLI::ExistingFile);
  bt->add_option("--protocol", backtest->protocol, "chase (published windows) | rolling (daily)")
      ->capture_default_str();
  bt->add_option("--models", backtest->models,
                 fmt::format("Models, comma separated (default: all of {})",
                             fmt::join(forecaster_names(), ", ")))
      ->delimiter(',');
  bt->add_option("--windows", backtest->windows, "chase protocol: number of windows")
      ->transform(whole_number(1, 100000))
      ->capture_default_str();
  bt->add_option("--history-days", backtest->history_days,
                 "rolling protocol: refit on the last D days (or more when a model asks for it)")
      ->transform(whole_number(1, 10000))
      ->capture_default_str();
  bt->add_option("--horizon", backtest->horizon,
                 fmt::format("rolling protocol: steps ahead (1), or a duration (24h = day-ahead), "
                             "{}",
                             kDurationGrammar))
      ->capture_default_str();
  bt->add_option("--start", backtest->start,
                 fmt::format("rolling protocol: first day scored, a UTC time: {}", kTimeGrammar));
  bt->add_option("--end", backtest->end,
                 fmt::format("rolling protocol: end of the scored range (excluded), a UTC time: {}",
                             kTimeGrammar));
  bt->add_option("--seed", backtest->seed, "Seed of the randomised models")
      ->transform(whole_number(0, kMaxSeed))
      ->capture_default_str();
  bt->add_option("--threads", backtest->threads, "Threads a model may use while fitting")
      ->transform(whole_number(1, 256))
      ->capture_default_str();
  bt->add_flag("--json", backtest->json, "Print JSON instead of a table");
  add_load_options(bt, backtest->load, true);
  bt->callback([backtest, &exit_code] { exit_code = run_backtest(*backtest); });

  auto predict = std::make_shared<PredictOptions>();
  auto* pr = forecast->add_subcommand("predict", "Forecast the intensity after a history");
  auto* data = pr->add_option("--data", predict->load.data, "Carbon-intensity CSV (the history)")
                   ->check(CLI::ExistingFile);
  auto* provider =
      pr->add_option("--provider", predict->provider,
                     fmt::format("Live provider: {}", fmt::join(carbon_provider_names(), ", ")));
  data->excludes(provider);
  pr->add_option("--provider-config", predict->provider_config,
                 "Provider settings (JSON); environment variables override them")
      ->check(CLI::ExistingFile);
  pr->add_option("--history-days", predict->history_days,
                 "With --provider: days of history to fetch and fit on")
      ->transform(whole_number(1, 3650))
      ->capture_default_str();
  pr->add_option("--horizon", predict->horizon,
                 fmt::format("How far ahead: steps, or a duration, {}", kDurationGrammar))
      ->capture_default_str();
  pr->add_option("--model", predict->model, "Forecasting model")->capture_default_str();
  pr->add_option("--seed", predict->seed, "Seed of the randomised models")
      ->transform(whole_number(0, kMaxSeed))
      ->capture_default_str();
  pr->add_flag("--json", predict->json, "Print JSON instead of a table");
  add_load_options(pr, predict->load, false);
  pr->footer(
      "predict fits the model on the end of the history and forecasts each step after its last "
      "point directly (one model per step ahead). Exogenous columns are not used: their future "
      "values are not in the history.");
  pr->callback([predict, &exit_code] { exit_code = run_predict(*predict); });
}

}  // namespace chase::cli
