// chase/carbon_signal.h — the carbon signal the optimiser reads: intensity now and a forecast of
// the next periods, refreshed on a schedule, tolerant of provider outages.
//
// Contract: refresh() asks the provider for its latest value and its forecast for the next
// `horizon` (or, when a Forecaster is injected, for `history_window` of history, from which the
// forecaster predicts the next `horizon`; when that history carries exogenous columns and the
// provider has published them ahead of now (CarbonProvider::inputs_ahead, e.g. day-ahead weather
// and generation forecasts), the points they cover are forecast again by the same model fitted
// at that shorter horizon with those inputs — a model constructed with use_exogenous reads them,
// see chase/forecast.h; the points past them keep the history-only forecast). A successful refresh
// replaces what the signal holds. A failed one (any chase::Error from the provider or forecaster)
// keeps the last good data and marks the signal stale, with the reason and the age of the data it
// still serves; the first failure of an outage logs one warning, later ones stay quiet until a
// refresh succeeds again. refresh_if_due() refreshes when `refresh_interval` of the Clock's
// monotonic time has passed since the last attempt (the first call always refreshes); start() runs
// it on a background thread.
//
// intensity_now() is the value in force now: from the forecast series when it covers now, else
// the provider's latest value. forecast(n, period) averages the series over the n periods of length
// `period` that follow now, aligned to multiples of `period` since the epoch (the first one holds
// now); it stops early at the first period the series does not reach. With no data at all (no
// refresh ever succeeded) both throw kUnavailable saying so and why.
//
// Thread safety: every member may be called from any thread; reads take a shared lock and never
// wait for a provider (refresh() talks to the provider outside the lock).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "chase/carbon.h"
#include "chase/carbon_provider.h"
#include "chase/forecast.h"
#include "chase/time.h"

namespace chase {

namespace detail {
class PeriodicThread;
}

struct CarbonSignalOptions {
  std::chrono::seconds horizon{std::chrono::hours(24)};
  std::chrono::seconds refresh_interval{std::chrono::minutes(15)};
  // With a forecaster: the history it learns from, and the length of the regular grid.
  std::chrono::seconds history_window{std::chrono::hours(7 * 24)};
  std::shared_ptr<Clock> clock;  // null: the system clock
  // Optional: forecast from history with this model instead of the provider's forecast.
  std::shared_ptr<Forecaster> forecaster;
  // Optional, with `forecaster`: a second instance of the model (built with use_exogenous) for the
  // points the provider's published inputs cover. Kept apart from `forecaster`, it is refitted only
  // when `inputs_refit_interval` of new data has come in since its last fit, when the inputs reach
  // further than the horizon it was fitted for, or when the resolution or the columns change; in
  // between it predicts from the fresh data with its coefficients (a fit for a longer horizon
  // serves nearer points). Without it, `forecaster` is refitted for those points at every refresh
  // with new data.
  std::shared_ptr<Forecaster> inputs_forecaster;
  std::chrono::seconds inputs_refit_interval{std::chrono::hours(6)};
};

struct CarbonPeriod {
  UtcTime start{};
  std::chrono::seconds length{0};
  double g_per_kwh = 0;
};

struct CarbonSignalStatus {
  bool has_data = false;                // a refresh has succeeded at least once
  bool stale = false;                   // the last refresh failed; the data is the last good one
  std::string stale_reason;             // the provider's error, when stale or without data
  std::chrono::seconds age{0};          // time since the last successful refresh (Clock UTC time)
  std::optional<UtcTime> refreshed_at;  // UTC time of the last successful refresh
  std::string provider;
  std::string forecast_source;  // "provider" or the forecaster's name
  // How far ahead the forecast used the provider's published exogenous inputs (0: not at all).
  std::chrono::seconds inputs_ahead{0};
};

class CarbonSignal {
 public:
  CarbonSignal(std::shared_ptr<CarbonProvider> provider, CarbonSignalOptions options = {});
  ~CarbonSignal();
  CarbonSignal(const CarbonSignal&) = delete;
  CarbonSignal& operator=(const CarbonSignal&) = delete;

  // Returns true when fresh data was obtained, false when the signal kept its last good data.
  bool refresh();
  // Refreshes when due (see above); returns whether it attempted a refresh.
  bool refresh_if_due();
  // Runs refresh_if_due() every `poll` of real time on a background thread until stop().
  void start(std::chrono::milliseconds poll = std::chrono::seconds(1));
  void stop();

  double intensity_now() const;
  std::vector<CarbonPeriod> forecast(std::size_t periods,
                                     std::chrono::seconds period = std::chrono::minutes(30)) const;
  // The series the forecast is cut from (the provider's or the forecaster's).
  CarbonSeries forecast_series() const;
  CarbonSignalStatus status() const;

 private:
  struct Data {
    CarbonSeries series;
    std::optional<CarbonPoint> latest;
    std::chrono::seconds inputs_ahead{0};
  };
  // The last model forecast and what it was made from: a refresh whose history and published
  // inputs are unchanged (hourly data refreshed every 15 or 30 min) reuses it instead of refitting.
  struct Memo {
    CarbonSeries grid;
    ExogenousAhead ahead;
    std::size_t steps = 0;
    std::vector<double> predicted;
    std::size_t near = 0;
  };
  // When and for what the inputs model was last fitted.
  struct InputsFit {
    UtcTime grid_end{};
    std::chrono::seconds resolution{0};
    std::size_t horizon = 0;
    std::vector<std::string> columns;
  };
  static bool same_inputs(const Memo& memo, const CarbonSeries& grid, const ExogenousAhead& ahead,
                          std::size_t steps);
  std::vector<double> forecast_with_inputs(const CarbonSeries& grid, const ExogenousAhead& ahead,
                                           std::size_t begin, std::size_t near);
  Data fetch();
  Data forecast_with_model(UtcTime now);
  [[noreturn]] void throw_no_data() const;

  std::shared_ptr<CarbonProvider> provider_;
  CarbonSignalOptions options_;
  std::shared_ptr<Clock> clock_;
  std::mutex refresh_mutex_;             // one refresh at a time
  std::optional<Memo> memo_;             // guarded by refresh_mutex_
  std::optional<InputsFit> inputs_fit_;  // guarded by refresh_mutex_
  mutable std::shared_mutex mutex_;
  std::optional<Data> data_;
  std::optional<UtcTime> refreshed_at_;
  std::optional<std::chrono::nanoseconds> last_attempt_;
  bool stale_ = false;
  bool warned_ = false;
  std::string stale_reason_;
  std::unique_ptr<detail::PeriodicThread> thread_;
};

}  // namespace chase
