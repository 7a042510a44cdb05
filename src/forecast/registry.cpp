// The model registry (make_forecaster, forecaster_names) and mape_percent.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "chase/error.h"
#include "chase/forecast.h"
#include "forecast/auto_forecaster.h"
#include "forecast/features.h"

namespace chase {

namespace {

struct ModelEntry {
  std::string_view name;
  std::unique_ptr<Forecaster> (*make)(const ForecasterOptions&);
};

// The one list of models: make_forecaster and forecaster_names read it. Add a model (e.g. "auto")
// by appending its name and factory here.
constexpr ModelEntry kModels[] = {
    {"persistence", forecast_detail::make_persistence},
    {"seasonal", forecast_detail::make_seasonal},
    {"linear", forecast_detail::make_linear},
    {"svr", forecast_detail::make_svr},
    {"gboost", forecast_detail::make_gboost},
    {"adaboost", forecast_detail::make_adaboost},
    {"forest", forecast_detail::make_forest},
    {"auto", forecast_detail::make_auto},
};

// Every model, seen through the physical range: a carbon intensity is never negative, but a
// linear fit, an SVR or a boosted sum extrapolating a declining series can be (forecast.h). The
// clamp sits here, around every model make_forecaster returns, so no model can forget it.
class NonNegativeForecaster final : public Forecaster {
 public:
  explicit NonNegativeForecaster(std::unique_ptr<Forecaster> model) : model_(std::move(model)) {}
  std::string_view name() const noexcept override { return model_->name(); }
  std::size_t history_needed(std::size_t horizon) const override {
    return model_->history_needed(horizon);
  }
  void fit(const CarbonSeries& series, std::size_t begin, std::size_t end,
           std::size_t horizon) override {
    model_->fit(series, begin, end, horizon);
  }
  std::vector<double> predict(const CarbonSeries& series, std::size_t first, std::size_t last,
                              std::size_t horizon) const override {
    auto predictions = model_->predict(series, first, last, horizon);
    for (auto& value : predictions) value = std::max(value, 0.0);  // NaN stays NaN: a model bug
    return predictions;
  }

 private:
  std::unique_ptr<Forecaster> model_;
};

}  // namespace

std::vector<std::string> forecaster_names() {
  std::vector<std::string> names;
  for (const auto& model : kModels) names.emplace_back(model.name);
  return names;
}

std::unique_ptr<Forecaster> make_forecaster(std::string_view name,
                                            const ForecasterOptions& options) {
  if (options.threads < 1) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("ForecasterOptions::threads is {}; it must be at least 1.", options.threads));
  }
  for (const auto& model : kModels) {
    if (model.name == name) return std::make_unique<NonNegativeForecaster>(model.make(options));
  }
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("Unknown forecasting model '{}'; the known models are: {}.", name,
                          fmt::join(forecaster_names(), ", ")));
}

double mape_percent(const std::vector<double>& predicted, const std::vector<double>& actual) {
  if (predicted.size() != actual.size()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("mape_percent: {} predictions for {} actual values; they must pair "
                            "up one to one.",
                            predicted.size(), actual.size()));
  }
  double sum = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    if (!std::isfinite(predicted[i]) || !std::isfinite(actual[i])) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("mape_percent: pair {} is not finite (predicted {}, actual {}).", i,
                              predicted[i], actual[i]));
    }
    if (actual[i] > 0) {
      sum += std::abs(predicted[i] - actual[i]) / actual[i];
      ++count;
    }
  }
  if (count == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("mape_percent: none of the {} actual values is positive, so the "
                            "percentage error is undefined.",
                            actual.size()));
  }
  return sum / static_cast<double>(count) * 100;
}

}  // namespace chase
