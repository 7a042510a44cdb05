// Internal (chased): HTTP/1.1 messages as the daemon and its client speak them, and an incremental
// parser for untrusted bytes off a socket.
//
// Contract: HttpParser takes bytes as they arrive (feed()) and yields one complete message at a
// time. It accepts the subset of HTTP/1.1 (RFC 9112) the daemon needs: a request line (or, in
// response mode, a status line), header fields, and a body framed by Content-Length. Everything
// else is refused with the status the RFC asks for and a message saying what was wrong: a malformed
// start line or header (400), a head over kMaxHeadBytes (431), a body over the parser's body limit
// (413), Transfer-Encoding (501: chunked bodies are not accepted, send Content-Length), an HTTP
// version other than 1.0/1.1 (505). After an error the parser stays failed: the connection must
// be closed, since the framing of whatever follows is unknown. No input makes it crash, allocate
// more than its limits, or loop (fuzz/http_request_fuzz.cpp).
//
// Thread safety: a parser belongs to one connection, used from one thread at a time.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chase::server {

inline constexpr std::size_t kMaxHeadBytes = 16 * 1024;
inline constexpr std::size_t kDefaultMaxBodyBytes = 64 * 1024;

struct HttpMessage {
  // Requests: method and target ("/gpus/0/power_limit?x=1"); responses: status and reason.
  std::string method;
  std::string target;
  int status = 0;
  std::string reason;
  int minor_version = 1;                                     // HTTP/1.<minor>
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;

  // The first header of that (lower-case) name, if any.
  std::optional<std::string_view> header(std::string_view lower_name) const;
  // Whether the connection stays open after this message (HTTP/1.1 default, "Connection: close").
  bool keep_alive() const;
  // The target without its query string.
  std::string_view path() const;
};

// A refusal of malformed input: the status to answer with and why.
struct HttpError {
  int status = 400;
  std::string message;
};

class HttpParser {
 public:
  enum class Mode { kRequest, kResponse };
  explicit HttpParser(Mode mode, std::size_t max_body_bytes = kDefaultMaxBodyBytes)
      : mode_(mode), max_body_bytes_(max_body_bytes) {}

  // Appends bytes from the peer. Returns false once the parser has failed (see error()).
  bool feed(std::string_view bytes);
  // The next complete message, removing it from the buffer; nullopt when more bytes are needed or
  // the parser failed.
  std::optional<HttpMessage> next();
  const std::optional<HttpError>& error() const noexcept { return error_; }
  // Bytes received and not yet returned as a message.
  std::size_t buffered() const noexcept { return buffer_.size(); }

 private:
  bool parse_head(std::string_view head, HttpMessage& message);
  bool parse_start_line(std::string_view line, HttpMessage& message);
  bool fail(int status, std::string message);

  Mode mode_;
  std::size_t max_body_bytes_;
  std::string buffer_;
  std::optional<HttpError> error_;
};

// "HTTP/1.1 200 OK" and the standard reason phrases of the statuses the daemon uses.
std::string_view reason_phrase(int status);

// A response with Content-Length, Content-Type and Connection headers.
std::string format_response(int status, std::string_view content_type, std::string_view body,
                            bool keep_alive,
                            const std::vector<std::pair<std::string, std::string>>& extra = {});
// A request with Host, Content-Length (when there is a body) and the given extra headers.
std::string format_request(std::string_view method, std::string_view target, std::string_view body,
                           const std::vector<std::pair<std::string, std::string>>& extra = {});

}  // namespace chase::server
