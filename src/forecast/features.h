// forecast/features.h — what the forecasters share: range and regularity checks, the features of
// docs/ALGORITHMS.md §4, and the model factories the registry lists.
//
// Features of target index t for horizon h (one row, kFeatureCount columns):
//   [0] sin(2π·s/86400), [1] cos(2π·s/86400) with s the target's UTC clock second of the day (so a
//       half-hourly series starting at 06:20 gets the phase of 06:20, not of step 0), and
//   [2] the value at t − h (for h = 1: the true previous value).
// Only values at indices ≤ t − h are read, so predicting never sees the future.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chase/carbon.h"
#include "chase/forecast.h"

namespace chase::forecast_detail {

inline constexpr std::size_t kFeatureCount = 3;

// Row-major features of the targets [begin, end) and, for a fit, their values.
struct Features {
  std::size_t rows = 0;
  std::vector<double> x;  // rows × kFeatureCount
  std::vector<double> y;  // rows targets (empty when built for predict)
  const double* row(std::size_t i) const { return x.data() + i * kFeatureCount; }
};

// "the series from '<source>'" ("the series" without a source), for messages.
std::string describe_series(const CarbonSeries& series);
// Throws kInvalidArgument unless [begin, end) is a non-empty range inside the series.
void check_range(const CarbonSeries& series, std::size_t begin, std::size_t end,
                 std::string_view model, std::string_view call);
// Throws kInvalidArgument unless horizon ≥ 1.
void check_horizon(std::size_t horizon, std::string_view model);
// Throws kInvalidArgument unless the value `lag` steps before index `begin` exists (begin ≥ lag);
// `call` ("fit" / "predict") names the call.
void check_lag_available(std::size_t begin, std::size_t lag, std::string_view model,
                         std::string_view call);
// Throws kInvalidArgument unless points [from, to) are exactly one resolution apart.
void check_regular(const CarbonSeries& series, std::size_t from, std::size_t to,
                   std::string_view model);
// Points per day; throws kInvalidArgument when the resolution does not divide a day.
std::size_t steps_per_day(const CarbonSeries& series, std::string_view who);

// For the backtests: every named forecaster, built before any work so an unknown name (or an empty
// list) fails at once with kInvalidArgument naming the known models; `who` starts the message.
std::vector<std::unique_ptr<Forecaster>> make_forecasters(const std::vector<std::string>& models,
                                                          const ForecasterOptions& options,
                                                          std::string_view who);
// The median of `values` (the mean of the middle two for an even count); values must be non-empty.
double median(std::vector<double> values);

// Features of the targets [begin, end) for `horizon`, after all the checks above and that
// begin ≥ horizon (the lag must exist). `call` ("fit" / "predict") names the call in errors.
Features build_features(const CarbonSeries& series, std::size_t begin, std::size_t end,
                        std::size_t horizon, bool with_targets, std::string_view model,
                        std::string_view call);

// A model learning a function of the features above; fit/predict do the checks and build the
// features, subclasses only see matrices.
class FeatureForecaster : public Forecaster {
 public:
  std::size_t history_needed(std::size_t horizon) const override { return horizon; }
  void fit(const CarbonSeries& series, std::size_t begin, std::size_t end,
           std::size_t horizon) final;
  std::vector<double> predict(const CarbonSeries& series, std::size_t first, std::size_t last,
                              std::size_t horizon) const final;

 protected:
  virtual void fit_features(const Features& train) = 0;
  virtual std::vector<double> predict_features(const Features& test) const = 0;

 private:
  bool fitted_ = false;
  std::size_t horizon_ = 0;
};

// Throws kInvalidArgument for predict before fit, or with another horizon than the fit's.
void check_fitted(bool fitted, std::size_t fit_horizon, std::size_t horizon,
                  std::string_view model);

// Factories of the models (one per source file).
std::unique_ptr<Forecaster> make_persistence(const ForecasterOptions& options);
std::unique_ptr<Forecaster> make_seasonal(const ForecasterOptions& options);
std::unique_ptr<Forecaster> make_linear(const ForecasterOptions& options);
std::unique_ptr<Forecaster> make_svr(const ForecasterOptions& options);
std::unique_ptr<Forecaster> make_gboost(const ForecasterOptions& options);
std::unique_ptr<Forecaster> make_adaboost(const ForecasterOptions& options);
std::unique_ptr<Forecaster> make_forest(const ForecasterOptions& options);

}  // namespace chase::forecast_detail
