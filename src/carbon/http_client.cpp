#include "carbon/http_client.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "chase/error.h"

namespace chase::detail {

namespace {

constexpr std::size_t kMaxHeaderBytes = 1 << 20;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// The body collected up to a cap: a response that never ends must not grow without limit.
struct BodySink {
  std::string* body;
  std::size_t max_bytes;
  bool exceeded = false;
};

std::size_t write_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto& sink = *static_cast<BodySink*>(user);
  const std::size_t bytes = size * count;
  if (sink.body->size() + bytes > sink.max_bytes) {
    sink.exceeded = true;
    return 0;  // a short write makes libcurl abort the transfer (CURLE_WRITE_ERROR)
  }
  sink.body->append(data, bytes);
  return bytes;
}

std::string trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

// The headers, with a cap on their total size for the same reason as the body's.
struct HeaderSink {
  std::map<std::string, std::string>* headers;
  std::size_t bytes = 0;
  bool exceeded = false;
};

std::size_t write_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto& sink = *static_cast<HeaderSink*>(user);
  sink.bytes += size * count;
  if (sink.bytes > kMaxHeaderBytes) {
    sink.exceeded = true;
    return 0;
  }
  auto& headers = *sink.headers;
  const std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    headers.clear();  // a new response (after a redirect or a 100 Continue)
  } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    headers[name] = trim(line.substr(colon + 1));
  }
  return size * count;
}

// The user's no_proxy list plus the loopback names.
std::string loopback_no_proxy() {
  std::string list;
  for (const char* variable : {"no_proxy", "NO_PROXY"}) {
    if (const char* value = std::getenv(variable); value != nullptr && *value != '\0') {
      list = value;
      break;
    }
  }
  if (list == "*") return list;
  if (!list.empty()) list += ',';
  return list + "localhost,127.0.0.1,::1";
}

struct CurlDeleter {
  void operator()(CURL* curl) const noexcept { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};

// One attempt: the response, or the transport error.
struct Attempt {
  CURLcode code = CURLE_OK;
  std::string transport_error;
  HttpResponse response;
};

HttpTransport& transport_for_testing() {
  static HttpTransport transport;
  return transport;
}

Attempt perform(const HttpRequest& request, const HttpPayload& payload, const HttpOptions& options,
                const std::string& provider) {
  if (const HttpTransport& transport = transport_for_testing()) {
    Attempt attempt;
    attempt.response = transport(request);
    return attempt;
  }
  global_init();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) throw Error(ErrorCode::kInternal, "libcurl could not create a handle.");
  Attempt attempt;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  for (const auto& [name, value] : request.headers) {
    const std::string line = name + ": " + value;
    curl_slist* appended = curl_slist_append(headers.get(), line.c_str());
    if (appended == nullptr) throw Error(ErrorCode::kInternal, "libcurl could not add a header.");
    static_cast<void>(headers.release());
    headers.reset(appended);
  }
  char error_buffer[CURL_ERROR_SIZE] = {};
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, request.url.c_str());
  if (payload.method == "GET") {
    curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, payload.method.c_str());
    curl_easy_setopt(handle, CURLOPT_POSTFIELDS, payload.body.c_str());
    curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(payload.body.size()));
  }
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(handle, CURLOPT_MAXREDIRS, 3L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::max<std::int64_t>(1, options.connect_timeout.count())));
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(std::max<std::int64_t>(1, options.timeout.count())));
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(handle, CURLOPT_USERAGENT, "chase-carbon/1");
  // Proxies from the environment are honoured, except for the loopback interface.
  const std::string no_proxy = loopback_no_proxy();
  curl_easy_setopt(handle, CURLOPT_NOPROXY, no_proxy.c_str());
  curl_easy_setopt(handle, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());
  BodySink body{&attempt.response.body, options.max_body_bytes};
  HeaderSink header{&attempt.response.headers};
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &write_body);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, &write_header);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &header);
  if (request.basic_auth) {
    curl_easy_setopt(handle, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(handle, CURLOPT_USERNAME, request.basic_auth->first.c_str());
    curl_easy_setopt(handle, CURLOPT_PASSWORD, request.basic_auth->second.c_str());
  }
  attempt.code = curl_easy_perform(handle);
  if (body.exceeded || header.exceeded) {
    // Not a transient failure: the same request would send the same endless answer again.
    throw Error(
        ErrorCode::kUnavailable,
        fmt::format("{}: {} {}: the response's {} exceeded {} MiB, far more than any carbon "
                    "data; the transfer was stopped. Check the provider's base URL (it "
                    "may point at a file or a stream rather than the API)",
                    provider, payload.method, request.url, body.exceeded ? "body" : "headers",
                    (body.exceeded ? options.max_body_bytes : kMaxHeaderBytes) >> 20));
  }
  if (attempt.code != CURLE_OK) {
    attempt.transport_error =
        error_buffer[0] != '\0' ? std::string(error_buffer) : curl_easy_strerror(attempt.code);
    return attempt;
  }
  long status = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  attempt.response.status = status;
  return attempt;
}

bool transient_transport(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

// 501 Not Implemented will not change by asking again.
bool transient_status(long status) {
  return status == 429 || (status >= 500 && status <= 599 && status != 501);
}

std::chrono::milliseconds backoff(const RetryPolicy& policy, int retry) {
  double wait = static_cast<double>(policy.base_backoff.count());
  for (int i = 1; i < retry && wait < static_cast<double>(policy.max_backoff.count()); ++i) {
    wait *= 2;
  }
  wait = std::min(wait, static_cast<double>(policy.max_backoff.count()));
  if (policy.jitter) {
    thread_local std::mt19937_64 random{std::random_device{}()};
    wait *= std::uniform_real_distribution<double>(0.5, 1.0)(random);
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(wait));
}

std::string advice(long status) {
  if (status == 429) {
    return "the service is rate-limiting this client: wait a few minutes, ask less often "
           "(keep the cache on) or check the plan of the account";
  }
  return "the service is failing: try again later or check its status page";
}

}  // namespace

