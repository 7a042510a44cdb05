#include "cli/forecast_reporting.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace chase::cli {

namespace {

void print_data(std::ostream& out, const LoadedSeries& loaded) {
  const CarbonSeries& series = loaded.series;
  const CarbonLoadReport& report = loaded.report;
  out << fmt::format("  data:     {} ({} points every {} s, {} to {})\n", series.source(),
                     series.size(), series.resolution().count(), format_utc_time(series.start()),
                     format_utc_time(series.end()));
  if (!report.exogenous_columns.empty()) {
    out << fmt::format("  inputs:   {} exogenous column(s): {}\n", report.exogenous_columns.size(),
                       fmt::join(report.exogenous_columns, ", "));
  }
  if (!report.sorted) out << "  note:     the rows were not in time order; they were sorted\n";
  if (report.duplicates > 0) {
    out << fmt::format("  note:     {} duplicate time(s) resolved (e.g. {})\n", report.duplicates,
                       fmt::join(report.duplicate_examples, "; "));
  }
  if (report.gaps > 0) {
    out << fmt::format("  note:     {} gap(s), {} missing point(s) (e.g. {}); {} point(s) filled\n",
                       report.gaps, report.missing_points, fmt::join(report.gap_examples, "; "),
                       report.filled_points);
  }
}

nlohmann::json data_json(const LoadedSeries& loaded) {
  const CarbonSeries& series = loaded.series;
  const CarbonLoadReport& report = loaded.report;
  return {{"source", series.source()},
          {"points", series.size()},
          {"resolution_s", series.resolution().count()},
          {"start", format_utc_time(series.start())},
          {"end", format_utc_time(series.end())},
          {"rows", report.rows},
          {"sorted", report.sorted},
          {"duplicates", report.duplicates},
          {"gaps", report.gaps},
          {"missing_points", report.missing_points},
          {"filled_points", report.filled_points},
          {"exogenous_columns", report.exogenous_columns}};
}

}  // namespace

void print_backtest(std::ostream& out, const BacktestReport& report) {
  if (report.protocol == "chase") {
    out << fmt::format("chase forecast backtest — chase protocol, {} windows, one step ahead\n",
                       report.windows);
  } else {
    out << fmt::format(
        "chase forecast backtest — rolling protocol, {} step(s) ahead, refit daily on {} days\n",
        report.horizon_steps, report.history_days);
  }
  print_data(out, *report.loaded);
  out << '\n'
      << fmt::format("{:<12} {:>15} {:>13} {:>9} {:>15}\n", "model", "median MAPE %", "mean MAPE %",
                     "points", "fit+predict s");
  for (const ModelScore& score : report.scores) {
    out << fmt::format("{:<12} {:>15.3f} {:>13.3f} {:>9} {:>15.2f}\n", score.model,
                       score.mape_median, score.mape_mean, score.points, score.fit_predict_s);
  }
}

nlohmann::json backtest_json(const BacktestReport& report) {
  nlohmann::json models = nlohmann::json::object();
  for (const ModelScore& score : report.scores) {
    models[score.model] = {{"mape_median", score.mape_median},
                           {"mape_mean", score.mape_mean},
                           {"fit_predict_s", score.fit_predict_s},
                           {"points", score.points}};
  }
  nlohmann::json out = {{"protocol", report.protocol},
                        {"horizon_steps", report.horizon_steps},
                        {"data", data_json(*report.loaded)},
                        {"models", models}};
  if (report.protocol == "chase") {
    out["windows"] = report.windows;
  } else {
    out["history_days"] = report.history_days;
  }
  return out;
}

void print_prediction(std::ostream& out, const Prediction& prediction) {
  out << fmt::format("chase forecast predict — model {}, {} step(s) after the last point\n",
                     prediction.model, prediction.horizon_steps);
  print_data(out, *prediction.loaded);
  out << '\n' << fmt::format("{:<22} {:>12}\n", "time (UTC)", "gCO2eq/kWh");
  for (std::size_t i = 0; i < prediction.times.size(); ++i) {
    out << fmt::format("{:<22} {:>12.1f}\n", format_utc_time(prediction.times[i]),
                       prediction.values[i]);
  }
}

nlohmann::json prediction_json(const Prediction& prediction) {
  nlohmann::json forecast = nlohmann::json::array();
  for (std::size_t i = 0; i < prediction.times.size(); ++i) {
    forecast.push_back(
        {{"time", format_utc_time(prediction.times[i])}, {"value", prediction.values[i]}});
  }
  return {{"model", prediction.model},
          {"horizon_steps", prediction.horizon_steps},
          {"resolution_s", prediction.loaded->series.resolution().count()},
          {"data", data_json(*prediction.loaded)},
          {"forecast", forecast}};
}

}  // namespace chase::cli
