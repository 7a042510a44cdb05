// Carbon Aware SDK WebAPI (self-hosted, no auth): /emissions/bylocation and
// /emissions/forecasts/current. 204 = no data, 400 = bad request, 501 = no forecast for the source.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <utility>

#include "carbon/providers/provider_base.h"

namespace chase::detail {

namespace {

constexpr std::string_view kCredentials = "the base URL and the SDK's own data-source settings";
// The resolution of an answer without records.
constexpr std::chrono::seconds kNoRecordsResolution{300};

// The field names of an endpoint's emissions records: {time, "duration", value}.
struct RecordFields {
  const char* time;
  const char* value;
  bool estimated;  // the records are a forecast
};
constexpr RecordFields kByLocationFields{"time", "rating", false};
constexpr RecordFields kForecastFields{"timestamp", "value", true};
// The longest duration of a record, in minutes: 36,500 days, within the century a CarbonSeries'
// resolution may be and far from where minutes overflow a count of seconds.
constexpr std::int64_t kMaxDurationMinutes = std::int64_t{100} * 365 * 24 * 60;

// A series being built from emissions records; the first record's duration is its resolution.
struct EmissionsRecords {
  SeriesBuilder builder;
  std::optional<std::chrono::seconds> resolution;

  CarbonSeries build(std::string source, CarbonFetchNotes& notes) const {
    return builder.build(resolution.value_or(kNoRecordsResolution), std::move(source), notes);
  }
};

class CarbonAwareSdkProvider final : public HttpProvider {
 public:
  explicit CarbonAwareSdkProvider(CarbonProviderOptions options)
      : HttpProvider("carbon-aware-sdk", "", kCredentials, std::move(options)) {
    no_content_is_empty_list_ = true;  // the SDK's "no data" (an empty series, not an error)
    require_setting(!base_url_.empty(),
                    "carbon-aware-sdk: no base URL (the WebAPI is self-hosted). Set "
                    "CARBON_AWARE_SDK_URL or \"base_url\" (e.g. \"http://localhost:8080\").");
    require_setting(!options_.location.empty(),
                    "carbon-aware-sdk: no location. Set CARBON_AWARE_SDK_LOCATION or "
                    "\"location\" (e.g. \"westeurope\").");
  }

  CarbonPoint latest() override {
    const auto [series, url] = serve([&](CarbonFetchNotes& notes) {
      const UtcTime now = clock_->utc_now();
      const auto request = bylocation_request(now - std::chrono::hours(1), now);
      return std::pair{bylocation(request, "carbon-aware-sdk latest " + options_.location,
                                  kLatestTtl, notes, UtcTime::min(), UtcTime::max()),
                       request.url};
    });
    return last_point(series,
                      fmt::format("carbon-aware-sdk: GET {} has no emissions data for '{}' in the "
                                  "last hour (HTTP 204 or an empty list). Check the location and "
                                  "the SDK's data source.",
                                  url, options_.location));
  }

  CarbonSeries history(UtcTime start, UtcTime end) override {
    const auto request = bylocation_request(start, end);
    return serve([&](CarbonFetchNotes& notes) {
      return bylocation(request, request.url, history_ttl(end), notes, start, end);
    });
  }

  CarbonSeries forecast(std::chrono::seconds horizon) override {
    return serve([&](CarbonFetchNotes& notes) {
      const UtcTime now = clock_->utc_now();
      // No dataStartAt/dataEndAt: the SDK answers 400 when either lies outside its forecast
      // (a 24 h horizon often reaches past its end, and now may precede its first point), so ask
      // for the whole forecast and cut [now, now + horizon) here.
      const auto request =
          request_to("/emissions/forecasts/current", {{"location", options_.location}});
      const std::string key = fmt::format("carbon-aware-sdk forecast {}", options_.location);
      return fetch_parsed(request, key, kForecastTtl, notes, [&](const nlohmann::json& json) {
        if (!json.is_array()) {
          throw Error(ErrorCode::kParse, shape_message(request.url, "expected a list"));
        }
        EmissionsRecords records{SeriesBuilder(name_, request.url), std::nullopt};
        for (const auto& forecast : json) {
          check_unit(forecast, request.url);
          const auto& data = forecast.at("forecastData");
          if (!data.is_array()) {
            throw Error(ErrorCode::kParse,
                        shape_message(request.url, "forecastData is not a list"));
          }
          // The intervals not over yet that start before now + horizon.
          add_records(data, kForecastFields, request.url, records,
                      [&](UtcTime time, std::chrono::seconds duration) {
                        return time + duration > now && time < now + horizon;
                      });
        }
        auto series = records.build(source(), notes);
        note_short_forecast(series, now + horizon, notes);
        return series;
      });
    });
  }

