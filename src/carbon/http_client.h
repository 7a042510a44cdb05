// Internal: the one HTTP client of the carbon-intensity providers, over libcurl.
//
// get() sends a GET (send(), a request with a method and body) with the given headers (and HTTP
// Basic credentials when set), with a connect timeout and a total timeout, and retries with
// exponential backoff and jitter on 429, 5xx (not 501), timeouts and connection failures, honouring
// a Retry-After of seconds or an HTTP date (capped at the policy's max_backoff). Any other status
// is returned to the caller to interpret. When the retries are spent it throws kUnavailable naming
// the provider, the URL, the last status or transport error and what to do. Header values (which
// may hold secrets) never appear in messages. A body larger than max_body_bytes (or headers past 1
// MiB) stops the transfer and throws kUnavailable at once, not retried: a response that never ends
// cannot exhaust memory.
//
// Thread safety: an HttpClient may be used from several threads (each get() has its own handle).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chase/carbon_provider.h"

namespace chase::detail {

// Ample for any provider's answer (a year of 5-minute points is a few MiB).
inline constexpr std::size_t kDefaultMaxResponseBytes = std::size_t{64} << 20;

struct HttpRequest {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::pair<std::string, std::string>> basic_auth;  // user, password
};

// What send() sends besides the request: a method other than GET and its body (the Pushgateway
// reporter's PUT).
struct HttpPayload {
  std::string method;
  std::string body;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds timeout{30'000};
  RetryPolicy retry;
  SleepFunction sleep;  // empty: std::this_thread::sleep_for
  // 'now', to turn a Retry-After date into a wait; null: the system clock.
  std::shared_ptr<Clock> clock;
  std::size_t max_body_bytes = kDefaultMaxResponseBytes;
};

class HttpClient {
 public:
  HttpClient(std::string provider, HttpOptions options);
  HttpResponse get(const HttpRequest& request) const;
  HttpResponse send(const HttpRequest& request, const HttpPayload& payload) const;
  const std::string& provider() const noexcept { return provider_; }

 private:
  std::string provider_;
  HttpOptions options_;
};

// Replaces the network for every HttpClient of the process while set (the fuzz targets in fuzz/):
// each attempt of get() takes its response from `transport` instead of libcurl; retries, statuses
// and Retry-After are handled as for the network. Empty restores libcurl. Set it before any
// provider runs and never while one does (the function is not synchronised).
using HttpTransport = std::function<HttpResponse(const HttpRequest&)>;
void set_http_transport_for_testing(HttpTransport transport);

// Percent-encodes a query parameter value.
std::string url_encode(std::string_view text);
// base + path + "?k=v&..." (values encoded; empty values left out).
std::string make_url(std::string_view base, std::string_view path,
                     const std::vector<std::pair<std::string, std::string>>& query = {});
// Retry-After as a wait: delta-seconds, or an HTTP date (IMF-fixdate, "Wed, 21 Oct 2015 07:28:00
// GMT") less `now` (a date already past is no wait); nullopt when absent or neither.
std::optional<std::chrono::seconds> parse_retry_after(const std::string& value, UtcTime now);
// The same with the system clock's now.
std::optional<std::chrono::seconds> parse_retry_after(const std::string& value);

}  // namespace chase::detail
