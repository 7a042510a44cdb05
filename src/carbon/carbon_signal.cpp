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

// The series on a regular grid of its resolution from its start to its end, gaps filled with the
// last value before them (a Forecaster needs a regular series).
CarbonSeries regular(const CarbonSeries& series) {
  const auto resolution = series.resolution();
  std::vector<UtcTime> times;
  std::vector<double> values;
  std::size_t index = 0;
  for (UtcTime t = series.start(); t < series.end(); t += resolution) {
    while (index + 1 < series.size() && series.times()[index + 1] <= t) ++index;
    times.push_back(t);
    values.push_back(series.values()[index]);
  }
  return CarbonSeries(std::move(times), std::move(values), resolution, series.source());
}

}  // namespace

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

CarbonSeries CarbonSignal::forecast_with_model(UtcTime now) const {
  const CarbonSeries history = provider_->history(now - options_.history_window, now);
  if (history.empty()) {
    throw Error(
        ErrorCode::kUnavailable,
        fmt::format(
            "{} returned no history for the last {} h to forecast from.", provider_->name(),
            std::chrono::duration_cast<std::chrono::hours>(options_.history_window).count()));
  }
  const CarbonSeries grid = regular(history);
  const auto resolution = grid.resolution();
  const auto steps = static_cast<std::size_t>((options_.horizon.count() + resolution.count() - 1) /
                                              resolution.count());
  Forecaster& model = *options_.forecaster;
  const std::size_t known = grid.size();
  if (model.history_needed(steps) >= known) {
    throw Error(ErrorCode::kUnavailable,
                fmt::format("The forecaster '{}' needs more than the {} points of history {} gave "
                            "for a {}-step horizon. Lengthen the history window.",
                            model.name(), known, provider_->name(), steps));
  }
  // The grid extended by `steps` future points; their placeholder values are never read (the
  // Forecaster contract reads values at indices ≤ target − horizon only).
  std::vector<UtcTime> times = grid.times();
  std::vector<double> values = grid.values();
  for (std::size_t i = 0; i < steps; ++i) {
    times.push_back(times.back() + resolution);
    values.push_back(values.back());
  }
  const CarbonSeries extended(times, values, resolution, grid.source());
  model.fit(extended, model.history_needed(steps), known, steps);
  const std::vector<double> predicted = model.predict(extended, known, known + steps, steps);
  if (predicted.size() != steps) {
    throw Error(ErrorCode::kInternal,
                fmt::format("The forecaster '{}' returned {} predictions for {} targets.",
                            model.name(), predicted.size(), steps));
  }
  for (std::size_t i = 0; i < steps; ++i) {
    if (!std::isfinite(predicted[i])) {
      throw Error(ErrorCode::kInternal,
                  fmt::format("The forecaster '{}' predicted a non-finite value.", model.name()));
    }
    values[known + i] = std::max(0.0, predicted[i]);
  }
  return CarbonSeries(std::move(times), std::move(values), resolution,
                      fmt::format("{} ({})", grid.source(), model.name()));
}

CarbonSignal::Data CarbonSignal::fetch() const {
  const UtcTime now = clock_->utc_now();
  Data data;
  data.series =
      options_.forecaster ? forecast_with_model(now) : provider_->forecast(options_.horizon);
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
  return status;
}

}  // namespace chase
