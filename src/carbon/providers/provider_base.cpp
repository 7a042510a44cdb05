#include "carbon/providers/provider_base.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "common/text.h"

namespace chase::detail {

namespace {

// What an error body says: the usual message fields of a JSON body, else its start.
std::string snippet(const std::string& body) {
  constexpr std::size_t kMax = 300;
  std::string text;
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_object()) {
    for (const char* field : {"title", "detail", "message", "error", "errors"}) {
      const auto it = json.find(field);
      if (it == json.end() || it->is_null()) continue;
      if (!text.empty()) text += "; ";
      text += it->is_string() ? it->get<std::string>() : it->dump();
    }
  }
  if (text.empty()) text = body;
  std::string compact;
  for (const char c : text) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (space && (compact.empty() || compact.back() == ' ')) continue;
    compact += space ? ' ' : c;
  }
  // A service's text must not drive the terminal (control bytes, ESC sequences).
  return escape_untrusted(compact, kMax);
}

// 2xx with a body: 204 (No Content) has none.
bool has_body(long status) { return status >= 200 && status < 300 && status != 204; }

}  // namespace

void SeriesBuilder::add(UtcTime time, std::optional<double> value, bool estimated) {
  if (value) {
    if (!std::isfinite(*value) || *value < 0) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}: GET {} gave the value {} for {}: a carbon intensity must be "
                              "finite and non-negative. The service's answer is wrong; report it "
                              "or use another provider.",
                              provider_, url_, *value, format_utc_time(time)));
    }
    if (*value > kMaxPlausibleGPerKwh) {
      throw Error(
          ErrorCode::kParse,
          fmt::format("{}: GET {} gave {} gCO2eq/kWh for {}, more than any grid emits "
                      "({} at most): the value is in another unit (wrong units). Check "
                      "the provider and its signal type.",
                      provider_, url_, *value, format_utc_time(time), kMaxPlausibleGPerKwh));
    }
  }
  points_.push_back({time, value, estimated});
}

CarbonSeries SeriesBuilder::build(std::chrono::seconds resolution, std::string source,
                                  CarbonFetchNotes& notes) const {
  std::vector<Point> kept;
  kept.reserve(points_.size());
  std::size_t nulls = 0;
  for (const Point& point : points_) {
    if (point.value) {
      kept.push_back(point);
    } else {
      ++nulls;
    }
  }
  const auto by_time = [](const Point& a, const Point& b) { return a.time < b.time; };
  const bool sorted = std::is_sorted(kept.begin(), kept.end(), by_time);
  // Stable: among equal times the one the service listed last wins.
  std::stable_sort(kept.begin(), kept.end(), by_time);
  std::vector<UtcTime> times;
  std::vector<double> values;
  std::vector<bool> estimated;
  std::size_t duplicates = 0;
  for (const Point& point : kept) {
    if (!times.empty() && times.back() == point.time) {
      values.back() = *point.value;
      estimated.back() = point.estimated;
      ++duplicates;
      continue;
    }
    times.push_back(point.time);
    values.push_back(*point.value);
    estimated.push_back(point.estimated);
  }
  notes.nulls_dropped += nulls;
  notes.duplicates_dropped += duplicates;
  notes.reordered = notes.reordered || !sorted;
  if (nulls > 0) {
    spdlog::warn(
        "{}: GET {}: dropped {} point{} without a value (null); the series has a gap "
        "there",
        provider_, url_, nulls, nulls == 1 ? "" : "s");
  }
  if (duplicates > 0) {
    spdlog::warn("{}: GET {}: {} point{} repeated an earlier time; kept the last value", provider_,
                 url_, duplicates, duplicates == 1 ? "" : "s");
  }
  if (!sorted)
    spdlog::warn("{}: GET {}: the points were out of order; sorted them", provider_, url_);
  return CarbonSeries(std::move(times), std::move(values), resolution, std::move(source), {},
                      std::move(estimated));
}

