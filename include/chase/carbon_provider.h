// chase/carbon_provider.h — carbon-intensity providers behind one interface.
//
// Contract: a CarbonProvider answers three questions (and optionally a fourth) about one
// zone/region/location, always in gCO2eq/kWh whatever the service's own unit:
//   - latest(): the most recent value the service has (time, value, resolution, estimated flag);
//   - history(start, end): the points whose interval starts in [start, end);
//   - forecast(horizon): the points from now (the interval containing now) to now + horizon;
//   - inputs_ahead(horizon): optional, for forecasters — the exogenous columns (day-ahead weather
//     and generation forecasts) already published for the points after history's last one, at most
//     `horizon` and only what the provider has published by now. A provider whose
//     history() carries exogenous columns serves the same columns here; the others serve nothing
//     (the default). Values beyond the lead are never served: they are not published yet, and a
//     forecaster reading them would learn the future.
// Series are sorted, de-duplicated (a repeated time keeps its last value) and carry the service's
// resolution. A null value is dropped, never turned into 0; what was dropped or reordered in the
// last call is in last_notes() and logged as a warning. An empty answer is an empty series, except
// for latest(), which throws kUnavailable. Each point says whether it is estimated (forecasts, UK
// periods without an actual value). A horizon longer than the service forecasts is clamped and a
// forecast shorter than asked is kept, both with a note in last_notes().messages. An answer for
// another zone than asked is kInvalidArgument; a refusal that is the account's plan, not its
// credentials, says so ("your key's plan does not include ...").
//
// Providers ("electricitymaps", "watttime", "ukgrid", "carbon-aware-sdk", "file") talk HTTP through
// libcurl with connect and total timeouts, retry 429/5xx/timeouts/connection failures with
// exponential backoff and jitter (honouring Retry-After), and keep responses in an on-disk cache
// (CarbonProviderOptions::cache_dir) so a restarted process does not fetch again what is fresh.
// Failures are chase::Error: kPermissionDenied (bad key/login), kUnavailable (rate limit,
// outage, timeout, no data), kParse (truncated or wrong-shaped JSON, wrong units),
// kInvalidArgument (the service rejected the request), kNotSupported (no forecast for a source).
// Every message names the provider, the URL (never a secret) and what to do. Secrets never appear
// in messages, logs or to_string(CarbonProviderOptions).
//
// Thread safety: a provider may be called from several threads; calls are serialised inside.
// The option loaders and make_carbon_provider are reentrant (they read the environment).
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chase/carbon.h"
#include "chase/time.h"

namespace chase {

// One value of a provider: the intensity of [time, time + resolution).
struct CarbonPoint {
  UtcTime time{};
  double g_per_kwh = 0;
  std::chrono::seconds resolution{0};
  bool estimated = false;  // the service says the value is estimated or forecast, not measured
};

// What the last call had to repair in the service's answer.
struct CarbonFetchNotes {
  std::size_t nulls_dropped = 0;       // points without a value
  std::size_t duplicates_dropped = 0;  // points repeating an earlier time
  bool reordered = false;              // the points were not in time order
  bool from_cache = false;             // every response came from the on-disk cache
  // What else the caller should know, one sentence each: a horizon clamped to what the service
  // offers, a forecast that ends before the horizon, a zone the service chose. Also logged.
  std::vector<std::string> messages;
};

struct RetryPolicy {
  int max_attempts = 4;                           // tries per request, the first included
  std::chrono::milliseconds base_backoff{500};    // wait before the 2nd try; doubles after
  std::chrono::milliseconds max_backoff{30'000};  // cap of one wait (and of Retry-After)
  bool jitter = true;                             // wait a random 50–100 % of the backoff
};

// Sleeps for the given time; tests inject one that records and returns at once.
using SleepFunction = std::function<void(std::chrono::milliseconds)>;

// Exogenous inputs published ahead of now (CarbonProvider::inputs_ahead): one value per column for
// each of `times`, which continue history()'s grid (one resolution apart, the first starting at or
// after now). Empty when the provider publishes none.
struct ExogenousAhead {
  std::vector<UtcTime> times;
  std::vector<ExogenousColumn> columns;  // the same names, in the same order, as history()'s
  bool empty() const noexcept { return times.empty() || columns.empty(); }
};

// When a replayed file's exogenous columns count as published (the file provider and replays).
struct ExogenousPublication {
  // Rolling: at any time, the values of the points starting up to `lead` past it are out.
  std::chrono::seconds lead{std::chrono::hours(24)};
  // Daily instead, when set: published once a day at this time (since UTC midnight), each
  // publication covering up to the end of the next UTC day, as a day-ahead market's forecast is.
  // Then what is out swings between (24 h − daily_at) and (48 h − daily_at) ahead.
  std::optional<std::chrono::seconds> daily_at;

