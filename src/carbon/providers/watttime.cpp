// WattTime v3: HTTP Basic login for a 30-minute bearer token, re-login once on 401/403;
// lbs_co2_per_mwh converted to g/kWh; the period from `meta`. A data endpoint refused with a fresh
// token is the plan: historical and forecast data need a subscription, except for CAISO_NORTH.
// Forecasts reach 72 h at most. co2_moer is a marginal rate (see docs/PROVIDERS.md).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "carbon/providers/provider_base.h"

namespace chase::detail {

namespace {

constexpr double kGPerKwhPerLbsPerMwh = 0.45359237;
constexpr std::chrono::minutes kTokenLifetime{30};
constexpr std::chrono::minutes kTokenMargin{1};  // renew this long before it expires
constexpr std::chrono::seconds kHistoricalChunk{30 * 24 * 3600};
constexpr std::chrono::seconds kLongestForecast{72 * 3600};  // horizon_hours accepts up to 72
// The one region whose historical and forecast data a free account may read.
constexpr std::string_view kFreeRegion = "CAISO_NORTH";
constexpr std::string_view kCredentials =
    "the WattTime username and password (WATTTIME_USERNAME, WATTTIME_PASSWORD)";

class WattTimeProvider final : public HttpProvider {
 public:
  explicit WattTimeProvider(CarbonProviderOptions options)
      : HttpProvider("watttime", "https://api.watttime.org", kCredentials, std::move(options)) {
    require_setting(
        !options_.credentials.username.empty() && !options_.credentials.password.empty(),
        "watttime: no username or password. Set WATTTIME_USERNAME and WATTTIME_PASSWORD, or "
        "\"username\" and \"password\" in the provider config file.");
    require_setting(!options_.location.empty(),
                    "watttime: no region. Set WATTTIME_REGION or \"location\" (e.g. "
                    "\"CAISO_NORTH\").");
  }

  CarbonPoint latest() override {
    const std::string key =
        fmt::format("watttime latest {} {}", options_.location, options_.signal_type);
    const auto [series, url] = serve([&](CarbonFetchNotes& notes) {
      const UtcTime now = clock_->utc_now();
      const auto request = historical(now - std::chrono::hours(1), now);
      return std::pair{get_series(request, key, kLatestTtl, notes, UtcTime::min(), UtcTime::max()),
                       request.url};
    });
    return last_point(series, fmt::format("watttime: GET {} has no value for region {} in the "
                                          "last hour. Try again later.",
                                          url, options_.location));
  }

  CarbonSeries history(UtcTime start, UtcTime end) override {
    return serve([&](CarbonFetchNotes& notes) {
      std::vector<UtcTime> times;
      std::vector<double> values;
      std::chrono::seconds resolution{300};
      for (UtcTime from = start; from < end; from += kHistoricalChunk) {
        const UtcTime to = std::min(end, from + kHistoricalChunk);
        const auto request = historical(from, to);
        const auto part = get_series(request, request.url, history_ttl(to), notes, from, to);
        resolution = part.resolution();
        for (std::size_t i = 0; i < part.size(); ++i) {
          if (!times.empty() && part.times()[i] <= times.back()) continue;
          times.push_back(part.times()[i]);
          values.push_back(part.values()[i]);
        }
      }
      return CarbonSeries(std::move(times), std::move(values), resolution, source());
    });
  }

  CarbonSeries forecast(std::chrono::seconds asked) override {
    return serve([&](CarbonFetchNotes& notes) {
      const auto horizon = clamp_horizon(asked, kLongestForecast, notes);
      const UtcTime now = clock_->utc_now();
      const auto hours = std::max<std::int64_t>(
          1, static_cast<std::int64_t>(std::ceil(static_cast<double>(horizon.count()) / 3600.0)));
      const auto request = request_to("/v3/forecast", {{"region", options_.location},
                                                       {"signal_type", options_.signal_type},
                                                       {"horizon_hours", std::to_string(hours)}});
      // Points whose interval has not ended yet and which start before now + horizon.
      auto series =
          get_series(request, request.url, kForecastTtl, notes,
                     now - std::chrono::minutes(5) + std::chrono::seconds(1), now + horizon, true);
      note_short_forecast(series, now + horizon, notes);
      return series;
    });
  }

 private:
  // The signal's values in [from, to).
  HttpRequest historical(UtcTime from, UtcTime to) const {
    return request_to("/v3/historical", {{"region", options_.location},
                                         {"start", iso_seconds(from)},
                                         {"end", iso_seconds(to)},
                                         {"signal_type", options_.signal_type}});
  }

  const std::string& token() {
    if (token_.empty() || clock_->monotonic() >= token_expires_) login();
    return token_;
  }

