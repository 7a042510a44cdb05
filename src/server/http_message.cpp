// The daemon's HTTP/1.1 framing (contract: server/http_message.h). Strict where strictness keeps
// the framing unambiguous (Content-Length only, no obsolete line folding, one Content-Length),
// lenient where RFC 9112 allows it (empty lines before a request line).
#include "server/http_message.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "common/text.h"

namespace chase::server {
namespace {

constexpr std::size_t kMaxTargetBytes = 2048;
constexpr std::size_t kMaxHeaderCount = 64;
constexpr std::string_view kCrlf = "\r\n";

// RFC 9110 token characters.
bool is_token_char(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), is_token_char);
}

// Field values: visible ASCII, space, tab and obs-text (bytes >= 0x80); no other control bytes.
bool is_field_value(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte == '\t' || byte >= 0x20 ? byte != 0x7f : false;
  });
}

std::string_view trim_whitespace(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "HTTP/1.0" or "HTTP/1.1" → minor version; -1 for another well-formed version, -2 for garbage.
int parse_version(std::string_view text) {
  if (text.size() != 8 || !text.starts_with("HTTP/") || text[6] != '.' ||
      !std::isdigit(static_cast<unsigned char>(text[5])) ||
      !std::isdigit(static_cast<unsigned char>(text[7]))) {
    return -2;
  }
  if (text[5] != '1' || (text[7] != '0' && text[7] != '1')) return -1;
  return text[7] - '0';
}

// Content-Length: decimal digits only (no sign, no spaces inside), at most `limit`.
std::optional<std::size_t> parse_length(std::string_view text, std::size_t limit, bool& too_big) {
  too_big = false;
  if (text.empty() || text.size() > 19 || !std::all_of(text.begin(), text.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      })) {
    return std::nullopt;
  }
  std::size_t value = 0;
  for (char c : text) value = value * 10 + static_cast<std::size_t>(c - '0');
  too_big = value > limit;
  return value;
}

}  // namespace

std::optional<std::string_view> HttpMessage::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return std::string_view(value);
  }
  return std::nullopt;
}

bool HttpMessage::keep_alive() const {
  const auto connection = header("connection");
  const std::string value = connection ? lower(*connection) : std::string();
  if (value.find("close") != std::string::npos) return false;
  if (minor_version == 0) return value.find("keep-alive") != std::string::npos;
  return true;
}

std::string_view HttpMessage::path() const {
  const std::string_view full(target);
  return full.substr(0, full.find('?'));
}

bool HttpParser::fail(int status, std::string message) {
  error_ = HttpError{status, std::move(message)};
  buffer_.clear();
  buffer_.shrink_to_fit();
  return false;
}

bool HttpParser::feed(std::string_view bytes) {
  if (error_) return false;
  buffer_.append(bytes);
  return true;
}

bool HttpParser::parse_start_line(std::string_view line, HttpMessage& message) {
  const auto first_space = line.find(' ');
  const auto last_space = line.rfind(' ');
  if (first_space == std::string_view::npos ||
      (mode_ == Mode::kRequest && first_space == last_space)) {
    return fail(
        400, fmt::format("malformed {} line '{}'", mode_ == Mode::kRequest ? "request" : "status",
                         escape_untrusted(line, 80)));
  }
  if (mode_ == Mode::kResponse) {
    const int version = parse_version(line.substr(0, first_space));
    const auto rest = line.substr(first_space + 1);
    const auto code = rest.substr(0, rest.find(' '));
    if (version < 0 || code.size() != 3 || !std::all_of(code.begin(), code.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      return fail(400, fmt::format("malformed status line '{}'", escape_untrusted(line, 80)));
    }
    message.minor_version = version;
    message.status = std::stoi(std::string(code));
    message.reason = rest.size() > 4 ? std::string(rest.substr(4)) : std::string();
    return true;
  }
  const auto method = line.substr(0, first_space);
  const auto target = line.substr(first_space + 1, last_space - first_space - 1);
  const int version = parse_version(line.substr(last_space + 1));
  if (!is_token(method)) {
    return fail(400, fmt::format("malformed method '{}'", escape_untrusted(method, 40)));
  }
  if (version == -2) {
    return fail(400, fmt::format("malformed HTTP version in the request line '{}'",
                                 escape_untrusted(line, 80)));
  }
  if (version == -1) return fail(505, "only HTTP/1.0 and HTTP/1.1 are supported");
  if (target.size() > kMaxTargetBytes) {
    return fail(414, fmt::format("the request target is longer than {} bytes", kMaxTargetBytes));
  }
  if (target.empty() || target.front() != '/' ||
      !std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return fail(400, fmt::format("malformed request target '{}' (expected a path such as /gpus)",
                                 escape_untrusted(target, 80)));
  }
  message.method = std::string(method);
  message.target = std::string(target);
  message.minor_version = version;
  return true;
}

bool HttpParser::parse_head(std::string_view head, HttpMessage& message) {
  const auto line_end = head.find(kCrlf);
  if (!parse_start_line(head.substr(0, line_end), message)) return false;
  std::string_view rest =
      line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    const auto end = rest.find(kCrlf);
    const auto line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    if (line.empty()) continue;
    if (line.front() == ' ' || line.front() == '\t') {
      return fail(400, "obsolete line folding in a header field is not accepted");
    }
    const auto colon = line.find(':');
    const auto name = line.substr(0, colon);
    if (colon == std::string_view::npos || !is_token(name)) {
      return fail(400, fmt::format("malformed header line '{}'", escape_untrusted(line, 80)));
    }
    const auto value = trim_whitespace(line.substr(colon + 1));
    if (!is_field_value(value)) {
      return fail(400, fmt::format("control characters in the value of header '{}'",
                                   escape_untrusted(name, 40)));
    }
    if (message.headers.size() == kMaxHeaderCount) {
      return fail(431, fmt::format("more than {} header fields", kMaxHeaderCount));
    }
    message.headers.emplace_back(lower(name), std::string(value));
  }
  return true;
}

