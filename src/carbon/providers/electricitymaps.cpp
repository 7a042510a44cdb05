// Electricity Maps v3: `auth-token` header; latest, history (last 24 h), past-range, forecast.
// Every answer's `zone` is checked: against the zone asked for, or, for coordinates (sent with the
// caller-IP fallback off), against the zone the first answer named. Free keys have latest and
// history only: a refusal of past-range or forecast says so.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

#include "carbon/providers/provider_base.h"

namespace chase::detail {

namespace {

constexpr std::chrono::seconds kHour{3600};
// The longest window one past-range call is asked for.
constexpr std::chrono::seconds kPastRangeChunk{10 * 24 * 3600};
constexpr std::string_view kCredentials = "the API key (ELECTRICITYMAPS_API_KEY)";
constexpr std::string_view kPastRangePlan = "history older than 24 h (/past-range)";
constexpr std::string_view kForecastPlan = "forecasts (/forecast)";

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
        check_zone(json, request.url, notes);
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
                       check_zone(json, request.url, notes);
                       add_points(json.at("history"), request.url, builder, start, end);
                     });
      } else {
        for (UtcTime from = start; from < end; from += kPastRangeChunk) {
          const UtcTime to = std::min(end, from + kPastRangeChunk);
          const auto request =
              make_request("/v3/carbon-intensity/past-range",
                           {{"start", iso_seconds(from)}, {"end", iso_seconds(to)}});
          fetch_or_explain_plan(request, request.url, history_ttl(to), notes, kPastRangePlan,
                                [&](const nlohmann::json& json) {
                                  // (past-range names the zone per point)
                                  const auto& data = json.at("data");
                                  for (const auto& item : data)
                                    check_zone(item, request.url, notes);
                                  add_points(data, request.url, builder, start, end);
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
      fetch_or_explain_plan(request, request.url, kForecastTtl, notes, kForecastPlan,
                            [&](const nlohmann::json& json) {
                              check_zone(json, request.url, notes);
                              add_points(json.at("forecast"), request.url, builder,
                                         now - kHour + std::chrono::seconds(1), now + horizon,
                                         true);
                            });
      auto series = builder.build(kHour, source(), notes);
      note_short_forecast(series, now + horizon, notes);
      return series;
    });
  }

 private:
  HttpRequest make_request(std::string_view path,
                           std::vector<std::pair<std::string, std::string>> query) const {
    if (coordinates_) {
      // Without this the service answers for the caller's IP location when the coordinates fall
      // in no zone: data for the wrong grid, silently.
      query.insert(query.begin(), {{"lat", coordinates_->first},
                                   {"lon", coordinates_->second},
                                   {"shouldUseFallbackCallerLookup", "false"}});
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

  // Adds the points of `list` whose time is in [from, to); a forecast's are all estimated.
  void add_points(const nlohmann::json& list, const std::string& url, SeriesBuilder& builder,
                  UtcTime from, UtcTime to, bool forecast = false) const {
    if (!list.is_array()) throw Error(ErrorCode::kParse, shape_message(url, "expected a list"));
    for (const auto& item : list) {
      check_unit(item, url);
      const UtcTime time = parse_time(item.at("datetime"), url);
      if (time < from || time >= to) continue;
      const bool estimated = forecast || item.value("isEstimated", false);
      builder.add(time, parse_value(item.at("carbonIntensity"), url), estimated);
    }
  }

  // The zone an answer is for must be the zone asked for; for coordinates, the zone the first
  // answer named (a later answer for another zone is the caller-IP fallback or a moved boundary).
  void check_zone(const nlohmann::json& json, const std::string& url, CarbonFetchNotes& notes) {
    if (!json.is_object()) return;
    const auto it = json.find("zone");
    if (it == json.end() || it->is_null()) return;
    if (!it->is_string()) {
      throw Error(ErrorCode::kParse, shape_message(url, "the zone is not a string"));
    }
    const std::string zone = it->get<std::string>();
    const std::string expected = coordinates_ ? resolved_zone_ : options_.location;
    if (expected.empty()) {
      resolved_zone_ = zone;
      note(notes, fmt::format("electricitymaps: the coordinates {} are in zone {}.",
                              options_.location, zone));
      return;
    }
    const auto same_letters = [](char a, char b) {
      return std::toupper(static_cast<unsigned char>(a)) ==
             std::toupper(static_cast<unsigned char>(b));
    };
    if (!std::equal(zone.begin(), zone.end(), expected.begin(), expected.end(), same_letters)) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("electricitymaps: GET {} answered for zone '{}', not '{}'{}. The "
                              "data is for another grid, so it was not used. Check the {}.",
                              url, zone, expected,
                              coordinates_ ? fmt::format(" (the zone of {})", options_.location)
                                           : std::string(),
                              coordinates_ ? "coordinates" : "zone"));
    }
  }

  // fetch_parsed, with a refusal (401/403) of an endpoint that free keys lack explained as such.
  template <typename Parse>
  void fetch_or_explain_plan(const HttpRequest& request, const std::string& key,
                             std::chrono::seconds ttl, CarbonFetchNotes& notes,
                             std::string_view feature, Parse&& parse) {
    try {
      fetch_parsed(request, key, ttl, notes, std::forward<Parse>(parse));
    } catch (const Error& error) {
      if (error.code() != ErrorCode::kPermissionDenied) throw;
      throw Error(ErrorCode::kPermissionDenied,
                  fmt::format("{} Your key's plan does not include {}: free keys have the latest "
                              "value and the last 24 h of history only (see docs/PROVIDERS.md). "
                              "If latest() works with this key, upgrade the plan; otherwise the "
                              "key itself is wrong.",
                              error.what(), feature));
    }
  }

  std::string resolved_zone_;  // the zone the coordinates are in, once an answer named it

  std::optional<std::pair<std::string, std::string>> coordinates_;
};

}  // namespace

std::unique_ptr<CarbonProvider> make_electricitymaps_provider(CarbonProviderOptions options) {
  return std::make_unique<ElectricityMapsProvider>(std::move(options));
}

}  // namespace chase::detail