  void login() {
    token_.clear();
    HttpRequest request = request_to("/login");
    request.basic_auth.emplace(options_.credentials.username, options_.credentials.password);
    const auto started = clock_->monotonic();
    const HttpResponse response = http_.get(request);
    const Fetched fetched{response.status, response.body, false};
    if (response.status == 401 || response.status == 403) {
      throw Error(ErrorCode::kPermissionDenied,
                  fmt::format("watttime: login at {} was refused (HTTP {}). Check {}.", request.url,
                              response.status, kCredentials));
    }
    if (response.status < 200 || response.status >= 300) fail_status(fetched, request.url);
    const auto json = parse_json(fetched, request.url);
    token_ = parse_shape(request.url, [&] { return json.at("token").get<std::string>(); });
    if (token_.empty()) {
      throw Error(ErrorCode::kParse, shape_message(request.url, "the token is empty"));
    }
    token_expires_ = started + kTokenLifetime - kTokenMargin;
  }

  std::vector<std::string> secrets() const override {
    auto secrets = HttpProvider::secrets();
    secrets.push_back(token_);
    return secrets;
  }

  // Every data request carries the bearer token.
  HttpResponse send(const HttpRequest& request) override {
    HttpRequest authorised = request;
    authorised.headers.emplace_back("Authorization", "Bearer " + token());
    HttpResponse response = http_.get(authorised);
    refused_with_fresh_token_ = false;
    if (response.status == 401 || response.status == 403) {
      // The token expired or was revoked: log in again, once.
      login();
      authorised.headers.back().second = "Bearer " + token_;
      response = http_.get(authorised);
      // The login was accepted, so the credentials are right: what is refused is the data.
      refused_with_fresh_token_ = response.status == 401 || response.status == 403;
    }
    return response;
  }

  CarbonSeries get_series(const HttpRequest& request, const std::string& key,
                          std::chrono::seconds ttl, CarbonFetchNotes& notes, UtcTime from,
                          UtcTime to, bool forecast = false) {
    refused_with_fresh_token_ = false;
    try {
      return fetch_parsed(request, key, ttl, notes, [&](const nlohmann::json& json) {
        return parse(json, request.url, notes, from, to, forecast);
      });
    } catch (const Error& error) {
      if (error.code() != ErrorCode::kPermissionDenied || !refused_with_fresh_token_) throw;
      throw Error(ErrorCode::kPermissionDenied,
                  fmt::format("{} The login succeeded, so your account's plan does not include "
                              "{} data for region {}: WattTime's historical and forecast "
                              "endpoints need a subscription, except for {} (free accounts get "
                              "only the signal-index percentile elsewhere). Use {} or another "
                              "provider, or upgrade the plan.",
                              error.what(), forecast ? "forecast" : "historical", options_.location,
                              kFreeRegion, kFreeRegion));
    }
  }

  CarbonSeries parse(const nlohmann::json& json, const std::string& url, CarbonFetchNotes& notes,
                     UtcTime from, UtcTime to, bool forecast) const {
    const auto& meta = json.at("meta");
    const auto& units = meta.at("units");
    const std::string unit = units.is_string() ? units.get<std::string>() : units.dump();
    double factor = 0;
    if (unit == "lbs_co2_per_mwh") {
      factor = kGPerKwhPerLbsPerMwh;
    } else if (unit == "kg_co2_per_mwh" || unit == "g_co2_per_kwh") {
      factor = 1;
    } else {
      throw Error(ErrorCode::kParse,
                  fmt::format("watttime: the answer to GET {} is in '{}', not lbs_co2_per_mwh "
                              "(wrong units; e.g. a percentile signal): chase cannot convert it "
                              "to gCO2eq/kWh. Use signal_type co2_moer.",
                              url, unit));
    }
    const std::int64_t period = period_seconds(meta, url);
    const auto& data = json.at("data");
    if (!data.is_array()) throw Error(ErrorCode::kParse, shape_message(url, "expected a list"));
    SeriesBuilder builder(name_, url);
    for (const auto& item : data) {
      const UtcTime time = parse_time(item.at("point_time"), url);
      if (time < from || time >= to) continue;
      auto value = parse_value(item.at("value"), url);
      if (value) *value *= factor;
      builder.add(time, value, forecast);
    }
    return builder.build(std::chrono::seconds(period), source(), notes);
  }

  // meta.data_point_period_seconds (300 when absent), checked before it becomes an integer: a
  // double out of the int64 range would be undefined behaviour, not an error.
  std::int64_t period_seconds(const nlohmann::json& meta, const std::string& url) const {
    constexpr double kMaxPeriod = 100.0 * 366 * 24 * 3600;  // a CarbonSeries' longest resolution
    const auto it = meta.find("data_point_period_seconds");
    if (it == meta.end()) return 300;
    if (!it->is_number() || !(it->get<double>() > 0) || it->get<double>() > kMaxPeriod) {
      throw Error(ErrorCode::kParse,
                  shape_message(url, fmt::format("data_point_period_seconds {} is not a positive "
                                                 "number of seconds up to 100 years",
                                                 it->dump())));
    }
    return static_cast<std::int64_t>(it->get<double>());
  }

  std::string token_;
  std::chrono::nanoseconds token_expires_{0};
  bool refused_with_fresh_token_ = false;  // the last data request was refused after a re-login
};

}  // namespace

std::unique_ptr<CarbonProvider> make_watttime_provider(CarbonProviderOptions options) {
  return std::make_unique<WattTimeProvider>(std::move(options));
}

}  // namespace chase::detail
