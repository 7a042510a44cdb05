// Electricity Maps v3: `auth-token` header; latest, history (last 24 h), past-range, forecast.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "carbon/providers/provider_base.h"

namespace chase::detail {

namespace {

constexpr std::chrono::seconds kHour{3600};
// The longest window one past-range call is asked for.
constexpr std::chrono::seconds kPastRangeChunk{10 * 24 * 3600};
constexpr std::string_view kCredentials = "the API key (ELECTRICITYMAPS_API_KEY)";

class ElectricityMapsProvider final : public HttpProvider {
 public:
  explicit ElectricityMapsProvider(CarbonProviderOptions options)
      : HttpProvider("electricitymaps", "https://api.electricitymap.org", kCredentials,
                     std::move(options)) {
    require_setting(
        !options_.credentials.api_key.empty(),
        "electricitymaps: no API key. Set ELECTRICITYMAPS_API_KEY or \"api_key\" in the "
        "provider config file.");
    require_setting(!options_.location.empty(),
                    "electricitymaps: no zone. Set ELECTRICITYMAPS_ZONE or \"location\" (e.g. "
                    "\"DE\", or \"lat,lon\").");
    coordinates_ = parse_coordinates(options_.location);
  }

  CarbonPoint latest() override {
    const auto request = make_request("/v3/carbon-intensity/latest", {});
    return serve([&](CarbonFetchNotes& notes) {
      return fetch_parsed(request, request.url, kLatestTtl, notes, [&](const nlohmann::json& json) {
        check_unit(json, request.url);
        const auto value = parse_value(json.at("carbonIntensity"), request.url);
        CarbonPoint result;
        result.time = parse_time(json.at("datetime"), request.url);
        result.resolution = kHour;
        result.estimated = json.value("isEstimated", false);
        if (!value) {
          throw Error(ErrorCode::kUnavailable,
                      fmt::format("electricitymaps: GET {} has no value (null) for {} at {}. "
                                  "Try again later or use history().",
                                  request.url, options_.location, format_utc_time(result.time)));
        }
        SeriesBuilder check(name_, request.url);
        check.add(result.time, value);  // the range and unit checks
        result.g_per_kwh = *value;
        return result;
      });
    });
  }

  CarbonSeries history(UtcTime start, UtcTime end) override {
    return serve([&](CarbonFetchNotes& notes) {
      SeriesBuilder builder(name_, "/v3/carbon-intensity/past-range");
      const UtcTime now = clock_->utc_now();
      if (start >= now - std::chrono::hours(24)) {
        const auto request = make_request("/v3/carbon-intensity/history", {});
        fetch_parsed(request, request.url, kRecentHistoryTtl, notes,
                     [&](const nlohmann::json& json) {
                       add_points(json.at("history"), request.url, builder, start, end);
                     });
      } else {
        for (UtcTime from = start; from < end; from += kPastRangeChunk) {
          const UtcTime to = std::min(end, from + kPastRangeChunk);
          const auto request =
              make_request("/v3/carbon-intensity/past-range",
                           {{"start", iso_seconds(from)}, {"end", iso_seconds(to)}});
          fetch_parsed(request, request.url, history_ttl(to), notes,
                       [&](const nlohmann::json& json) {
                         add_points(json.at("data"), request.url, builder, start, end);
                       });
        }
      }
      return builder.build(kHour, source(), notes);
    });
  }

  CarbonSeries forecast(std::chrono::seconds horizon) override {
    const auto request = make_request("/v3/carbon-intensity/forecast", {});
    return serve([&](CarbonFetchNotes& notes) {
      SeriesBuilder builder(name_, request.url);
      const UtcTime now = clock_->utc_now();
      fetch_parsed(request, request.url, kForecastTtl, notes, [&](const nlohmann::json& json) {
        add_points(json.at("forecast"), request.url, builder, now - kHour + std::chrono::seconds(1),
                   now + horizon);
      });
      return builder.build(kHour, source(), notes);
    });
  }

 private:
  HttpRequest make_request(std::string_view path,
                           std::vector<std::pair<std::string, std::string>> query) const {
    if (coordinates_) {
      query.insert(query.begin(), {{"lat", coordinates_->first}, {"lon", coordinates_->second}});
    } else {
      query.insert(query.begin(), {"zone", options_.location});
    }
    if (!options_.emission_factor_type.empty()) {
      query.emplace_back("emissionFactorType", options_.emission_factor_type);
    }
    if (options_.disable_estimations) query.emplace_back("disableEstimations", "true");
    HttpRequest request = request_to(path, query);
    request.headers.emplace_back("auth-token", options_.credentials.api_key);
    return request;
  }

  // "52.52,13.40" → {"52.52", "13.40"}; nullopt for a zone name.
  static std::optional<std::pair<std::string, std::string>> parse_coordinates(
      const std::string& location) {
    const auto comma = location.find(',');
    if (comma == std::string::npos) return std::nullopt;
    const std::string lat = location.substr(0, comma);
    const std::string lon = location.substr(comma + 1);
    const auto number = [](const std::string& text, double limit) {
      double value = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
      return !text.empty() && error == std::errc{} && end == text.data() + text.size() &&
             value >= -limit && value <= limit;
    };
    if (!number(lat, 90) || !number(lon, 180)) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("electricitymaps: location '{}' is neither a zone nor \"lat,lon\" "
                              "(latitude -90..90, longitude -180..180).",
                              location));
    }
    return std::make_pair(lat, lon);
  }

  // Adds the points of `list` whose time is in [from, to).
  void add_points(const nlohmann::json& list, const std::string& url, SeriesBuilder& builder,
                  UtcTime from, UtcTime to) const {
    if (!list.is_array()) throw Error(ErrorCode::kParse, shape_message(url, "expected a list"));
    for (const auto& item : list) {
      check_unit(item, url);
      const UtcTime time = parse_time(item.at("datetime"), url);
      if (time < from || time >= to) continue;
      builder.add(time, parse_value(item.at("carbonIntensity"), url));
    }
  }

  std::optional<std::pair<std::string, std::string>> coordinates_;
};

}  // namespace

std::unique_ptr<CarbonProvider> make_electricitymaps_provider(CarbonProviderOptions options) {
  return std::make_unique<ElectricityMapsProvider>(std::move(options));
}

}  // namespace chase::detail
