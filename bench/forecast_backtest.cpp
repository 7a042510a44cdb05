// chase_bench_forecast — runs the `chase` backtest protocol (chase/backtest.h) on one carbon CSV
// and prints, as JSON on stdout, each model's median/mean MAPE and the seconds spent in fit() and
// predict() (summed over the windows; loading the file is not timed). Used by
// bench/compare_forecast_sklearn.py, which runs scikit-learn on the same windows.
//
//   chase_bench_forecast --data FILE [--models linear,svr,...] [--windows 20] [--fit-points N]
//                        [--test-points N] [--value-column NAME] [--seed 42]
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chase/backtest.h"
#include "chase/error.h"

int main(int argc, char** argv) {
  CLI::App app{"Score forecasting models on the chase backtest protocol; prints JSON."};
  std::string data;
  std::vector<std::string> models = chase::forecaster_names();
  chase::ChaseProtocolOptions protocol;
  chase::ForecasterOptions options;
  chase::CarbonCsvOptions csv;
  app.add_option("--data", data, "carbon-intensity CSV file")->required();
  app.add_option("--models", models, "models to score (comma-separated)")->delimiter(',');
  app.add_option("--windows", protocol.windows, "number of windows")->capture_default_str();
  app.add_option("--fit-points", protocol.fit_points, "fit points per window (0: one day)");
  app.add_option("--test-points", protocol.test_points, "test points per window (0: 252 h)");
  app.add_option("--value-column", csv.value_column, "value column (default: detected)");
  app.add_option("--time-column", csv.time_column, "time column (default: detected)");
  app.add_option("--seed", options.seed, "random seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    const chase::CarbonSeries series = chase::load_carbon_csv(data, csv);
    const auto scores = chase::backtest_chase(series, models, protocol, options);
    nlohmann::json out;
    out["data"] = data;
    out["points"] = series.size();
    out["resolution_s"] = series.resolution().count();
    out["windows"] = protocol.windows;
    nlohmann::json list = nlohmann::json::array();
    for (const auto& score : scores) {
      list.push_back({{"model", score.model},
                      {"mape_median", score.mape_median},
                      {"mape_mean", score.mape_mean},
                      {"fit_predict_s", score.fit_predict_s},
                      {"points", score.points},
                      {"window_mapes", score.window_mapes}});
    }
    out["models"] = list;
    std::cout << out.dump(2) << "\n";
  } catch (const chase::Error& error) {
    std::cerr << "chase_bench_forecast: " << error.what() << "\n";
    return 2;
  }
  return 0;
}
