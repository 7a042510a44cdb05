// Internal (CLI): what `chase forecast` prints — a console table for people and JSON with stable
// keys for scripts, like cli/reporting.h. Golden-output tests pin both.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "chase/backtest.h"
#include "chase/carbon.h"

namespace chase::cli {

struct LoadedSeries {
  CarbonSeries series;
  CarbonLoadReport report;
};

struct BacktestReport {
  const LoadedSeries* loaded = nullptr;
  std::string protocol;  // "chase" | "rolling"
  std::vector<std::string> models;
  std::size_t windows = 0;       // chase
  std::size_t history_days = 0;  // rolling
  std::size_t horizon_steps = 1;
  std::vector<ModelScore> scores;
};

void print_backtest(std::ostream& out, const BacktestReport& report);
// {"protocol", "horizon_steps", "data": {...}, "models": {"<name>": {"mape_median", "mape_mean",
// "fit_predict_s", "points"}}}
nlohmann::json backtest_json(const BacktestReport& report);

struct Prediction {
  const LoadedSeries* loaded = nullptr;
  std::string model;
  std::size_t horizon_steps = 0;
  std::vector<UtcTime> times;
  std::vector<double> values;
};

void print_prediction(std::ostream& out, const Prediction& prediction);
// {"model", "horizon_steps", "resolution_s", "data": {...}, "forecast": [{"time", "value"}]}
nlohmann::json prediction_json(const Prediction& prediction);

}  // namespace chase::cli
