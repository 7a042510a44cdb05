// chased's sockets and event loop (contract: server/daemon_server.h).
#include "server/daemon_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>

#include "chase/error.h"
#include "common/text.h"
#include "server/tcp_access.h"

namespace chase::server {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kProcessLeaseCheck{200};
// A client that sends requests without reading the answers is not read from while this much is
// waiting for it, so it cannot make the daemon buffer without bound.
constexpr std::size_t kMaxPendingOutput = 1 << 20;
// The poll slots before the connections: wake, stop, Unix, metrics and API listeners.
constexpr std::size_t kListenerSlots = 5;

Error socket_error(const std::string& what, int error) {
  const ErrorCode code = error == EACCES || error == EPERM ? ErrorCode::kPermissionDenied
                         : error == EADDRINUSE             ? ErrorCode::kAlreadyExists
                                                           : ErrorCode::kUnavailable;
  return Error(code, fmt::format("chased: cannot {}: {}", what, std::strerror(error)));
}

// The JSON error body of a refusal made before any route ran.
std::string error_body(int status, const std::string& message) {
  const char* code = status == 503 ? "unavailable" : "parse";
  return nlohmann::json{{"error", message}, {"code", code}, {"status", status}}.dump() + "\n";
}

sockaddr_un unix_address(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.native().size() >= sizeof address.sun_path) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--socket '{}': a Unix socket path must have 1 to {} bytes",
                            escape_untrusted(path.string(), 200), sizeof address.sun_path - 1));
  }
  std::memcpy(address.sun_path, path.c_str(), path.native().size());
  return address;
}

// A live daemon answers a connect(); a stale socket file refuses it.
void clear_stale_socket(const std::filesystem::path& path) {
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0) return;
  if (!S_ISSOCK(status.st_mode)) {
    throw Error(ErrorCode::kAlreadyExists,
                fmt::format("--socket '{}' exists and is not a socket; remove it or choose "
                            "another path",
                            path.string()));
  }
  const sockaddr_un address = unix_address(path);
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) throw socket_error("create a socket", errno);
  const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int error = errno;
  std::string holder;
  if (rc == 0) {
    ucred peer{};
    socklen_t size = sizeof peer;
    if (::getsockopt(probe, SOL_SOCKET, SO_PEERCRED, &peer, &size) == 0) {
      holder = fmt::format(" (pid {})", peer.pid);
    }
  }
  ::close(probe);
  if (rc == 0) {
    throw Error(ErrorCode::kAlreadyExists,
                fmt::format("--socket '{}' is in use: a live daemon{} answers on it; stop it "
                            "first or choose another path",
                            path.string(), holder));
  }
  if (error != ECONNREFUSED) throw socket_error("probe '" + path.string() + "'", error);
  spdlog::warn(
      "chased: replacing the stale socket '{}' (nobody answers on it; a previous daemon "
      "ended without removing it)",
      path.string());
  ::unlink(path.c_str());
}

}  // namespace

struct DaemonServer::Connection {
  int fd = -1;
  std::uint64_t id = 0;
  bool metrics_only = false;
  bool needs_token = false;  // the TCP API: each request is authenticated by its bearer token
  HttpParser parser;
  Caller caller;
  std::string output;
  bool close_after_write = false;
  std::optional<Clock::time_point> partial_since;
  // A power stream in progress: what it reads, its framing and when its next line is due.
  std::optional<StreamRequest> stream;
  int stream_minor_version = 1;
  Clock::time_point stream_due{};

  Connection(int socket_fd, std::uint64_t connection_id, bool metrics, std::size_t max_body)
      : fd(socket_fd),
        id(connection_id),
        metrics_only(metrics),
        parser(HttpParser::Mode::kRequest, max_body) {}
};

std::pair<std::string, std::uint16_t> parse_listen_address(const std::string& text,
                                                           std::string_view option) {
  const auto colon = text.rfind(':');
  std::string host = colon == std::string::npos ? std::string() : text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port_text = colon == std::string::npos ? std::string() : text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || port_text.empty() || error != std::errc() ||
      end != port_text.data() + port_text.size() || port > 65535) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} '{}': expected HOST:PORT, e.g. 127.0.0.1:9400", option,
                            escape_untrusted(text, 100)));
  }
  return {host, static_cast<std::uint16_t>(port)};
}

