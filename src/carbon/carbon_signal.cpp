#include "chase/carbon_signal.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "chase/error.h"
#include "monitor/periodic_thread.h"

namespace chase {

namespace {

std::string describe_age(std::chrono::seconds age) {
  if (age < std::chrono::minutes(2)) return fmt::format("{} s", age.count());
  if (age < std::chrono::hours(2)) {
    return fmt::format("{} min", std::chrono::duration_cast<std::chrono::minutes>(age).count());
  }
  return fmt::format("{:.1f} h", static_cast<double>(age.count()) / 3600.0);
}

// `grid` extended by `steps` future points. Their values are placeholders, never read: the
// Forecaster contract reads values at indices ≤ target − horizon only. With `ahead`, the grid's
// exogenous columns are kept and extended by the published values; without, they are dropped.
CarbonSeries extend(const CarbonSeries& grid, std::size_t steps, const ExogenousAhead* ahead) {
  std::vector<UtcTime> times = grid.times();
  std::vector<double> values = grid.values();
  for (std::size_t i = 0; i < steps; ++i) {
    times.push_back(times.back() + grid.resolution());
    values.push_back(values.back());
  }
  std::vector<ExogenousColumn> exogenous;
  if (ahead != nullptr) {
    exogenous = grid.exogenous();
    for (std::size_t c = 0; c < exogenous.size(); ++c) {
      const auto& published = ahead->columns[c].values;
      exogenous[c].values.insert(exogenous[c].values.end(), published.begin(),
                                 published.begin() + static_cast<std::ptrdiff_t>(steps));
    }
  }
  return CarbonSeries(std::move(times), std::move(values), grid.resolution(), grid.source(),
                      std::move(exogenous));
}

// How many of the points after `grid` the provider's published inputs cover: the run of `ahead`
// that continues the grid point by point, with the grid's columns, finite. 0 when the grid has no
// exogenous columns or the inputs do not fit it (then the whole horizon is forecast without them).
std::size_t published_steps(const CarbonSeries& grid, const ExogenousAhead& ahead,
                            std::size_t steps) {
  const auto& columns = grid.exogenous();
  if (columns.empty() || ahead.empty() || ahead.columns.size() != columns.size()) return 0;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    if (ahead.columns[c].name != columns[c].name ||
        ahead.columns[c].values.size() != ahead.times.size()) {
      return 0;
    }
  }
  std::size_t covered = 0;
  while (covered < std::min(steps, ahead.times.size()) &&
         ahead.times[covered] ==
             grid.end() + grid.resolution() * static_cast<std::int64_t>(covered)) {
    bool finite = true;
    for (const auto& column : ahead.columns)
      finite = finite && std::isfinite(column.values[covered]);
    if (!finite) break;
    ++covered;
  }
  return covered;
}

// A `model` fitted for `horizon`: its forecast of the `count` ≤ horizon points after `known` (each
// finite, or kInternal).
std::vector<double> predict_after(const Forecaster& model, const CarbonSeries& series,
                                  std::size_t known, std::size_t count, std::size_t horizon) {
  std::vector<double> predicted = model.predict(series, known, known + count, horizon);
  if (predicted.size() != count) {
    throw Error(ErrorCode::kInternal,
                fmt::format("The forecaster '{}' returned {} predictions for {} targets.",
                            model.name(), predicted.size(), count));
  }
  for (double& value : predicted) {
    if (!std::isfinite(value)) {
      throw Error(ErrorCode::kInternal,
                  fmt::format("The forecaster '{}' predicted a non-finite value.", model.name()));
    }
    value = std::max(0.0, value);
  }
  return predicted;
}

// `model` fitted on [begin, known) of `series` for `horizon`, and its forecast of the `horizon`
// points after `known`.
std::vector<double> fit_and_predict(Forecaster& model, const CarbonSeries& series,
                                    std::size_t begin, std::size_t known, std::size_t horizon) {
  model.fit(series, begin, known, horizon);
  return predict_after(model, series, known, horizon, horizon);
}

std::vector<std::string> column_names(const CarbonSeries& series) {
  std::vector<std::string> names;
  for (const auto& column : series.exogenous()) names.push_back(column.name);
  return names;
}

}  // namespace