  // The end (exclusive) of the points whose inputs are out at `now`.
  UtcTime published_until(UtcTime now) const;
  // "read up to 24 h ahead" / "published daily at 12:00 UTC for the next day".
  std::string describe() const;
  // Throws kInvalidArgument, naming `what`, for a negative lead or a daily time outside a day.
  void validate(std::string_view what) const;
};

struct CarbonCredentials {
  std::string api_key;   // Electricity Maps `auth-token`
  std::string username;  // WattTime
  std::string password;  // WattTime
};

struct CarbonProviderOptions {
  std::string base_url;  // empty: the service's public URL (carbon-aware-sdk has none: required)
  // What to ask about: the Electricity Maps zone ("DE") or "lat,lon", the WattTime region
  // ("CAISO_NORTH"), the Carbon Aware SDK location ("westeurope"), or for ukgrid "" / "national",
  // "regionid:13" or "postcode:RG10".
  std::string location;
  CarbonCredentials credentials;
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds timeout{30'000};  // whole request, connection included
  RetryPolicy retry;
  SleepFunction sleep;              // empty: really sleep
  std::filesystem::path cache_dir;  // empty: no on-disk cache
  std::shared_ptr<Clock> clock;     // 'now' for windows and cache ages; null: the system clock
  // Electricity Maps: "lifecycle" or "direct" (empty: the service's default); estimations off.
  std::string emission_factor_type;
  bool disable_estimations = false;
  std::string signal_type = "co2_moer";  // WattTime
  // The file provider: a CSV read with load_carbon_csv.
  std::filesystem::path file;
  CarbonCsvOptions file_columns;  // file_columns.exogenous keeps the file's "forecast" columns
  // When the file's exogenous columns count as published (default: rolling, 24 h ahead).
  ExogenousPublication exogenous_publication;
};

// The options as one line, secrets shown as "***" (or "(none)").
std::string to_string(const CarbonProviderOptions& options);

class CarbonProvider {
 public:
  virtual ~CarbonProvider() = default;
  virtual std::string_view name() const noexcept = 0;
  virtual CarbonPoint latest() = 0;
  virtual CarbonSeries history(UtcTime start, UtcTime end) = 0;
  virtual CarbonSeries forecast(std::chrono::seconds horizon) = 0;
  // Published exogenous inputs ahead of now (see the contract); none by default.
  virtual ExogenousAhead inputs_ahead(std::chrono::seconds /*horizon*/) { return {}; }
  CarbonFetchNotes last_notes() const {
    std::lock_guard lock(notes_mutex_);
    return notes_;
  }

 protected:
  void set_notes(const CarbonFetchNotes& notes) {
    std::lock_guard lock(notes_mutex_);
    notes_ = notes;
  }

 private:
  mutable std::mutex notes_mutex_;
  CarbonFetchNotes notes_;
};

// Throws kInvalidArgument naming the known providers when `name` is not one of them, or when a
// required option (credentials, location, file) is missing.
std::unique_ptr<CarbonProvider> make_carbon_provider(std::string_view name,
                                                     CarbonProviderOptions options);
std::vector<std::string> carbon_provider_names();

// Serves `series` as a provider whose 'now' is `clock`'s (null: the system clock): latest is the
// point in force now, history the points before now (with the series' exogenous columns), forecast
// the series' own future (a perfect forecast), inputs_ahead the exogenous columns of the points
// starting in [now, min(now + horizon, publication.published_until(now))). For simulations, demos
// and tests; the "file" provider is this over a CSV.
std::unique_ptr<CarbonProvider> make_replay_provider(CarbonSeries series,
                                                     std::shared_ptr<Clock> clock = nullptr,
                                                     std::string name = "replay",
                                                     ExogenousPublication publication = {});

// Reads a variable of the environment; nullopt when unset. Tests inject one.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Settings for provider `name`: first the JSON config file when given (an object keyed by provider
// name: {"watttime": {"base_url", "location", "username", "password", "api_key", "cache_dir",
// "timeout_ms", "connect_timeout_ms", "max_attempts", "file", ...}}), then the environment, which
// wins: ELECTRICITYMAPS_API_KEY, ELECTRICITYMAPS_ZONE, ELECTRICITYMAPS_URL, WATTTIME_USERNAME,
// WATTTIME_PASSWORD, WATTTIME_REGION, WATTTIME_URL, UKGRID_REGION, UKGRID_URL,
// CARBON_AWARE_SDK_URL, CARBON_AWARE_SDK_LOCATION, CHASE_CARBON_FILE, CHASE_CARBON_CACHE_DIR.
// Throws kParse (file, what is wrong) for a malformed file, kNotFound for a missing one.
CarbonProviderOptions load_carbon_provider_options(std::string_view name,
                                                   const std::filesystem::path& config_file = {},
                                                   const EnvLookup& env = {});

}  // namespace chase