DaemonServer::DaemonServer(DaemonService& service, ServerOptions options)
    : service_(service), options_(std::move(options)) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw socket_error("create an eventfd", errno);

  const sockaddr_un address = unix_address(options_.socket_path);
  clear_stale_socket(options_.socket_path);
  unix_listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (unix_listener_ < 0) throw socket_error("create a Unix socket", errno);
  // The socket is created with the final mode: no window in which it is more open than asked.
  const mode_t previous_mask = ::umask(static_cast<mode_t>(~options_.socket_mode & 0777));
  const int bound =
      ::bind(unix_listener_, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int bind_error = errno;
  ::umask(previous_mask);
  if (bound != 0) throw socket_error("bind '" + options_.socket_path.string() + "'", bind_error);
  if (::chmod(options_.socket_path.c_str(), options_.socket_mode) != 0 ||
      ((options_.socket_owner || options_.socket_group) &&
       ::chown(options_.socket_path.c_str(), options_.socket_owner.value_or(static_cast<uid_t>(-1)),
               options_.socket_group.value_or(static_cast<gid_t>(-1))) != 0)) {
    throw socket_error("set the owner and mode of '" + options_.socket_path.string() + "'", errno);
  }
  struct stat status {};
  if (::stat(options_.socket_path.c_str(), &status) == 0) socket_inode_ = status.st_ino;
  if (::listen(unix_listener_, 128) != 0) throw socket_error("listen", errno);

  if (!options_.api_listen.empty()) {
    if (!options_.token_key) {
      throw Error(ErrorCode::kInvalidArgument,
                  "--listen needs --token-key: over TCP the daemon cannot tell who connects, so "
                  "every request must carry a token signed with that key");
    }
    const TcpListener api = open_tcp_listener(options_.api_listen, "--listen");
    api_listener_ = api.fd;
    api_port_ = api.port;
  }
  if (options_.metrics_listen.empty()) return;
  const TcpListener metrics = open_tcp_listener(options_.metrics_listen, "--metrics-listen");
  metrics_listener_ = metrics.fd;
  metrics_port_ = metrics.port;
}

DaemonServer::~DaemonServer() {
  for (auto& [id, connection] : connections_) ::close(connection->fd);
  for (int fd : {unix_listener_, metrics_listener_, api_listener_, wake_fd_}) {
    if (fd >= 0) ::close(fd);
  }
  // Remove the socket file only if it is still ours (not one a later daemon bound).
  struct stat status {};
  if (unix_listener_ >= 0 && ::stat(options_.socket_path.c_str(), &status) == 0 &&
      status.st_ino == socket_inode_) {
    ::unlink(options_.socket_path.c_str());
  }
}

void DaemonServer::stop() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(wake_fd_, &one, sizeof one);
}

void DaemonServer::accept_all(int listener, bool metrics_only, bool needs_token) {
  while (true) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        spdlog::warn("chased: accept failed: {}", std::strerror(errno));
      }
      return;
    }
    if (connections_.size() >= options_.max_connections) {
      const std::string busy = format_response(
          503, "application/json",
          error_body(503, fmt::format("chased serves at most {} connections at once; try again "
                                      "later",
                                      options_.max_connections)),
          false);
      [[maybe_unused]] const auto sent = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL);
      ::close(fd);
      continue;
    }
    auto connection =
        std::make_unique<Connection>(fd, next_connection_++, metrics_only, options_.max_body_bytes);
    connection->caller.connection = connection->id;
    connection->caller.metrics_only = metrics_only;
    connection->needs_token = needs_token;
    if (!metrics_only && !needs_token) connection->caller.credentials = peer_credentials(fd);
    connections_.emplace(connection->id, std::move(connection));
  }
}