// Whether a forecast from `grid` and `ahead` would be the memo's: the same points, values and
// inputs (a deterministic forecaster then predicts the same values).
bool CarbonSignal::same_inputs(const Memo& memo, const CarbonSeries& grid,
                               const ExogenousAhead& ahead, std::size_t steps) {
  return memo.steps == steps && memo.grid.resolution() == grid.resolution() &&
         memo.grid.times() == grid.times() && memo.grid.values() == grid.values() &&
         memo.grid.exogenous() == grid.exogenous() && memo.ahead.times == ahead.times &&
         memo.ahead.columns == ahead.columns;
}

CarbonSignal::CarbonSignal(std::shared_ptr<CarbonProvider> provider, CarbonSignalOptions options)
    : provider_(std::move(provider)),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : system_clock()) {
  if (!provider_) {
    throw Error(ErrorCode::kInvalidArgument, "CarbonSignal needs a carbon-intensity provider.");
  }
  if (options_.horizon <= std::chrono::seconds(0) ||
      options_.refresh_interval <= std::chrono::seconds(0) ||
      options_.history_window <= std::chrono::seconds(0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "CarbonSignal: the horizon, refresh interval and history window must be positive.");
  }
}

CarbonSignal::~CarbonSignal() { stop(); }

CarbonSignal::Data CarbonSignal::forecast_with_model(UtcTime now) {
  CarbonSeries history = provider_->history(now - options_.history_window, now);
  if (history.empty()) {
    throw Error(
        ErrorCode::kUnavailable,
        fmt::format(
            "{} returned no history for the last {} h to forecast from.", provider_->name(),
            std::chrono::duration_cast<std::chrono::hours>(options_.history_window).count()));
  }
  // A Forecaster needs a regular series: holes (a provider's dropped nulls) take the last value. A
  // regular history (a replay, most services) is moved, not copied.
  const CarbonSeries grid =
      history.regular() ? std::move(history) : fill_gaps(history, GapFill::kPrevious);
  const auto resolution = grid.resolution();
  const auto steps = static_cast<std::size_t>((options_.horizon.count() + resolution.count() - 1) /
                                              resolution.count());
  Forecaster& model = *options_.forecaster;
  const std::size_t known = grid.size();
  const std::size_t begin = model.history_needed(steps);
  if (begin >= known) {
    throw Error(ErrorCode::kUnavailable,
                fmt::format("The forecaster '{}' needs more than the {} points of history {} gave "
                            "for a {}-step horizon. Lengthen the history window.",
                            model.name(), known, provider_->name(), steps));
  }
  // The points whose exogenous inputs (day-ahead weather and generation forecasts) are already
  // published are forecast with them, by a direct model at that shorter horizon whose features
  // may read the inputs at each target (the Forecaster contract); the points past them from the
  // history alone, at the full horizon.
  ExogenousAhead ahead;
  if (!grid.exogenous().empty()) ahead = provider_->inputs_ahead(options_.horizon);
  if (!memo_ || !same_inputs(*memo_, grid, ahead, steps)) {
    const std::size_t near = published_steps(grid, ahead, steps);
    std::vector<double> predicted(steps);
    if (near < steps) {
      predicted = fit_and_predict(model, extend(grid, steps, nullptr), begin, known, steps);
    }
    if (near > 0) {
      const std::vector<double> near_term = forecast_with_inputs(grid, ahead, begin, near);
      std::copy(near_term.begin(), near_term.end(), predicted.begin());
    }
    memo_ = Memo{grid, std::move(ahead), steps, std::move(predicted), near};
  }
  const std::vector<double>& predicted = memo_->predicted;
  Data data;
  data.inputs_ahead = resolution * static_cast<std::int64_t>(memo_->near);
  std::vector<UtcTime> times = grid.times();
  std::vector<double> values = grid.values();
  for (std::size_t i = 0; i < steps; ++i) {
    times.push_back(times.back() + resolution);
    values.push_back(predicted[i]);
  }
  data.series = CarbonSeries(std::move(times), std::move(values), resolution,
                             fmt::format("{} ({})", grid.source(), model.name()));
  return data;
}

