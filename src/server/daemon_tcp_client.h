// Internal (the chased client, chase/daemon_client.h): reaching chased over TCP — the connection
// and the bearer token that goes with it.
//
// Contract: connect_daemon_tcp("tcp://HOST:PORT") returns a connected blocking socket or throws
// kInvalidArgument (malformed address) / kUnavailable (nothing answers; the message says what to
// check). daemon_token_from_environment() returns $CHASE_DAEMON_TOKEN, else the first line of
// $CHASE_DAEMON_TOKEN_FILE, else throws kPermissionDenied naming both variables and
// `chased token issue`; an unreadable or empty token file is an error naming the file.
//
// Thread safety: free functions; safe from any thread (they read the environment).
#pragma once

#include <string>

namespace chase::server {

int connect_daemon_tcp(const std::string& address);
std::string daemon_token_from_environment(const std::string& address);

}  // namespace chase::server
