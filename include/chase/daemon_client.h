// chase/daemon_client.h — a GpuBackend that goes through chased, the chase node daemon
// (docs/DAEMON.md), so a process without the right to change power limits can still do it.
//
// Contract: open_daemon_gpus("unix:/run/chased/chased.sock") connects, reads the daemon's GPU list
// (the daemon's visible GPUs, in its order) and keeps the connection open: every limit this
// backend sets is a lease of that connection, so the daemon restores it as soon as the connection
// closes — when the backend is destroyed, or when the process exits or is killed (even with
// SIGKILL). limits_outlive_process() is therefore false: PowerLimitGuard keeps no record of its
// own. A refusal by the daemon is thrown as the chase::Error it reported (kPermissionDenied naming
// the missing permission, kInvalidArgument for an out-of-range limit, ...), prefixed with
// "chased:". When the connection breaks, every later call throws kUnavailable: the daemon has
// restored the limits this backend set, and silently reconnecting would hide that.
//
// Over TCP ("tcp://HOST:PORT", chased --listen) every request carries a bearer token (chased token
// issue): `token` when given, else $CHASE_DAEMON_TOKEN, else the first line of the file named by
// $CHASE_DAEMON_TOKEN_FILE; without any, opening throws kPermissionDenied saying what to set. A
// token the daemon refuses (expired, badly signed: HTTP 401) or whose scopes lack a permission
// (HTTP 403) is thrown as kPermissionDenied with the daemon's message. The leases of a TCP
// connection end with it, as on the Unix socket.
//
// CHASE_DAEMON selects the daemon for the CLI and the library's open paths: "unix:/path" or
// "tcp://HOST:PORT".
//
// Thread safety: every method may be called concurrently (one request at a time on the
// connection).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "chase/gpu.h"

namespace chase {

// Throws kInvalidArgument for a malformed address, kUnavailable when nothing answers there.
std::shared_ptr<GpuBackend> open_daemon_gpus(const std::string& address,
                                             std::optional<std::string> token = std::nullopt);

// $CHASE_DAEMON when set and non-empty.
std::optional<std::string> daemon_address_from_environment();

}  // namespace chase