// The `near` points after `grid` forecast with the published inputs: by `forecaster` refitted
// every time, or by `inputs_forecaster`, refitted only when its fit is `inputs_refit_interval` of
// data old, was made for a shorter horizon (a daily publication reaches less far as the day goes
// on, then jumps), another resolution or another set of columns. A fit for a longer horizon serves
// the nearer points: its features read older values than they could, never newer ones.
std::vector<double> CarbonSignal::forecast_with_inputs(const CarbonSeries& grid,
                                                       const ExogenousAhead& ahead,
                                                       std::size_t begin, std::size_t near) {
  const CarbonSeries series = extend(grid, near, &ahead);
  const std::size_t known = grid.size();
  if (!options_.inputs_forecaster) {
    return fit_and_predict(*options_.forecaster, series, begin, known, near);
  }
  Forecaster& model = *options_.inputs_forecaster;
  const bool due =
      !inputs_fit_ || inputs_fit_->horizon < near || inputs_fit_->resolution != grid.resolution() ||
      inputs_fit_->columns != column_names(grid) || grid.end() < inputs_fit_->grid_end ||
      grid.end() - inputs_fit_->grid_end >= options_.inputs_refit_interval;
  if (due) {
    inputs_fit_.reset();  // until the fit below succeeds
    model.fit(series, begin, known, near);
    inputs_fit_ = InputsFit{grid.end(), grid.resolution(), near, column_names(grid)};
  }
  return predict_after(model, series, known, near, inputs_fit_->horizon);
}

CarbonSignal::Data CarbonSignal::fetch() {
  const UtcTime now = clock_->utc_now();
  Data data;
  if (options_.forecaster) {
    data = forecast_with_model(now);
  } else {
    data.series = provider_->forecast(options_.horizon);
  }
  try {
    data.latest = provider_->latest();
  } catch (const Error& e) {
    // The forecast alone is enough when it covers now.
    bool covered = false;
    try {
      static_cast<void>(data.series.value_at(now));
      covered = true;
    } catch (const Error&) {
    }
    if (!covered) throw;
  }
  if (data.series.empty() && !data.latest) {
    throw Error(ErrorCode::kUnavailable,
                fmt::format("{} returned an empty forecast.", provider_->name()));
  }
  return data;
}

bool CarbonSignal::refresh() {
  std::lock_guard refresh_lock(refresh_mutex_);
  {
    std::unique_lock lock(mutex_);
    last_attempt_ = clock_->monotonic();
  }
  std::string failure;
  try {
    Data data = fetch();
    std::unique_lock lock(mutex_);
    if (stale_) spdlog::info("{}: carbon-intensity data is fresh again", provider_->name());
    data_ = std::move(data);
    refreshed_at_ = clock_->utc_now();
    stale_ = false;
    warned_ = false;
    stale_reason_.clear();
    return true;
  } catch (const Error& e) {
    failure = e.what();
  } catch (const std::exception& e) {
    // (A forecaster may throw something else; the signal stays up all the same.)
    failure = e.what();
  }
  std::unique_lock lock(mutex_);
  stale_ = true;
  stale_reason_ = failure;
  if (!warned_) {
    warned_ = true;
    if (data_ && refreshed_at_) {
      const auto age =
          std::chrono::duration_cast<std::chrono::seconds>(clock_->utc_now() - *refreshed_at_);
      spdlog::warn(
          "carbon signal: refreshing from {} failed; keeping the forecast from {} ago (stale): {}",
          provider_->name(), describe_age(age), failure);
    } else {
      spdlog::warn("carbon signal: refreshing from {} failed and there is no forecast yet: {}",
                   provider_->name(), failure);
    }
  }
  return false;
}

bool CarbonSignal::refresh_if_due() {
  {
    std::shared_lock lock(mutex_);
    if (last_attempt_ && clock_->monotonic() - *last_attempt_ < options_.refresh_interval) {
      return false;
    }
  }
  refresh();
  return true;
}

void CarbonSignal::start(std::chrono::milliseconds poll) {
  stop();
  thread_ = std::make_unique<detail::PeriodicThread>(
      std::max(poll, std::chrono::milliseconds(1)), [this] { refresh_if_due(); }, true);
}

void CarbonSignal::stop() { thread_.reset(); }

