// Internal: what the HTTP providers share — the client, the cache, status and JSON handling, and
// the repair of the services' series (nulls, order, duplicates, units).
//
// Thread safety: HttpProvider serialises the public calls of its subclasses with `mutex_`.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "carbon/http_client.h"
#include "carbon/provider_cache.h"
#include "chase/carbon_provider.h"
#include "chase/error.h"

namespace chase::detail {

// Cache lifetimes per kind of endpoint.
inline constexpr std::chrono::seconds kLatestTtl{5 * 60};
inline constexpr std::chrono::seconds kForecastTtl{15 * 60};
inline constexpr std::chrono::seconds kRecentHistoryTtl{15 * 60};
inline constexpr std::chrono::seconds kPastHistoryTtl{30 * 24 * 3600};
// A past window ending this long ago no longer changes (late corrections included).
inline constexpr std::chrono::seconds kSettledAfter{2 * 24 * 3600};
// Above this, a value in "gCO2eq/kWh" is surely in another unit (the dirtiest plants emit ~1.2 kg).
inline constexpr double kMaxPlausibleGPerKwh = 3000;

struct Fetched {
  long status = 200;
  std::string body;
  bool from_cache = false;
};

// Collects the points of a service's answer and builds a clean CarbonSeries from them.
class SeriesBuilder {
 public:
  SeriesBuilder(std::string provider, std::string url)
      : provider_(std::move(provider)), url_(std::move(url)) {}
  void add(UtcTime time, std::optional<double> value);
  // Sorted, de-duplicated (last wins), nulls dropped; warns about what it repaired.
  CarbonSeries build(std::chrono::seconds resolution, std::string source,
                     CarbonFetchNotes& notes) const;

 private:
  std::string provider_;
  std::string url_;
  std::vector<std::pair<UtcTime, std::optional<double>>> points_;
};

class HttpProvider : public CarbonProvider {
 public:
  HttpProvider(std::string name, std::string default_url, CarbonProviderOptions options);
  std::string_view name() const noexcept override { return name_; }

 protected:
  // The body for `request`: from the cache when `cache_key` is fresh there, else from the network.
  // Statuses other than 2xx are returned as they are (cached never).
  Fetched fetch(const HttpRequest& request, const std::string& cache_key, std::chrono::seconds ttl);
  // Stores a body that parsed well.
  void remember(const std::string& cache_key, const Fetched& fetched, std::chrono::seconds ttl);
  // Throws the chase::Error that `status` of `url` deserves; `credentials_hint` says which
  // settings hold the credentials.
  [[noreturn]] void fail_status(const Fetched& fetched, const std::string& url,
                                std::string_view credentials_hint) const;
  nlohmann::json parse_json(const Fetched& fetched, const std::string& url) const;
  // Runs `parse`, turning JSON shape errors into kParse naming the provider and endpoint.
  template <typename F>
  auto parse_shape(const std::string& url, F&& parse) const -> decltype(parse()) {
    try {
      return parse();
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorCode::kParse, shape_message(url, e.what()));
    }
  }
  // fetch + status check + JSON parse + `parse(json)`; the body is cached once it parsed.
  template <typename Parse>
  auto fetch_parsed(const HttpRequest& request, const std::string& cache_key,
                    std::chrono::seconds ttl, std::string_view credentials_hint,
                    CarbonFetchNotes& notes, Parse&& parse) {
    const Fetched fetched = fetch(request, cache_key, ttl);
    if (fetched.status < 200 || fetched.status >= 300 || fetched.status == 204) {
      fail_status(fetched, request.url, credentials_hint);
    }
    const nlohmann::json json = parse_json(fetched, request.url);
    auto result = parse_shape(request.url, [&] { return parse(json); });
    remember(cache_key, fetched, ttl);
    notes.from_cache = notes.from_cache && fetched.from_cache;
    return result;
  }
  std::string shape_message(const std::string& url, std::string_view detail) const;
  UtcTime parse_time(const nlohmann::json& value, const std::string& url) const;
  std::optional<double> parse_value(const nlohmann::json& value, const std::string& url) const;
  // Throws kParse when a unit field is present and not gCO2(eq)/kWh.
  void check_unit(const nlohmann::json& object, const std::string& url) const;
  // TTL for a history window ending at `end`.
  std::chrono::seconds history_ttl(UtcTime end) const;
  // Notes for a new call: from_cache until a response comes from the network.
  static CarbonFetchNotes fresh_notes() {
    CarbonFetchNotes notes;
    notes.from_cache = true;
    return notes;
  }
  std::string source() const { return name_ + ":" + options_.location; }

  std::string name_;
  std::string base_url_;
  CarbonProviderOptions options_;
  std::shared_ptr<Clock> clock_;
  HttpClient http_;
  ProviderCache cache_;
  std::mutex mutex_;
};

std::unique_ptr<CarbonProvider> make_electricitymaps_provider(CarbonProviderOptions options);
std::unique_ptr<CarbonProvider> make_watttime_provider(CarbonProviderOptions options);
std::unique_ptr<CarbonProvider> make_ukgrid_provider(CarbonProviderOptions options);
std::unique_ptr<CarbonProvider> make_carbon_aware_sdk_provider(CarbonProviderOptions options);
std::unique_ptr<CarbonProvider> make_file_provider(CarbonProviderOptions options);

// "2021-07-01T13:00:00Z" without fractions; "2021-07-01T13:00Z" for the UK API.
std::string iso_seconds(UtcTime time);
std::string iso_minutes(UtcTime time);

}  // namespace chase::detail
