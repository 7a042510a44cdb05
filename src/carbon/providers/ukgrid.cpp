// UK National Grid Carbon Intensity API: no auth; half-hour periods; national and regional
// (region id 1-18 or outward postcode); `actual` when present, else `forecast` (then estimated);
// forecasts reach 48 h at most.
#include <fmt/format.h>

#include <algorithm>

#include "carbon/providers/provider_base.h"

namespace chase::detail {

namespace {

constexpr std::chrono::seconds kHalfHour{1800};
constexpr std::chrono::seconds kRangeChunk{14 * 24 * 3600};  // the API allows up to 30 days
// Region ids: 1-14 the distribution network areas, 15 England, 16 Scotland, 17 Wales, 18 GB.
constexpr int kLastRegionId = 18;
// fw48h is the longest forecast the API has.
constexpr std::chrono::seconds kLongestForecast{48 * 3600};
constexpr std::string_view kCredentials = "the base URL (the API needs no key)";

class UkGridProvider final : public HttpProvider {
 public:
  explicit UkGridProvider(CarbonProviderOptions options)
      : HttpProvider("ukgrid", "https://api.carbonintensity.org.uk", kCredentials,
                     std::move(options)) {
    const std::string& location = options_.location;
    if (location.empty() || location == "national") {
      region_suffix_.clear();
    } else if (location.starts_with("regionid:")) {
      const std::string id = location.substr(9);
      int number = 0;
      try {
        number = std::stoi(id);
      } catch (const std::exception&) {
        number = 0;
      }
      if (number < 1 || number > kLastRegionId || std::to_string(number) != id) {
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("ukgrid: region '{}' is not a region id from 1 to {} (e.g. "
                                "\"regionid:13\" for London, \"regionid:18\" for GB).",
                                location, kLastRegionId));
      }
      region_suffix_ = "/regionid/" + id;
    } else if (location.starts_with("postcode:") && location.size() > 9) {
      region_suffix_ = "/postcode/" + url_encode(location.substr(9));
    } else {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("ukgrid: location '{}' is not \"national\", \"regionid:N\" (1-{}) "
                              "or \"postcode:OUTWARD\" (e.g. \"postcode:RG10\").",
                              location, kLastRegionId));
    }
  }

  CarbonPoint latest() override {
    const std::string path = regional() ? "/regional" + region_suffix_ : std::string("/intensity");
    const HttpRequest request = request_to(path);
    const auto point = serve([&](CarbonFetchNotes& notes) {
      std::optional<CarbonPoint> first;  // the first period with a value
      fetch_parsed(request, request.url, kLatestTtl, notes, [&](const nlohmann::json& json) {
        for_each_period(json, request.url, [&](const nlohmann::json& item) {
          const auto [value, estimated] = period_value(item, request.url);
          if (first || !value) return;
          const UtcTime time = parse_time(item.at("from"), request.url);
          SeriesBuilder check(name_, request.url);
          check.add(time, value);  // the range and unit checks
          first = CarbonPoint{time, *value, kHalfHour, estimated};
        });
      });
      return first;
    });
    if (!point) {
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("ukgrid: GET {} has no value for the current half hour. Try again "
                              "later.",
                              request.url));
    }
    return *point;
  }

  CarbonSeries history(UtcTime start, UtcTime end) override {
    return serve([&](CarbonFetchNotes& notes) {
      SeriesBuilder builder(name_, "/intensity/{from}/{to}");
      for (UtcTime from = start; from < end; from += kRangeChunk) {
        const UtcTime to = std::min(end, from + kRangeChunk);
        const HttpRequest request = intensity_request(from, iso_minutes(to));
        fetch_parsed(request, request.url, history_ttl(to), notes, [&](const nlohmann::json& json) {
          add_periods(json, request.url, builder, start, end);
        });
      }
      return builder.build(kHalfHour, source(), notes);
    });
  }

  CarbonSeries forecast(std::chrono::seconds asked) override {
    return serve([&](CarbonFetchNotes& notes) {
      const auto horizon = clamp_horizon(asked, kLongestForecast, notes);
      const UtcTime now = clock_->utc_now();
      const UtcTime from = std::chrono::floor<std::chrono::minutes>(now);
      const char* window = horizon <= std::chrono::hours(24) ? "fw24h" : "fw48h";
      const HttpRequest request = intensity_request(from, window);
      SeriesBuilder builder(name_, request.url);
      // The cache key leaves out the start minute so that a restart within the TTL finds it.
      const std::string key = fmt::format("ukgrid forecast {} {}", options_.location, window);
      fetch_parsed(request, key, kForecastTtl, notes, [&](const nlohmann::json& json) {
        add_periods(json, request.url, builder, now - kHalfHour + std::chrono::seconds(1),
                    now + horizon);
      });
      auto series = builder.build(kHalfHour, source(), notes);
      note_short_forecast(series, now + horizon, notes);
      return series;
    });
  }

 private:
  bool regional() const { return !region_suffix_.empty(); }

  // The periods from `from` to `to` (a time, or a forecast window such as "fw24h"), of the
  // region when there is one.
  HttpRequest intensity_request(UtcTime from, std::string_view to) const {
    return request_to(fmt::format("{}/intensity/{}/{}{}", regional() ? "/regional" : "",
                                  iso_minutes(from), to, region_suffix_));
  }

  // Calls `visit` for every half-hour item, flat or nested under regions.
  template <typename Visit>
  void for_each_period(const nlohmann::json& json, const std::string& url, Visit&& visit) const {
    check_unit(json, url);
    const auto& data = json.at("data");
    const auto visit_list = [&](const nlohmann::json& list) {
      if (!list.is_array()) throw Error(ErrorCode::kParse, shape_message(url, "expected a list"));
      for (const auto& item : list) {
        if (item.contains("data")) {
          // A region: {"regionid", "shortname", "data": [periods]}.
          const auto& periods = item.at("data");
          if (!periods.is_array()) {
            throw Error(ErrorCode::kParse, shape_message(url, "expected a list of periods"));
          }
          for (const auto& period : periods) visit(period);
        } else {
          visit(item);
        }
      }
    };
    if (data.is_object()) {
      visit_list(nlohmann::json::array({data}));
    } else {
      visit_list(data);
    }
  }

  // The value of one period: actual when present, else the forecast (then estimated).
  std::pair<std::optional<double>, bool> period_value(const nlohmann::json& item,
                                                      const std::string& url) const {
    const auto& intensity = item.at("intensity");
    check_unit(intensity, url);
    if (const auto it = intensity.find("actual"); it != intensity.end()) {
      if (auto actual = parse_value(*it, url)) return {actual, false};
    }
    return {parse_value(intensity.at("forecast"), url), true};
  }

  void add_periods(const nlohmann::json& json, const std::string& url, SeriesBuilder& builder,
                   UtcTime from, UtcTime to) const {
    for_each_period(json, url, [&](const nlohmann::json& item) {
      const UtcTime time = parse_time(item.at("from"), url);
      if (time < from || time >= to) return;
      const auto [value, estimated] = period_value(item, url);
      builder.add(time, value, estimated);
    });
  }

  std::string region_suffix_;
};

}  // namespace

std::unique_ptr<CarbonProvider> make_ukgrid_provider(CarbonProviderOptions options) {
  return std::make_unique<UkGridProvider>(std::move(options));
}

}  // namespace chase::detail