void CarbonSignal::throw_no_data() const {
  throw Error(ErrorCode::kUnavailable,
              fmt::format("No carbon-intensity data yet: {} has not answered{}. Check the "
                          "provider settings and call refresh() again.",
                          provider_->name(),
                          stale_reason_.empty() ? std::string(" (refresh() not called yet)")
                                                : fmt::format(" ({})", stale_reason_)));
}

double CarbonSignal::intensity_now() const {
  std::shared_lock lock(mutex_);
  if (!data_) throw_no_data();
  const UtcTime now = clock_->utc_now();
  const auto& series = data_->series;
  if (!series.empty() && now >= series.start() && now < series.end()) {
    try {
      return series.value_at(now);
    } catch (const Error&) {
      // a gap: fall back to the latest value
    }
  }
  if (data_->latest) return data_->latest->g_per_kwh;
  throw Error(
      ErrorCode::kUnavailable,
      fmt::format("No carbon intensity for now ({}): the forecast from {} covers [{}, {})"
                  "{}. Refresh the signal.",
                  format_utc_time(now), provider_->name(),
                  series.empty() ? "-" : format_utc_time(series.start()),
                  series.empty() ? "-" : format_utc_time(series.end()),
                  stale_ ? fmt::format(" and the provider is failing ({})", stale_reason_) : ""));
}

std::vector<CarbonPeriod> CarbonSignal::forecast(std::size_t periods,
                                                 std::chrono::seconds period) const {
  if (period <= std::chrono::seconds(0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "CarbonSignal::forecast: the period must be positive.");
  }
  std::shared_lock lock(mutex_);
  if (!data_) throw_no_data();
  const CarbonSeries& series = data_->series;
  std::vector<CarbonPeriod> result;
  if (series.empty()) return result;
  const UtcTime now = clock_->utc_now();
  const auto since_epoch = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
  const UtcTime first = UtcTime(std::chrono::floor<std::chrono::seconds>(
      std::chrono::seconds((since_epoch.count() / period.count()) * period.count())));
  const auto& times = series.times();
  const auto& values = series.values();
  for (std::size_t k = 0; k < periods; ++k) {
    const UtcTime begin = first + period * static_cast<std::int64_t>(k);
    const UtcTime end = begin + period;
    double weighted = 0;
    double covered = 0;
    // Points before the last one at or before `begin` end by then (the times ascend), so the
    // overlap starts there: a planner asking for a long horizon over a long series stays
    // O(periods · log n) instead of O(periods · n).
    const auto after_begin = std::upper_bound(times.begin(), times.end(), begin);
    const std::size_t start = after_begin == times.begin()
                                  ? 0
                                  : static_cast<std::size_t>(after_begin - times.begin()) - 1;
    for (std::size_t i = start; i < times.size() && times[i] < end; ++i) {
      UtcTime interval_end = times[i] + series.resolution();
      if (i + 1 < times.size()) interval_end = std::min(interval_end, times[i + 1]);
      const UtcTime from = std::max(begin, times[i]);
      const UtcTime to = std::min(end, interval_end);
      if (to <= from) continue;
      const double seconds = std::chrono::duration<double>(to - from).count();
      weighted += values[i] * seconds;
      covered += seconds;
    }
    if (covered <= 0) break;
    result.push_back(CarbonPeriod{begin, period, weighted / covered});
  }
  return result;
}

CarbonSeries CarbonSignal::forecast_series() const {
  std::shared_lock lock(mutex_);
  if (!data_) throw_no_data();
  return data_->series;
}

CarbonSignalStatus CarbonSignal::status() const {
  std::shared_lock lock(mutex_);
  CarbonSignalStatus status;
  status.has_data = data_.has_value();
  status.stale = stale_;
  status.stale_reason = stale_reason_;
  status.refreshed_at = refreshed_at_;
  if (refreshed_at_) {
    status.age =
        std::chrono::duration_cast<std::chrono::seconds>(clock_->utc_now() - *refreshed_at_);
  }
  status.provider = std::string(provider_->name());
  status.forecast_source =
      options_.forecaster ? std::string(options_.forecaster->name()) : std::string("provider");
  if (data_) status.inputs_ahead = data_->inputs_ahead;
  return status;
}

}  // namespace chase
