// Reaching chased over TCP (contract: server/daemon_tcp_client.h).
#include "server/daemon_tcp_client.h"

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "chase/error.h"
#include "common/text.h"
#include "server/daemon_server.h"
#include "server/token.h"

namespace chase::server {

int connect_daemon_tcp(const std::string& address) {
  const auto [host, port] = parse_listen_address(address.substr(6), "CHASE_DAEMON");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &found); rc != 0) {
    throw Error(
        ErrorCode::kUnavailable,
        fmt::format("CHASE_DAEMON '{}': {}", escape_untrusted(address, 200), ::gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  int error = 0;
  for (const addrinfo* candidate = found; candidate != nullptr; candidate = candidate->ai_next) {
    const int fd = ::socket(candidate->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      error = errno;
      continue;
    }
    if (::connect(fd, candidate->ai_addr, candidate->ai_addrlen) == 0) {
      const int yes = 1;  // one small request, one small reply: do not wait to coalesce
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
      return fd;
    }
    error = errno;
    ::close(fd);
  }
  throw Error(ErrorCode::kUnavailable,
              fmt::format("cannot reach chased at {} ({}): is chased running with --listen {}:{}?",
                          escape_untrusted(address, 200), std::strerror(error), host, port));
}

std::string daemon_token_from_environment(const std::string& address) {
  if (auto token = token_from_environment("CHASE_DAEMON_TOKEN", "CHASE_DAEMON_TOKEN_FILE")) {
    return *token;
  }
  throw Error(ErrorCode::kPermissionDenied,
              fmt::format("CHASE_DAEMON={} needs a bearer token: set CHASE_DAEMON_TOKEN, or "
                          "CHASE_DAEMON_TOKEN_FILE to a file holding it (an administrator issues "
                          "one with `chased token issue`)",
                          escape_untrusted(address, 200)));
}

}  // namespace chase::server
