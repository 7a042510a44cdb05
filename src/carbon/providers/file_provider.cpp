// The replay provider: serves a carbon-intensity series as if it were a service; 'now' comes from
// the injected clock, so history and forecast are cut from the series around it (the forecast is
// the series' own future: a perfect forecast, for replays and simulations). History carries the
// series' exogenous columns; inputs_ahead serves them as far as they are published by now, never
// further (those values would not be published yet). The file provider is a replay of a CSV
// (load_carbon_csv).
#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include "carbon/providers/provider_base.h"

namespace chase::detail {

namespace {

class ReplayProvider final : public CarbonProvider {
 public:
  // `source` names the data in messages and in the series served (e.g. "file:<path>").
  ReplayProvider(CarbonSeries series, std::shared_ptr<Clock> clock, std::string name,
                 std::string source, ExogenousPublication publication)
      : series_(std::move(series)),
        clock_(clock ? std::move(clock) : system_clock()),
        name_(std::move(name)),
        source_(std::move(source)),
        publication_(publication) {
    if (series_.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{}: no carbon-intensity points to replay.", source_));
    }
    publication_.validate(source_);
  }

  std::string_view name() const noexcept override { return name_; }

  CarbonPoint latest() override {
    set_notes({});
    const UtcTime now = clock_->utc_now();
    const auto& times = series_.times();
    // The last point that started at or before now.
    const auto it = std::upper_bound(times.begin(), times.end(), now);
    if (it == times.begin() || now >= series_.end()) {
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("{} covers [{}, {}), not now ({}). Replay it with a clock inside "
                              "that range or use data that covers now.",
                              source_, format_utc_time(series_.start()),
                              format_utc_time(series_.end()), format_utc_time(now)));
    }
    const auto index = static_cast<std::size_t>(it - times.begin() - 1);
    return CarbonPoint{times[index], series_.values()[index], series_.resolution(),
                       series_.is_estimated(index)};
  }

  CarbonSeries history(UtcTime start, UtcTime end) override {
    set_notes({});
    // Only the past: the file's future is not history yet.
    return slice(start, std::min(end, clock_->utc_now()), Exogenous::kKeep);
  }

  CarbonSeries forecast(std::chrono::seconds horizon) override {
    set_notes({});
    const UtcTime now = clock_->utc_now();
    return slice(now - series_.resolution() + std::chrono::seconds(1), now + horizon,
                 Exogenous::kDrop);
  }

  ExogenousAhead inputs_ahead(std::chrono::seconds horizon) override {
    set_notes({});
    if (series_.exogenous().empty()) return {};
    const UtcTime now = clock_->utc_now();
    const auto& times = series_.times();
    const auto first = std::lower_bound(times.begin(), times.end(), now);
    const auto last = std::lower_bound(first, times.end(),
                                       std::min(now + horizon, publication_.published_until(now)));
    ExogenousAhead ahead;
    ahead.times.assign(first, last);
    for (const auto& column : series_.exogenous()) {
      ahead.columns.push_back(
          {column.name, std::vector<double>(column.values.begin() + (first - times.begin()),
                                            column.values.begin() + (last - times.begin()))});
    }
    return ahead;
  }

 private:
  enum class Exogenous { kKeep, kDrop };

  // The points starting in [from, to).
  CarbonSeries slice(UtcTime from, UtcTime to, Exogenous exogenous) const {
    const auto& times = series_.times();
    const auto first = std::lower_bound(times.begin(), times.end(), from);
    const auto last = std::lower_bound(first, times.end(), std::max(from, to));
    const auto begin_index = first - times.begin();
    const auto end_index = last - times.begin();
    std::vector<bool> estimated;
    if (!series_.estimated().empty()) {
      estimated.assign(series_.estimated().begin() + begin_index,
                       series_.estimated().begin() + end_index);
    }
    std::vector<ExogenousColumn> columns;
    if (exogenous == Exogenous::kKeep) {
      for (const auto& column : series_.exogenous()) {
        columns.push_back({column.name, std::vector<double>(column.values.begin() + begin_index,
                                                            column.values.begin() + end_index)});
      }
    }
    return CarbonSeries(std::vector<UtcTime>(first, last),
                        std::vector<double>(series_.values().begin() + begin_index,
                                            series_.values().begin() + end_index),
                        series_.resolution(), source_, std::move(columns), std::move(estimated));
  }

  CarbonSeries series_;
  std::shared_ptr<Clock> clock_;
  std::string name_;
  std::string source_;
  ExogenousPublication publication_;
};

}  // namespace

std::unique_ptr<CarbonProvider> make_file_provider(CarbonProviderOptions options) {
  if (options.file.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "file: no CSV file to replay. Set CHASE_CARBON_FILE or \"file\" in the provider "
                "config file.");
  }
  auto series = load_carbon_csv(options.file, options.file_columns);
  return std::make_unique<ReplayProvider>(std::move(series), options.clock, "file",
                                          "file:" + options.file.string(),
                                          options.exogenous_publication);
}

}  // namespace chase::detail

namespace chase {

std::unique_ptr<CarbonProvider> make_replay_provider(CarbonSeries series,
                                                     std::shared_ptr<Clock> clock, std::string name,
                                                     ExogenousPublication publication) {
  auto source = name;
  return std::make_unique<detail::ReplayProvider>(std::move(series), std::move(clock),
                                                  std::move(name), std::move(source), publication);
}

}  // namespace chase
