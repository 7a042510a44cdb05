// Carbon Aware SDK WebAPI (self-hosted, no auth): /emissions/bylocation and
// /emissions/forecasts/current. 204 = no data, 400 = bad request, 501 = no forecast for the source.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "carbon/providers/provider_base.h"

namespace chase::detail {

namespace {

constexpr std::string_view kCredentials = "the base URL and the SDK's own data-source settings";

class CarbonAwareSdkProvider final : public HttpProvider {
 public:
  explicit CarbonAwareSdkProvider(CarbonProviderOptions options)
      : HttpProvider("carbon-aware-sdk", "", std::move(options)) {
    if (base_url_.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "carbon-aware-sdk: no base URL (the WebAPI is self-hosted). Set "
                  "CARBON_AWARE_SDK_URL or \"base_url\" (e.g. \"http://localhost:8080\").");
    }
    if (options_.location.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "carbon-aware-sdk: no location. Set CARBON_AWARE_SDK_LOCATION or \"location\" "
                  "(e.g. \"westeurope\").");
    }
  }

  CarbonPoint latest() override {
    std::lock_guard lock(mutex_);
    auto notes = fresh_notes();
    const UtcTime now = clock_->utc_now();
    const HttpRequest request{make_url(base_url_, "/emissions/bylocation",
                                       {{"location", options_.location},
                                        {"time", iso_seconds(now - std::chrono::hours(1))},
                                        {"toTime", iso_seconds(now)}}),
                              {},
                              std::nullopt};
    const auto series = bylocation(request, "carbon-aware-sdk latest " + options_.location,
                                   kLatestTtl, notes, UtcTime::min(), UtcTime::max());
    set_notes(notes);
    if (series.empty()) {
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("carbon-aware-sdk: GET {} has no emissions data for '{}' in the "
                              "last hour (HTTP 204 or an empty list). Check the location and the "
                              "SDK's data source.",
                              request.url, options_.location));
    }
    return CarbonPoint{series.times().back(), series.values().back(), series.resolution(), false};
  }

  CarbonSeries history(UtcTime start, UtcTime end) override {
    std::lock_guard lock(mutex_);
    auto notes = fresh_notes();
    const HttpRequest request{make_url(base_url_, "/emissions/bylocation",
                                       {{"location", options_.location},
                                        {"time", iso_seconds(start)},
                                        {"toTime", iso_seconds(end)}}),
                              {},
                              std::nullopt};
    auto series = bylocation(request, request.url, history_ttl(end), notes, start, end);
    set_notes(notes);
    return series;
  }

  CarbonSeries forecast(std::chrono::seconds horizon) override {
    std::lock_guard lock(mutex_);
    auto notes = fresh_notes();
    const UtcTime now = clock_->utc_now();
    const HttpRequest request{make_url(base_url_, "/emissions/forecasts/current",
                                       {{"location", options_.location},
                                        {"dataStartAt", iso_seconds(now)},
                                        {"dataEndAt", iso_seconds(now + horizon)}}),
                              {},
                              std::nullopt};
    const std::string key =
        fmt::format("carbon-aware-sdk forecast {} {}", options_.location, horizon.count());
    const Fetched fetched = fetch(request, key, kForecastTtl);
    if (fetched.status == 204) {
      set_notes(notes);
      return CarbonSeries({}, {}, std::chrono::seconds(300), source());
    }
    if (fetched.status < 200 || fetched.status >= 300) {
      fail_status(fetched, request.url, kCredentials);
    }
    const auto json = parse_json(fetched, request.url);
    auto series = parse_shape(request.url, [&] {
      if (!json.is_array())
        throw Error(ErrorCode::kParse, shape_message(request.url, "expected a list"));
      SeriesBuilder builder(name_, request.url);
      std::chrono::seconds resolution{300};
      bool first = true;
      for (const auto& forecast : json) {
        check_unit(forecast, request.url);
        const auto& data = forecast.at("forecastData");
        if (!data.is_array()) {
          throw Error(ErrorCode::kParse, shape_message(request.url, "forecastData is not a list"));
        }
        for (const auto& item : data) {
          check_unit(item, request.url);
          const UtcTime time = parse_time(item.at("timestamp"), request.url);
          const auto duration = parse_duration(item.at("duration"), request.url);
          if (first) resolution = duration;
          first = false;
          if (time + duration <= now || time >= now + horizon) continue;
          builder.add(time, parse_value(item.at("value"), request.url));
        }
      }
      return builder.build(resolution, source(), notes);
    });
    remember(key, fetched, kForecastTtl);
    notes.from_cache = notes.from_cache && fetched.from_cache;
    set_notes(notes);
    return series;
  }

 private:
  CarbonSeries bylocation(const HttpRequest& request, const std::string& key,
                          std::chrono::seconds ttl, CarbonFetchNotes& notes, UtcTime from,
                          UtcTime to) {
    const Fetched fetched = fetch(request, key, ttl);
    if (fetched.status == 204) return CarbonSeries({}, {}, std::chrono::seconds(300), source());
    if (fetched.status < 200 || fetched.status >= 300) {
      fail_status(fetched, request.url, kCredentials);
    }
    const auto json = parse_json(fetched, request.url);
    auto series = parse_shape(request.url, [&] {
      if (!json.is_array())
        throw Error(ErrorCode::kParse, shape_message(request.url, "expected a list"));
      SeriesBuilder builder(name_, request.url);
      std::chrono::seconds resolution{300};
      bool first = true;
      for (const auto& item : json) {
        check_unit(item, request.url);
        const UtcTime time = parse_time(item.at("time"), request.url);
        const auto duration = parse_duration(item.at("duration"), request.url);
        if (first) resolution = duration;
        first = false;
        if (time < from || time >= to) continue;
        builder.add(time, parse_value(item.at("rating"), request.url));
      }
      return builder.build(resolution, source(), notes);
    });
    remember(key, fetched, ttl);
    notes.from_cache = notes.from_cache && fetched.from_cache;
    return series;
  }

  // "hh:mm:ss" (optionally "d.hh:mm:ss"), or a number of minutes.
  std::chrono::seconds parse_duration(const nlohmann::json& value, const std::string& url) const {
    std::chrono::seconds duration{0};
    if (value.is_number_integer()) {
      duration = std::chrono::minutes(value.get<std::int64_t>());
    } else if (value.is_string()) {
      const std::string text = value.get<std::string>();
      int days = 0;
      int hours = 0;
      int minutes = 0;
      int seconds = 0;
      char tail = 0;
      const bool with_days =
          std::sscanf(text.c_str(), "%d.%d:%d:%d%c", &days, &hours, &minutes, &seconds, &tail) == 4;
      if (!with_days) {
        days = 0;
        if (std::sscanf(text.c_str(), "%d:%d:%d%c", &hours, &minutes, &seconds, &tail) != 3) {
          throw Error(ErrorCode::kParse,
                      shape_message(url, fmt::format("duration '{}' is not hh:mm:ss", text)));
        }
      }
      duration = std::chrono::hours(24 * days + hours) + std::chrono::minutes(minutes) +
                 std::chrono::seconds(seconds);
    }
    if (duration <= std::chrono::seconds(0)) {
      throw Error(ErrorCode::kParse,
                  shape_message(url, fmt::format("duration {} is not positive", value.dump())));
    }
    return duration;
  }
};

}  // namespace

std::unique_ptr<CarbonProvider> make_carbon_aware_sdk_provider(CarbonProviderOptions options) {
  return std::make_unique<CarbonAwareSdkProvider>(std::move(options));
}

}  // namespace chase::detail