HttpProvider::HttpProvider(std::string name, std::string default_url,
                           std::string_view credentials_hint, CarbonProviderOptions options)
    : name_(std::move(name)),
      base_url_(options.base_url.empty() ? std::move(default_url) : options.base_url),
      credentials_hint_(credentials_hint),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : system_clock()),
      http_(name_, HttpOptions{options_.connect_timeout, options_.timeout, options_.retry,
                               options_.sleep, clock_}),
      cache_(options_.cache_dir, name_, clock_) {
  // Credentials in the URL would end up in messages and cache keys; they have their own settings.
  const auto scheme = base_url_.find("://");
  const auto authority_start = scheme == std::string::npos ? 0 : scheme + 3;
  const auto authority_end = base_url_.find('/', authority_start);
  const auto at = base_url_.find('@', authority_start);
  if (at != std::string::npos && (authority_end == std::string::npos || at < authority_end)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: the base URL holds credentials (user:password@host). Give the "
                            "host only, and the credentials through their own settings.",
                            name_));
  }
}

Fetched HttpProvider::fetch(const HttpRequest& request, const std::string& cache_key,
                            std::chrono::seconds ttl) {
  if (auto body = cache_.get(cache_key, ttl)) return Fetched{200, std::move(*body), true};
  HttpResponse response = send(request);
  return Fetched{response.status, std::move(response.body), false};
}

nlohmann::json HttpProvider::answer_json(const Fetched& fetched, const std::string& url) const {
  if (fetched.status == 204 && no_content_is_empty_list_) return nlohmann::json::array();
  if (!has_body(fetched.status)) fail_status(fetched, url);
  return parse_json(fetched, url);
}

void HttpProvider::keep(const std::string& cache_key, const Fetched& fetched,
                        std::chrono::seconds ttl, CarbonFetchNotes& notes) {
  if (!fetched.from_cache && has_body(fetched.status)) cache_.put(cache_key, fetched.body, ttl);
  notes.from_cache = notes.from_cache && fetched.from_cache;
}

void HttpProvider::fail_status(const Fetched& fetched, const std::string& url) const {
  const long status = fetched.status;
  // Services echo what they were sent ("invalid token abc123"): the caller's secrets are masked
  // before the body goes into a message, and so into logs (the masking sees the whole body, not
  // the shortened snippet, so a secret cut by the shortening cannot leak half of itself).
  const std::string redacted = redact_secrets(fetched.body, secrets());
  const std::string body = redacted.empty() ? "" : fmt::format(" ({})", snippet(redacted));
  switch (status) {
    case 204:
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("{}: GET {} has no data (HTTP 204) for '{}'. Check the location "
                              "and the time range.",
                              name_, url, options_.location));
    case 400:
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{}: GET {} was rejected as a bad request (HTTP 400){}. Check the "
                              "location and the time range.",
                              name_, url, body));
    case 401:
    case 403:
      throw Error(ErrorCode::kPermissionDenied,
                  fmt::format("{}: GET {} was refused (HTTP {}){}. Check {}, and that the account "
                              "may access this location.",
                              name_, url, status, body, credentials_hint_));
    case 404:
      throw Error(ErrorCode::kNotFound,
                  fmt::format("{}: GET {} found nothing (HTTP 404){}. Check the location ('{}') "
                              "and the base URL.",
                              name_, url, body, options_.location));
    case 501:
      throw Error(ErrorCode::kNotSupported,
                  fmt::format("{}: GET {}: the service does not implement this for its data "
                              "source (HTTP 501){}. Use another endpoint or data source.",
                              name_, url, body));
    default:
      throw Error(
          ErrorCode::kUnavailable,
          fmt::format("{}: GET {} answered HTTP {}{}. Try again later.", name_, url, status, body));
  }
}

std::vector<std::string> HttpProvider::secrets() const {
  return {options_.credentials.api_key, options_.credentials.password};
}

nlohmann::json HttpProvider::parse_json(const Fetched& fetched, const std::string& url) const {
  try {
    return nlohmann::json::parse(fetched.body);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: the answer to GET {} is not valid JSON (truncated or not JSON: "
                            "syntax error at byte {} of {}). Try again; if it persists, the "
                            "service is misbehaving.",
                            name_, url, e.byte, fetched.body.size()));
  } catch (const nlohmann::json::exception& e) {
    // A number past the range of a double ("2e310") is out_of_range, not a parse_error.
    throw Error(ErrorCode::kParse,
                fmt::format("{}: the answer to GET {} is not JSON chase can read ({}). Try again; "
                            "if it persists, the service is misbehaving.",
                            name_, url, e.what()));
  }
}

