// The API over TCP: listeners and bearer-token authentication (contract: server/tcp_access.h).
#include "server/tcp_access.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "chase/error.h"
#include "server/daemon_server.h"

namespace chase::server {
namespace {

Reply unauthorized(const std::string& message) {
  return {
      401, "application/json",
      nlohmann::json{
          {"error", message}, {"code", to_string(ErrorCode::kPermissionDenied)}, {"status", 401}}
              .dump() +
          "\n"};
}

}  // namespace

std::optional<Reply> authenticate(const HttpMessage& request, const TokenKey& key, Caller& caller) {
  const auto header = request.header("authorization");
  if (!header) {
    return unauthorized(
        "this address needs a bearer token: send \"Authorization: Bearer <token>\" (issued by "
        "`chased token issue`)");
  }
  const std::string_view token = bearer_token(*header);
  if (token.empty()) {
    return unauthorized("the Authorization header must be \"Bearer <token>\"");
  }
  try {
    const TokenClaims claims = key.verify(token);
    std::set<Capability> scopes;
    for (const auto& name : claims.scopes) {
      if (const auto capability = parse_capability(name)) scopes.insert(*capability);
    }
    caller.scopes = std::move(scopes);
    caller.token_subject = claims.subject;
    return std::nullopt;
  } catch (const Error& e) {
    return unauthorized(e.what());
  }
}

TcpListener open_tcp_listener(const std::string& address, std::string_view option) {
  const auto [host, port] = parse_listen_address(address, option);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &found); rc != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} '{}': {}", option, address, ::gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  TcpListener listener;
  listener.fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listener.fd < 0) {
    throw Error(ErrorCode::kUnavailable,
                fmt::format("chased: cannot create a TCP socket: {}", std::strerror(errno)));
  }
  const int yes = 1;
  ::setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  if (::bind(listener.fd, found->ai_addr, found->ai_addrlen) != 0 ||
      ::listen(listener.fd, 128) != 0) {
    const int error = errno;
    ::close(listener.fd);
    throw Error(
        error == EADDRINUSE                 ? ErrorCode::kAlreadyExists
        : error == EACCES || error == EPERM ? ErrorCode::kPermissionDenied
                                            : ErrorCode::kUnavailable,
        fmt::format("chased: cannot listen on {} {}: {}", option, address, std::strerror(error)));
  }
  sockaddr_storage bound{};
  socklen_t size = sizeof bound;
  ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&bound), &size);
  listener.port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return listener;
}

}  // namespace chase::server
