// The file provider: replays a CSV (load_carbon_csv) as if it were a service; 'now' comes from the
// injected clock, so history and forecast are cut from the file around it (the forecast is the
// file's own future: a perfect forecast, for replays and simulations).
#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include "carbon/providers/provider_base.h"

namespace chase::detail {

namespace {

class FileProvider final : public CarbonProvider {
 public:
  explicit FileProvider(CarbonProviderOptions options)
      : options_(std::move(options)), clock_(options_.clock ? options_.clock : system_clock()) {
    if (options_.file.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "file: no CSV file to replay. Set CHASE_CARBON_FILE or \"file\" in the "
                  "provider config file.");
    }
    series_ = load_carbon_csv(options_.file, options_.file_columns);
    if (series_.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("file: '{}' has no carbon-intensity rows to replay.",
                              options_.file.string()));
    }
  }

  std::string_view name() const noexcept override { return "file"; }

  CarbonPoint latest() override {
    set_notes({});
    const UtcTime now = clock_->utc_now();
    const auto& times = series_.times();
    // The last point that started at or before now.
    const auto it = std::upper_bound(times.begin(), times.end(), now);
    if (it == times.begin() || now >= series_.end()) {
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("file: '{}' covers [{}, {}), not now ({}). Replay it with a clock "
                              "inside that range or use a file that covers now.",
                              options_.file.string(), format_utc_time(series_.start()),
                              format_utc_time(series_.end()), format_utc_time(now)));
    }
    const auto index = static_cast<std::size_t>(it - times.begin() - 1);
    return CarbonPoint{times[index], series_.values()[index], series_.resolution(), false};
  }

  CarbonSeries history(UtcTime start, UtcTime end) override {
    set_notes({});
    // Only the past: the file's future is not history yet.
    return slice(start, std::min(end, clock_->utc_now()));
  }

  CarbonSeries forecast(std::chrono::seconds horizon) override {
    set_notes({});
    const UtcTime now = clock_->utc_now();
    return slice(now - series_.resolution() + std::chrono::seconds(1), now + horizon);
  }

 private:
  // The points starting in [from, to).
  CarbonSeries slice(UtcTime from, UtcTime to) const {
    const auto& times = series_.times();
    const auto first = std::lower_bound(times.begin(), times.end(), from);
    const auto last = std::lower_bound(first, times.end(), std::max(from, to));
    const auto begin_index = first - times.begin();
    const auto end_index = last - times.begin();
    return CarbonSeries(std::vector<UtcTime>(first, last),
                        std::vector<double>(series_.values().begin() + begin_index,
                                            series_.values().begin() + end_index),
                        series_.resolution(), "file:" + options_.file.string());
  }

  CarbonProviderOptions options_;
  std::shared_ptr<Clock> clock_;
  CarbonSeries series_;
};

}  // namespace

std::unique_ptr<CarbonProvider> make_file_provider(CarbonProviderOptions options) {
  return std::make_unique<FileProvider>(std::move(options));
}

}  // namespace chase::detail
