#include "carbon/http_client.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "chase/error.h"

namespace chase::detail {

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::size_t write_body(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
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

std::size_t write_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto& headers = *static_cast<std::map<std::string, std::string>*>(user);
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

Attempt perform(const HttpRequest& request, const HttpOptions& options) {
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
  curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L);
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
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &write_body);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &attempt.response.body);
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, &write_header);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &attempt.response.headers);
  if (request.basic_auth) {
    curl_easy_setopt(handle, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(handle, CURLOPT_USERNAME, request.basic_auth->first.c_str());
    curl_easy_setopt(handle, CURLOPT_PASSWORD, request.basic_auth->second.c_str());
  }
  attempt.code = curl_easy_perform(handle);
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
  const int attempts = std::max(1, options_.retry.max_attempts);
  std::string last_problem;
  bool last_was_status = false;
  long last_status = 0;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    Attempt result = perform(request, options_);
    std::optional<std::chrono::milliseconds> wait;
    if (result.code != CURLE_OK) {
      if (!transient_transport(result.code)) {
        throw Error(ErrorCode::kUnavailable,
                    fmt::format("{}: GET {} failed: {}. Check the provider's base URL.", provider_,
                                request.url, result.transport_error));
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
        if (const auto seconds = parse_retry_after(it->second)) {
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
  throw Error(ErrorCode::kUnavailable,
              fmt::format("{}: GET {} failed after {} attempt{}: {}; {}.", provider_, request.url,
                          attempts, attempts == 1 ? "" : "s", last_problem, what_to_do));
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

std::optional<std::chrono::seconds> parse_retry_after(const std::string& value) {
  const std::string text = trim(value);
  long long seconds = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || seconds < 0) {
    return std::nullopt;
  }
  return std::chrono::seconds(seconds);
}

}  // namespace chase::detail
