// The baselines: `persistence` (the value `horizon` steps back: for one step ahead, the last
// value) and `seasonal` (the value at the same clock time one day earlier, or whole days earlier
// when the horizon is longer than a day). They learn nothing: fit() reads no values and only checks
// its range, so history_needed() is 0 and a fit may start anywhere (the chase protocol's first
// window fits from index 1); predict() needs its lag before its first target and says so.
#include <fmt/format.h>

#include "chase/error.h"
#include "forecast/features.h"

namespace chase::forecast_detail {

namespace {

class LagForecaster : public Forecaster {
 public:
  std::size_t history_needed(std::size_t) const override { return 0; }

  void fit(const CarbonSeries& series, std::size_t begin, std::size_t end,
           std::size_t horizon) override {
    check_horizon(horizon, name());
    check_range(series, begin, end, name(), "fit");
    check_regular(series, begin, end, name());
    steps_per_day_ = steps_per_day(series, name());
    fitted_ = true;
    horizon_ = horizon;
  }

  std::vector<double> predict(const CarbonSeries& series, std::size_t first, std::size_t last,
                              std::size_t horizon) const override {
    check_fitted(fitted_, horizon_, horizon, name());
    check_range(series, first, last, name(), "predict");
    if (steps_per_day(series, name()) != steps_per_day_) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("Forecaster '{}': predict() got a series with another resolution "
                              "than the one it was fitted on; fit it on this series.",
                              name()));
    }
    const std::size_t back = lag(horizon);
    check_lag_available(first, back, name(), "predict");
    check_regular(series, first - back, last, name());
    std::vector<double> out(last - first);
    for (std::size_t t = first; t < last; ++t) out[t - first] = series.values()[t - back];
    return out;
  }

 protected:
  virtual std::size_t lag(std::size_t horizon) const = 0;
  std::size_t steps_per_day_ = 0;

 private:
  bool fitted_ = false;
  std::size_t horizon_ = 0;
};

class Persistence final : public LagForecaster {
 public:
  std::string_view name() const noexcept override { return "persistence"; }

 protected:
  std::size_t lag(std::size_t horizon) const override { return horizon; }
};

class Seasonal final : public LagForecaster {
 public:
  std::string_view name() const noexcept override { return "seasonal"; }

 protected:
  // Whole days back, at least one, and at least the horizon (steps_per_day_ is set by fit).
  std::size_t lag(std::size_t horizon) const override {
    const std::size_t days = (horizon + steps_per_day_ - 1) / steps_per_day_;
    return (days == 0 ? 1 : days) * steps_per_day_;
  }
};

}  // namespace

std::unique_ptr<Forecaster> make_persistence(const ForecasterOptions&) {
  return std::make_unique<Persistence>();
}

std::unique_ptr<Forecaster> make_seasonal(const ForecasterOptions&) {
  return std::make_unique<Seasonal>();
}

}  // namespace chase::forecast_detail
