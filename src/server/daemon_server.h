// Internal (chased): the sockets of the daemon — a Unix socket for the API (peer known by
// SO_PEERCRED), optionally a TCP address serving only GET /metrics, and optionally the whole API on
// a TCP address where every request needs a signed bearer token (server/tcp_access.h) — and the
// single-threaded poll(2) loop that feeds requests to a DaemonService.
//
// Contract: the constructor binds everything or throws a chase::Error saying what is in the way: a
// socket path that a live daemon answers on (kAlreadyExists), a path that is not a socket, a path
// longer than a Unix socket allows, an address in use, an API address without a token key. A socket
// file nobody answers on (left by a daemon that was killed) is stale: it is replaced, with a note
// in the log. run() serves until stop() is called or `stop_fd` (e.g. a signalfd) becomes readable,
// then ends every connection (their leases end, so their limits are restored) and removes the
// socket file.
//
// Limits that keep one client from hurting the others: at most `max_connections` at once (more
// get 503 and are closed), a request head of 16 KiB and a body of max_body_bytes, and a request
// that stays incomplete for `request_timeout` gets 408 and is closed. An idle connection with no
// partial request stays open (a client holding a lease keeps its connection).
//
// The loop sleeps in poll() with no timeout while nothing is pending, so an idle daemon uses no
// CPU; while a process-held lease exists it wakes every 200 ms to see whether the process ended,
// and while power streams run it wakes when the next line is due (at most 16 streams; a client
// that closes its connection ends its stream).
//
// Thread safety: run() on one thread; stop() from any thread (or a signal handler: it only writes
// to an eventfd).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/daemon_service.h"
#include "server/http_message.h"
#include "server/token.h"

namespace chase::server {

struct ServerOptions {
  std::filesystem::path socket_path;
  mode_t socket_mode = 0660;
  std::optional<uid_t> socket_owner;
  std::optional<gid_t> socket_group;
  // "HOST:PORT" for GET /metrics (port 0: any free port, see metrics_port()); empty: none.
  std::string metrics_listen;
  // "HOST:PORT" for the whole API, bearer tokens signed with `token_key` required; empty: none.
  std::string api_listen;
  std::shared_ptr<const TokenKey> token_key;
  std::size_t max_connections = 256;
  std::chrono::milliseconds request_timeout{10000};
  std::size_t max_body_bytes = kDefaultMaxBodyBytes;
};

class DaemonServer {
 public:
  DaemonServer(DaemonService& service, ServerOptions options);
  ~DaemonServer();
  DaemonServer(const DaemonServer&) = delete;
  DaemonServer& operator=(const DaemonServer&) = delete;

  // The port the metrics listener is bound to (0 when there is none).
  std::uint16_t metrics_port() const noexcept { return metrics_port_; }
  // The port the token-guarded API listener is bound to (0 when there is none).
  std::uint16_t api_port() const noexcept { return api_port_; }
  void run(int stop_fd = -1);
  void stop() noexcept;

 private:
  struct Connection;
  void accept_all(int listener, bool metrics_only, bool needs_token = false);
  void read_from(Connection& connection);
  void write_to(Connection& connection);
  void close_connection(std::uint64_t id);
  void expire_slow_requests();
  // Power streams (server/power_stream.h).
  void start_stream(Connection& connection, const HttpMessage& request, StreamRequest stream);
  int until_next_stream_line(int timeout) const;
  void serve_streams();

  DaemonService& service_;
  ServerOptions options_;
  int unix_listener_ = -1;
  int metrics_listener_ = -1;
  int api_listener_ = -1;
  int wake_fd_ = -1;
  std::uint16_t metrics_port_ = 0;
  std::uint16_t api_port_ = 0;
  ino_t socket_inode_ = 0;
  std::uint64_t next_connection_ = 1;
  std::map<std::uint64_t, std::unique_ptr<Connection>> connections_;
};

// Parses "HOST:PORT" ("127.0.0.1:9400", "[::1]:9400", "0.0.0.0:0"); throws kInvalidArgument
// naming `option`.
std::pair<std::string, std::uint16_t> parse_listen_address(const std::string& text,
                                                           std::string_view option);

}  // namespace chase::server
