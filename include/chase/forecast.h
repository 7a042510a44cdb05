// chase/forecast.h — carbon-intensity forecasters and their backtests.
//
// Contract: a Forecaster learns from a *regular* CarbonSeries (one point every resolution, no gaps;
// fill or resample first) and predicts the value at index `target` from what is known `horizon`
// steps before it:
//   - carbon-intensity values at indices ≤ target − horizon;
//   - the clock time (and so time of day, day of week) of every index;
//   - exogenous columns at every index ≤ target (they are forecasts published a day ahead; a model
//     uses them only when ForecasterOptions::use_exogenous is set).
// fit(series, begin, end, horizon) learns from the targets in [begin, end); its features may read
// earlier points (lags), never values at or after `end`. predict(series, first, last, horizon)
// returns one prediction per target in [first, last), each built only from what the contract above
// allows, so one call can score a whole test range without leaking the future.
// Predictions lie in the physical range: a carbon intensity is never negative, so every model
// make_forecaster returns clamps its predictions at 0 (a linear, SVR or boosted model extrapolating
// a declining series would otherwise forecast below it).
// Misuse — an irregular series, a range outside the series, too little history for the model's
// lags, predict before fit — throws chase::Error (kInvalidArgument) with a message saying which.
//
// Model names (make_forecaster): "persistence", "seasonal", "linear", "svr", "gboost", "adaboost",
// "forest" and "auto". The published five follow scikit-learn's semantics with the hyper-parameters
// of docs/ALGORITHMS.md §4 so that their scores are comparable with the paper's.
//
// Thread safety: a Forecaster is not safe for concurrent fit(); concurrent const predict() calls on
// a fitted forecaster are safe. make_forecaster and the backtest functions are reentrant.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chase/carbon.h"

namespace chase {

struct ForecasterOptions {
  std::uint64_t seed = 42;     // randomness of bootstrap/boosting samples: same seed, same result
  bool use_exogenous = false;  // let models that can use them read the series' exogenous columns
  int threads = 1;             // threads a model may use while fitting (1 keeps runs deterministic)
};

class Forecaster {
 public:
  virtual ~Forecaster() = default;
  virtual std::string_view name() const noexcept = 0;
  // Smallest `begin` a fit may start at for this horizon (how far back the features reach).
  virtual std::size_t history_needed(std::size_t horizon) const = 0;
  virtual void fit(const CarbonSeries& series, std::size_t begin, std::size_t end,
                   std::size_t horizon) = 0;
  virtual std::vector<double> predict(const CarbonSeries& series, std::size_t first,
                                      std::size_t last, std::size_t horizon) const = 0;
};

// Throws kInvalidArgument naming the known models when `name` is not one of them.
std::unique_ptr<Forecaster> make_forecaster(std::string_view name,
                                            const ForecasterOptions& options = {});
std::vector<std::string> forecaster_names();

// Mean absolute percentage error, in %: mean |ŷ − y| / y × 100 over the points with y > 0.
double mape_percent(const std::vector<double>& predicted, const std::vector<double>& actual);

}  // namespace chase