 private:
  // The emissions of [from, to).
  HttpRequest bylocation_request(UtcTime from, UtcTime to) const {
    return request_to("/emissions/bylocation", {{"location", options_.location},
                                                {"time", iso_seconds(from)},
                                                {"toTime", iso_seconds(to)}});
  }

  CarbonSeries bylocation(const HttpRequest& request, const std::string& key,
                          std::chrono::seconds ttl, CarbonFetchNotes& notes, UtcTime from,
                          UtcTime to) {
    return fetch_parsed(request, key, ttl, notes, [&](const nlohmann::json& json) {
      if (!json.is_array()) {
        throw Error(ErrorCode::kParse, shape_message(request.url, "expected a list"));
      }
      EmissionsRecords records{SeriesBuilder(name_, request.url), std::nullopt};
      add_records(json, kByLocationFields, request.url, records,
                  [&](UtcTime time, std::chrono::seconds) { return time >= from && time < to; });
      return records.build(source(), notes);
    });
  }

  // Adds the records of `list` whose interval `keep(time, duration)` selects; every record's
  // unit, time and duration are checked, the value only of those kept.
  template <typename Keep>
  void add_records(const nlohmann::json& list, RecordFields fields, const std::string& url,
                   EmissionsRecords& records, Keep&& keep) const {
    for (const auto& record : list) {
      check_unit(record, url);
      const UtcTime time = parse_time(record.at(fields.time), url);
      const auto duration = parse_duration(record.at("duration"), url);
      if (!records.resolution) records.resolution = duration;
      if (!keep(time, duration)) continue;
      records.builder.add(time, parse_value(record.at(fields.value), url), fields.estimated);
    }
  }

  // "hh:mm:ss" (optionally "d.hh:mm:ss"), or a number of minutes.
  std::chrono::seconds parse_duration(const nlohmann::json& value, const std::string& url) const {
    const auto out_of_range = [&] {
      return Error(ErrorCode::kParse,
                   shape_message(url, fmt::format("duration {} is out of range (a century at most)",
                                                  value.dump())));
    };
    std::chrono::seconds duration{0};
    if (value.is_number_integer()) {
      // Bounded before converting: minutes beyond it would overflow the count of seconds.
      const bool too_large = value.is_number_unsigned()
                                 ? value.get<std::uint64_t>() > kMaxDurationMinutes
                                 : value.get<std::int64_t>() < -kMaxDurationMinutes ||
                                       value.get<std::int64_t>() > kMaxDurationMinutes;
      if (too_large) throw out_of_range();
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
      // In 64 bits: 24 * days overflows an int from 89,478,486 days on.
      duration = std::chrono::hours(24 * std::int64_t{days} + hours) +
                 std::chrono::minutes(minutes) + std::chrono::seconds(seconds);
    }
    if (duration <= std::chrono::seconds(0)) {
      throw Error(ErrorCode::kParse,
                  shape_message(url, fmt::format("duration {} is not positive", value.dump())));
    }
    if (duration > std::chrono::minutes(kMaxDurationMinutes)) throw out_of_range();
    return duration;
  }
};

}  // namespace

std::unique_ptr<CarbonProvider> make_carbon_aware_sdk_provider(CarbonProviderOptions options) {
  return std::make_unique<CarbonAwareSdkProvider>(std::move(options));
}

}  // namespace chase::detail