void DaemonServer::read_from(Connection& connection) {
  std::array<char, 16384> buffer{};
  while (!connection.close_after_write && connection.output.size() < kMaxPendingOutput) {
    const auto got = ::recv(connection.fd, buffer.data(), buffer.size(), 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      close_connection(connection.id);  // the peer went away: its leases end
      return;
    }
    if (got < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (connection.stream) continue;  // a stream takes no more requests: input is dropped
    connection.parser.feed(std::string_view(buffer.data(), static_cast<std::size_t>(got)));
    while (auto request = connection.parser.next()) {
      Caller caller = connection.caller;  // a token is per request, not per connection
      const auto refused = connection.needs_token
                               ? authenticate(*request, *options_.token_key, caller)
                               : std::nullopt;
      Reply reply = refused ? *refused : service_.handle(*request, caller);
      if (reply.stream) {
        start_stream(connection, *request, std::move(*reply.stream));
        break;
      }
      const bool keep_alive = request->keep_alive();
      if (request->method == "HEAD") reply.body.clear();
      connection.output +=
          reply.status == 401
              ? format_response(reply.status, reply.content_type, reply.body, keep_alive,
                                {{"WWW-Authenticate", "Bearer"}})
              : format_response(reply.status, reply.content_type, reply.body, keep_alive);
      if (!keep_alive) {
        connection.close_after_write = true;
        break;
      }
    }
    if (const auto& error = connection.parser.error()) {
      connection.output += format_response(error->status, "application/json",
                                           error_body(error->status, error->message), false);
      connection.close_after_write = true;
    }
  }
  if (connection.parser.buffered() == 0 || connection.stream) {
    connection.partial_since.reset();
  } else if (!connection.partial_since) {
    connection.partial_since = Clock::now();
  }
  write_to(connection);
}

void DaemonServer::write_to(Connection& connection) {
  while (!connection.output.empty()) {
    const auto sent =
        ::send(connection.fd, connection.output.data(), connection.output.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      close_connection(connection.id);
      return;
    }
    connection.output.erase(0, static_cast<std::size_t>(sent));
  }
  if (connection.close_after_write) close_connection(connection.id);
}

void DaemonServer::close_connection(std::uint64_t id) {
  const auto found = connections_.find(id);
  if (found == connections_.end()) return;
  ::close(found->second->fd);
  connections_.erase(found);
  service_.connection_closed(id);
}

void DaemonServer::expire_slow_requests() {
  const auto now = Clock::now();
  std::vector<std::uint64_t> slow;
  for (auto& [id, connection] : connections_) {
    if (connection->partial_since && now - *connection->partial_since > options_.request_timeout) {
      slow.push_back(id);
    }
  }
  for (auto id : slow) {
    auto& connection = *connections_.at(id);
    connection.output += format_response(
        408, "application/json",
        error_body(408, fmt::format("the request stayed incomplete for more than {} ms",
                                    options_.request_timeout.count())),
        false);
    connection.close_after_write = true;
    write_to(connection);
  }
}

void DaemonServer::start_stream(Connection& connection, const HttpMessage& request,
                                StreamRequest stream) {
  const auto streams = static_cast<std::size_t>(
      std::count_if(connections_.begin(), connections_.end(),
                    [](const auto& entry) { return entry.second->stream.has_value(); }));
  if (streams >= kMaxPowerStreams) {
    connection.output += format_response(
        503, "application/json",
        error_body(503, fmt::format("chased serves at most {} power streams at once; try again "
                                    "later or close one",
                                    kMaxPowerStreams)),
        false);
    connection.close_after_write = true;
    return;
  }
  connection.stream_minor_version = request.minor_version;
  connection.output += stream_head(request.minor_version);
  connection.output += stream_chunk(service_.power_line(stream), request.minor_version);
  connection.stream_due = Clock::now() + stream.interval;
  connection.stream = std::move(stream);
}

int DaemonServer::until_next_stream_line(int timeout) const {
  const auto now = Clock::now();
  for (const auto& [id, connection] : connections_) {
    if (!connection->stream) continue;
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(
        std::max(Clock::duration::zero(), connection->stream_due - now));
    const int ms = static_cast<int>(wait.count());
    timeout = timeout < 0 ? ms : std::min(timeout, ms);
  }
  return timeout;
}

// Each stream whose line is due gets one (skipped while its client lags far behind).
void DaemonServer::serve_streams() {
  const auto now = Clock::now();
  std::vector<std::uint64_t> due;
  for (auto& [id, connection] : connections_) {
    if (connection->stream && connection->stream_due <= now) due.push_back(id);
  }
  for (const auto id : due) {
    const auto found = connections_.find(id);
    if (found == connections_.end()) continue;
    Connection& connection = *found->second;
    if (connection.output.size() < kMaxStreamBacklog) {
      connection.output +=
          stream_chunk(service_.power_line(*connection.stream), connection.stream_minor_version);
    }
    connection.stream_due += connection.stream->interval;
    if (connection.stream_due <= now) connection.stream_due = now + connection.stream->interval;
    write_to(connection);
  }
}

void DaemonServer::run(int stop_fd) {
  bool watching_processes = service_.check_process_leases();
  while (true) {
    std::vector<pollfd> fds;
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({stop_fd, POLLIN, 0});
    fds.push_back({unix_listener_, POLLIN, 0});
    fds.push_back({metrics_listener_, POLLIN, 0});
    fds.push_back({api_listener_, POLLIN, 0});
    std::vector<std::uint64_t> ids;
    bool partial = false;
    for (auto& [id, connection] : connections_) {
      const bool backlogged = connection->output.size() >= kMaxPendingOutput;
      short events = connection->close_after_write || backlogged ? 0 : POLLIN;
      if (!connection->output.empty()) events |= POLLOUT;
      fds.push_back({connection->fd, events, 0});
      ids.push_back(id);
      partial = partial || connection->partial_since.has_value();
    }
    int timeout = watching_processes || partial ? static_cast<int>(kProcessLeaseCheck.count()) : -1;
    timeout = until_next_stream_line(timeout);
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
      throw socket_error("poll", errno);
    }
    if (fds[0].revents != 0 || fds[1].revents != 0) break;
    if (fds[2].revents & POLLIN) accept_all(unix_listener_, false);
    if (fds[3].revents & POLLIN) accept_all(metrics_listener_, true);
    if (fds[4].revents & POLLIN) accept_all(api_listener_, false, true);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const short revents = fds[kListenerSlots + i].revents;
      if (revents == 0) continue;
      const auto found = connections_.find(ids[i]);
      if (found == connections_.end()) continue;
      Connection& connection = *found->second;
      if (revents & (POLLIN | POLLHUP | POLLERR)) {
        read_from(connection);
      } else if (revents & POLLOUT) {
        write_to(connection);
      }
    }
    if (partial) expire_slow_requests();
    serve_streams();
    watching_processes = service_.check_process_leases();
  }
  std::vector<std::uint64_t> open;
  for (const auto& [id, connection] : connections_) open.push_back(id);
  for (auto id : open) close_connection(id);
  service_.restore_all();
}

}  // namespace chase::server
