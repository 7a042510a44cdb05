// One carbon provider's handling of a service's answer: status, JSON parsing, shape, units, times,
// nulls, order. Built once per provider (CHASE_FUZZ_PROVIDER names it). The network is replaced by
// set_http_transport_for_testing, so the whole path a real answer takes is fuzzed, not a copy.
//
// Input: byte 0 picks the call (latest, recent or past history, forecast) and, for ukgrid, the
// location kind; byte 1 the HTTP status; the rest is the body of every answer (WattTime's login
// gets a token).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>

#include "carbon/http_client.h"
#include "chase/carbon_provider.h"
#include "chase/time.h"
#include "fuzz_support.h"

using namespace chase;
using namespace std::chrono_literals;

namespace {

constexpr std::array<long, 10> kStatuses = {200, 200, 200, 200, 204, 400, 401, 404, 429, 501};

UtcTime at(const char* text) { return *parse_utc_time(text); }

CarbonProviderOptions options_for(std::string_view provider, std::uint8_t choice,
                                  const std::shared_ptr<ManualClock>& clock) {
  CarbonProviderOptions options;
  options.base_url = "http://fuzz.invalid";
  options.clock = clock;
  options.retry.max_attempts = 2;
  options.sleep = [](std::chrono::milliseconds) {};
  if (provider == "electricitymaps") {
    options.credentials.api_key = "key";
    options.location = "DE";
  } else if (provider == "watttime") {
    options.credentials.username = "user";
    options.credentials.password = "pass";
    options.location = "CAISO_NORTH";
  } else if (provider == "ukgrid") {
    constexpr std::array<const char*, 3> kLocations = {"", "regionid:13", "postcode:RG10"};
    options.location = kLocations[(choice / 4) % kLocations.size()];
  } else {
    options.location = "westeurope";
  }
  return options;
}

void check_series(const CarbonSeries& series) {
  fuzz::require(std::is_sorted(series.times().begin(), series.times().end()));
  fuzz::require(std::adjacent_find(series.times().begin(), series.times().end()) ==
                series.times().end());
  for (const double value : series.values()) fuzz::require(std::isfinite(value) && value >= 0);
}

}  // namespace

// The providers warn about every repair (nulls, order, duplicates); at fuzzing rates that output
// costs more than the parsing.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t call = data[0];
  const long status = kStatuses[data[1] % kStatuses.size()];
  const std::string body(fuzz::as_text(data + 2, size - 2));
  detail::set_http_transport_for_testing([&](const detail::HttpRequest& request) {
    detail::HttpResponse response;
    if (request.url.find("/login") != std::string::npos) {
      response.status = 200;
      response.body = R"({"token":"fuzz-token"})";
    } else {
      response.status = status;
      response.body = body;
    }
    return response;
  });
  const auto clock = std::make_shared<ManualClock>(at("2026-03-01T12:20:00Z"));
  fuzz::expect_only_chase_errors([&] {
    const auto provider =
        make_carbon_provider(CHASE_FUZZ_PROVIDER, options_for(CHASE_FUZZ_PROVIDER, call, clock));
    switch (call % 4) {
      case 0: {
        const CarbonPoint point = provider->latest();
        fuzz::require(std::isfinite(point.g_per_kwh) && point.g_per_kwh >= 0);
        break;
      }
      case 1:
        check_series(provider->history(at("2026-03-01T00:00:00Z"), at("2026-03-01T12:00:00Z")));
        break;
      case 2:
        check_series(provider->history(at("2026-01-01T00:00:00Z"), at("2026-01-03T00:00:00Z")));
        break;
      default:
        check_series(provider->forecast(24h));
        break;
    }
  });
  detail::set_http_transport_for_testing({});
  return 0;
}