std::optional<HttpMessage> HttpParser::next() {
  if (error_) return std::nullopt;
  // RFC 9112 2.2: ignore empty lines before a request line.
  std::size_t start = 0;
  while (buffer_.compare(start, 2, kCrlf) == 0) start += 2;
  if (start > 0) buffer_.erase(0, start);

  const auto head_end = buffer_.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    if (buffer_.size() > kMaxHeadBytes) {
      fail(431, fmt::format("the request head is longer than {} bytes", kMaxHeadBytes));
    }
    return std::nullopt;
  }
  if (head_end > kMaxHeadBytes) {
    fail(431, fmt::format("the request head is longer than {} bytes", kMaxHeadBytes));
    return std::nullopt;
  }
  HttpMessage message;
  if (!parse_head(std::string_view(buffer_).substr(0, head_end), message)) return std::nullopt;
  if (message.header("transfer-encoding")) {
    fail(501, "Transfer-Encoding (chunked bodies) is not supported: send Content-Length");
    return std::nullopt;
  }
  std::size_t body_length = 0;
  std::optional<std::string> seen_length;
  for (const auto& [name, value] : message.headers) {
    if (name != "content-length") continue;
    if (seen_length && *seen_length != value) {
      fail(400, "two different Content-Length headers");
      return std::nullopt;
    }
    seen_length = value;
    bool too_big = false;
    const auto length = parse_length(value, max_body_bytes_, too_big);
    if (!length) {
      fail(400, fmt::format("malformed Content-Length '{}'", escape_untrusted(value, 40)));
      return std::nullopt;
    }
    if (too_big) {
      fail(413, fmt::format("the body ({} bytes) is over the limit of {} bytes", *length,
                            max_body_bytes_));
      return std::nullopt;
    }
    body_length = *length;
  }
  const std::size_t body_start = head_end + 4;
  if (buffer_.size() - body_start < body_length) return std::nullopt;
  message.body = buffer_.substr(body_start, body_length);
  buffer_.erase(0, body_start + body_length);
  return message;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string format_response(int status, std::string_view content_type, std::string_view body,
                            bool keep_alive,
                            const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
                                status, reason_phrase(status), content_type, body.size());
  if (!keep_alive) out += "Connection: close\r\n";
  for (const auto& [name, value] : extra) out += fmt::format("{}: {}\r\n", name, value);
  out += kCrlf;
  out += body;
  return out;
}

std::string format_request(std::string_view method, std::string_view target, std::string_view body,
                           const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string out = fmt::format("{} {} HTTP/1.1\r\nHost: chased\r\n", method, target);
  if (!body.empty() || method == "POST") {
    out += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  }
  for (const auto& [name, value] : extra) out += fmt::format("{}: {}\r\n", name, value);
  out += kCrlf;
  out += body;
  return out;
}

}  // namespace chase::server