void set_http_transport_for_testing(HttpTransport transport) {
  transport_for_testing() = std::move(transport);
}

HttpClient::HttpClient(std::string provider, HttpOptions options)
    : provider_(std::move(provider)), options_(std::move(options)) {}

HttpResponse HttpClient::get(const HttpRequest& request) const {
  return send(request, HttpPayload{"GET", {}});
}

HttpResponse HttpClient::send(const HttpRequest& request, const HttpPayload& payload) const {
  const int attempts = std::max(1, options_.retry.max_attempts);
  std::string last_problem;
  bool last_was_status = false;
  long last_status = 0;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    Attempt result = perform(request, payload, options_, provider_);
    std::optional<std::chrono::milliseconds> wait;
    if (result.code != CURLE_OK) {
      if (!transient_transport(result.code)) {
        throw Error(ErrorCode::kUnavailable,
                    fmt::format("{}: {} {} failed: {}. Check the provider's base URL.", provider_,
                                payload.method, request.url, result.transport_error));
      }
      last_was_status = false;
      last_problem = result.code == CURLE_OPERATION_TIMEDOUT
                         ? fmt::format("no answer within {} ms ({})", options_.timeout.count(),
                                       result.transport_error)
                         : result.transport_error;
    } else if (transient_status(result.response.status)) {
      last_was_status = true;
      last_status = result.response.status;
      last_problem = fmt::format("HTTP {}", last_status);
      if (const auto it = result.response.headers.find("retry-after");
          it != result.response.headers.end()) {
        const UtcTime now =
            options_.clock ? options_.clock->utc_now() : UtcTime(std::chrono::system_clock::now());
        if (const auto seconds = parse_retry_after(it->second, now)) {
          wait = std::min<std::chrono::milliseconds>(*seconds, options_.retry.max_backoff);
          last_problem += fmt::format(" (Retry-After: {} s)", seconds->count());
        }
      }
    } else {
      return std::move(result.response);
    }
    if (attempt == attempts) break;
    const auto delay = wait.value_or(backoff(options_.retry, attempt));
    if (options_.sleep) {
      options_.sleep(delay);
    } else {
      std::this_thread::sleep_for(delay);
    }
  }
  const std::string what_to_do =
      last_was_status ? advice(last_status)
                      : "check the network and the provider's base URL, or raise the timeout";
  throw Error(
      ErrorCode::kUnavailable,
      fmt::format("{}: {} {} failed after {} attempt{}: {}; {}.", provider_, payload.method,
                  request.url, attempts, attempts == 1 ? "" : "s", last_problem, what_to_do));
}

std::string url_encode(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned>(u));
    }
  }
  return out;
}

std::string make_url(std::string_view base, std::string_view path,
                     const std::vector<std::pair<std::string, std::string>>& query) {
  std::string url(base);
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += path;
  char separator = '?';
  for (const auto& [key, value] : query) {
    if (value.empty()) continue;
    url += separator;
    url += key;
    url += '=';
    url += url_encode(value);
    separator = '&';
  }
  return url;
}

namespace {

// An IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT", RFC 9110 section 5.6.7), the only date form a
// sender may generate; nullopt for anything else.
std::optional<UtcTime> parse_http_date(const std::string& text) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char weekday[4] = {};
  char month_name[4] = {};
  char zone[4] = {};
  int day = 0;
  int year = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%3[A-Za-z], %2d %3s %4d %2d:%2d:%2d %3s%n", weekday, &day,
                  month_name, &year, &hour, &minute, &second, zone, &consumed) != 8 ||
      static_cast<std::size_t>(consumed) != text.size() || std::string_view(zone) != "GMT" ||
      std::string_view(weekday).size() != 3 || text[3] != ',') {
    return std::nullopt;
  }
  const auto month = std::find(kMonths.begin(), kMonths.end(), std::string_view(month_name));
  if (month == kMonths.end() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  // UtcTime counts nanoseconds, which end in 2262: a later year (found by fuzz/time_fuzz.cpp)
  // would overflow, and no service means a wait of centuries.
  if (year < 1970 || year > 2200) return std::nullopt;
  const std::chrono::year_month_day date{
      std::chrono::year(year),
      std::chrono::month(static_cast<unsigned>(month - kMonths.begin() + 1)),
      std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return std::nullopt;
  return UtcTime(std::chrono::sys_days(date)) + std::chrono::hours(hour) +
         std::chrono::minutes(minute) + std::chrono::seconds(second);
}

}  // namespace

std::optional<std::chrono::seconds> parse_retry_after(const std::string& value, UtcTime now) {
  const std::string text = trim(value);
  long long seconds = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (!text.empty() && error == std::errc{} && end == text.data() + text.size() && seconds >= 0) {
    return std::chrono::seconds(seconds);
  }
  const auto date = parse_http_date(text);
  if (!date) return std::nullopt;
  // Whole seconds, rounded up so that the wait never ends before the date.
  return std::max(std::chrono::seconds(0), std::chrono::ceil<std::chrono::seconds>(*date - now));
}

std::optional<std::chrono::seconds> parse_retry_after(const std::string& value) {
  return parse_retry_after(value, UtcTime(std::chrono::system_clock::now()));
}

}  // namespace chase::detail
