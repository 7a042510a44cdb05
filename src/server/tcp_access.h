// Internal (chased): the API over TCP — its listening sockets, and who a request comes from there,
// where the kernel cannot tell (no SO_PEERCRED): a signed bearer token (server/token.h) on every
// request, "Authorization: Bearer <token>".
//
// Contract: authenticate() returns a 401 reply (JSON error, code "permission_denied") when the
// header is missing, not of the Bearer form, or the token does not verify (malformed, bad
// signature, expired), and the request must then not reach the service: it changes nothing.
// Otherwise it sets the caller's scopes (the capabilities the token names; scope names chased does
// not know, such as chase serve's "recurring:write", give nothing) and token_subject, and
// DaemonService refuses with 403 what those scopes do not cover.
// open_tcp_listener() binds and listens on "HOST:PORT" (port 0: any free one) or throws a
// chase::Error naming `option`.
//
// Thread safety: free functions over their arguments; call them from the event loop thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "server/daemon_service.h"
#include "server/http_message.h"
#include "server/token.h"

namespace chase::server {

std::optional<Reply> authenticate(const HttpMessage& request, const TokenKey& key, Caller& caller);

// A listening, non-blocking, close-on-exec TCP socket and the port it is bound to.
struct TcpListener {
  int fd = -1;
  std::uint16_t port = 0;
};
TcpListener open_tcp_listener(const std::string& address, std::string_view option);

}  // namespace chase::server