std::string HttpProvider::shape_message(const std::string& url, std::string_view detail) const {
  return fmt::format(
      "{}: the answer to GET {} does not have the expected shape ({}). Check the "
      "base URL points at the right service and API version.",
      name_, url, detail);
}

UtcTime HttpProvider::parse_time(const nlohmann::json& value, const std::string& url) const {
  if (value.is_string()) {
    if (const auto time = parse_utc_time(value.get<std::string>())) return *time;
  }
  throw Error(ErrorCode::kParse,
              shape_message(url, fmt::format("{} is not an ISO 8601 time", value.dump())));
}

std::optional<double> HttpProvider::parse_value(const nlohmann::json& value,
                                                const std::string& url) const {
  if (value.is_null()) return std::nullopt;
  if (value.is_number()) return value.get<double>();
  throw Error(ErrorCode::kParse,
              shape_message(url, fmt::format("{} is not a number or null", value.dump())));
}

void HttpProvider::check_unit(const nlohmann::json& object, const std::string& url) const {
  if (!object.is_object()) return;
  for (const char* field : {"unit", "units"}) {
    const auto it = object.find(field);
    if (it == object.end() || it->is_null()) continue;
    const std::string unit = it->is_string() ? it->get<std::string>() : it->dump();
    std::string lower = unit;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::erase_if(lower, [](char c) { return c == ' ' || c == '_'; });
    if (lower == "gco2eq/kwh" || lower == "gco2/kwh" || lower == "gco2e/kwh") continue;
    throw Error(ErrorCode::kParse,
                fmt::format("{}: the answer to GET {} is in '{}', not gCO2eq/kWh (wrong units); "
                            "chase cannot convert it. Check the endpoint and its options.",
                            name_, url, unit));
  }
}

std::chrono::seconds HttpProvider::history_ttl(UtcTime end) const {
  return clock_->utc_now() - end > kSettledAfter ? kPastHistoryTtl : kRecentHistoryTtl;
}

CarbonPoint HttpProvider::last_point(const CarbonSeries& series,
                                     const std::string& no_value_message) {
  if (series.empty()) throw Error(ErrorCode::kUnavailable, no_value_message);
  return CarbonPoint{series.times().back(), series.values().back(), series.resolution(),
                     series.is_estimated(series.size() - 1)};
}

void HttpProvider::note(CarbonFetchNotes& notes, std::string message) const {
  spdlog::warn("{}", message);
  notes.messages.push_back(std::move(message));
}

void HttpProvider::note_short_forecast(const CarbonSeries& series, UtcTime wanted_end,
                                       CarbonFetchNotes& notes) const {
  if (series.empty()) {
    note(notes, fmt::format("{}: the forecast for '{}' has no points from now on.", name_,
                            options_.location));
  } else if (series.end() < wanted_end) {
    note(notes, fmt::format("{}: the forecast for '{}' ends at {}, before the horizon asked for "
                            "({}); the service has no further forecast.",
                            name_, options_.location, format_utc_time(series.end()),
                            format_utc_time(wanted_end)));
  }
}

std::chrono::seconds HttpProvider::clamp_horizon(std::chrono::seconds horizon,
                                                 std::chrono::seconds longest,
                                                 CarbonFetchNotes& notes) const {
  if (horizon <= longest) return horizon;
  note(notes, fmt::format("{}: the service forecasts at most {} h ahead; the horizon of {} h was "
                          "clamped to {} h.",
                          name_, longest.count() / 3600,
                          static_cast<double>(horizon.count()) / 3600.0, longest.count() / 3600));
  return longest;
}

std::string iso_seconds(UtcTime time) {
  return format_utc_time(std::chrono::floor<std::chrono::seconds>(time));
}

std::string iso_minutes(UtcTime time) {
  const auto minutes = std::chrono::floor<std::chrono::minutes>(time);
  std::string text = format_utc_time(minutes);  // "YYYY-MM-DDThh:mm:00Z"
  return text.substr(0, 16) + "Z";
}

}  // namespace chase::detail
