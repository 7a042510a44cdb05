// Internal: what the HTTP providers share — the client, the cache, status and JSON handling, one
// call's lock and notes, and the repair of the services' series (nulls, order, duplicates, units).
//
// Thread safety: HttpProvider serialises the public calls of its subclasses: each runs its work in
// serve(), which holds `mutex_`; the members a subclass reads outside serve() are set at
// construction and never change.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
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
  // `estimated`: the service says the value is estimated or forecast (kept per point).
  void add(UtcTime time, std::optional<double> value, bool estimated = false);
  // Sorted, de-duplicated (last wins), nulls dropped; warns about what it repaired.
  CarbonSeries build(std::chrono::seconds resolution, std::string source,
                     CarbonFetchNotes& notes) const;

 private:
  std::string provider_;
  std::string url_;
  struct Point {
    UtcTime time;
    std::optional<double> value;
    bool estimated = false;
  };
  std::vector<Point> points_;
};

class HttpProvider : public CarbonProvider {
 public:
  // `credentials_hint` says which settings hold the credentials, for the messages of refusals.
  HttpProvider(std::string name, std::string default_url, std::string_view credentials_hint,
               CarbonProviderOptions options);
  std::string_view name() const noexcept override { return name_; }

 protected:
  // Runs one public call, `call(notes)`: serialised with the provider's other calls (mutex_), with
  // notes that start fresh and become last_notes() once it returns (not when it throws).
  template <typename Call>
  auto serve(Call&& call) {
    std::lock_guard lock(mutex_);
    CarbonFetchNotes notes;
    notes.from_cache = true;  // until a response comes from the network
    auto result = call(notes);
    set_notes(notes);
    return result;
  }
  // fetch + status check + JSON parse + `parse(json)`: the body comes from the cache when
  // `cache_key` is fresh there, and is cached once `parse` accepted it. A status the service did
  // not answer with a body throws the chase::Error it deserves.
  template <typename Parse>
  auto fetch_parsed(const HttpRequest& request, const std::string& cache_key,
                    std::chrono::seconds ttl, CarbonFetchNotes& notes, Parse&& parse) {
    const Fetched fetched = fetch(request, cache_key, ttl);
    const nlohmann::json json = answer_json(fetched, request.url);
    if constexpr (std::is_void_v<decltype(parse(json))>) {
      parse_shape(request.url, [&] { parse(json); });
      keep(cache_key, fetched, ttl, notes);
    } else {
      auto result = parse_shape(request.url, [&] { return parse(json); });
      keep(cache_key, fetched, ttl, notes);
      return result;
    }
  }
  // Sends `request` over the network; WattTime adds its bearer token here.
  virtual HttpResponse send(const HttpRequest& request) { return http_.get(request); }
  // A GET of `path` under the base URL (no headers).
  HttpRequest request_to(std::string_view path,
                         const std::vector<std::pair<std::string, std::string>>& query = {}) const {
    return HttpRequest{make_url(base_url_, path, query), {}, std::nullopt};
  }
  // Throws kInvalidArgument with `message` unless a setting the provider needs is `given`.
  static void require_setting(bool given, const char* message) {
    if (!given) throw Error(ErrorCode::kInvalidArgument, message);
  }
  // What must never appear in a message: the credentials, and what a subclass derives from them
  // (WattTime's bearer token). fail_status masks them in the service's error body.
  virtual std::vector<std::string> secrets() const;
  // Throws the chase::Error that the status of `fetched` (from `url`) deserves.
  [[noreturn]] void fail_status(const Fetched& fetched, const std::string& url) const;
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
  std::string shape_message(const std::string& url, std::string_view detail) const;
  UtcTime parse_time(const nlohmann::json& value, const std::string& url) const;
  std::optional<double> parse_value(const nlohmann::json& value, const std::string& url) const;
  // Throws kParse when a unit field is present and not gCO2(eq)/kWh.
  void check_unit(const nlohmann::json& object, const std::string& url) const;
  // TTL for a history window ending at `end`.
  std::chrono::seconds history_ttl(UtcTime end) const;
  // latest() of a service that answers it with a recent series: its last point; kUnavailable with
  // `no_value_message` when the series is empty.
  static CarbonPoint last_point(const CarbonSeries& series, const std::string& no_value_message);
  std::string source() const { return name_ + ":" + options_.location; }
  // Adds `message` to `notes` and logs it as a warning.
  void note(CarbonFetchNotes& notes, std::string message) const;
  // Notes a forecast that ends before `wanted_end` (the service has no more).
  void note_short_forecast(const CarbonSeries& series, UtcTime wanted_end,
                           CarbonFetchNotes& notes) const;
  // Clamps a forecast horizon to the `longest` the service offers, with a note when it had to.
  std::chrono::seconds clamp_horizon(std::chrono::seconds horizon, std::chrono::seconds longest,
                                     CarbonFetchNotes& notes) const;

  std::string name_;
  std::string base_url_;
  std::string credentials_hint_;
  CarbonProviderOptions options_;
  std::shared_ptr<Clock> clock_;
  HttpClient http_;
  ProviderCache cache_;
  std::mutex mutex_;
  // HTTP 204 (No Content) is an error, except for services that answer "no data" with it (the
  // Carbon Aware SDK): for them it reads as an empty JSON list.
  bool no_content_is_empty_list_ = false;

 private:
  // The body for `request`: from the cache when `cache_key` is fresh there, else from send().
  Fetched fetch(const HttpRequest& request, const std::string& cache_key, std::chrono::seconds ttl);
  // The JSON of an answer with a body (an empty list for an allowed 204); fail_status otherwise.
  nlohmann::json answer_json(const Fetched& fetched, const std::string& url) const;
  // After a body parsed well: caches it when it came from the network, and counts it in `notes`.
  void keep(const std::string& cache_key, const Fetched& fetched, std::chrono::seconds ttl,
            CarbonFetchNotes& notes);
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
