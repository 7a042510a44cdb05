// Internal (chased): who may do what. A caller on the Unix socket is known by the credentials the
// kernel gives for the connection (SO_PEERCRED: pid, uid, gid); each capability has an allow-list
// of uids and gids, and a caller is allowed when its uid, its primary gid or one of its
// supplementary groups (read from /proc/<pid>/status at connect time) is on the list.
//
// Contract: parse_allow_list() reads "uid:0,gid:44,user:alice,group:video" or "*" (anyone who can
// open the socket); names are resolved once, when the daemon starts, and an unknown name is a
// kInvalidArgument error naming it. A refusal message names the missing capability, the caller's
// uid/gid and the option that grants it, so an operator knows what to change.
//
// Thread safety: immutable after construction; share freely.
#pragma once

#include <sys/types.h>

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace chase::server {

enum class Capability { kReadGpus, kControlGpus, kReadCpus };
// "read-gpus", "control-gpus", "read-cpus" (also the token scope names).
std::string_view to_string(Capability capability) noexcept;
std::optional<Capability> parse_capability(std::string_view name) noexcept;

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, when /proc told them
};

// The credentials of the peer of a connected Unix socket (SO_PEERCRED + /proc/<pid>/status).
std::optional<PeerCredentials> peer_credentials(int socket_fd);

struct AllowList {
  bool anyone = false;
  std::set<uid_t> uids;
  std::set<gid_t> gids;

  bool allows(const PeerCredentials& peer) const;
  std::string describe() const;  // "uid 0, gid 44" or "anyone"
};

// Throws chase::Error(kInvalidArgument) naming the bad entry and `option`.
AllowList parse_allow_list(std::string_view text, std::string_view option);

struct AccessPolicy {
  AllowList read_gpus;
  AllowList control_gpus;
  AllowList read_cpus;

  const AllowList& list(Capability capability) const;
  // The defaults: anyone who can open the socket may read GPUs; only root and the daemon's own
  // user may change limits or read CPU energy (RAPL is root-only since Linux 5.10, for a reason).
  static AccessPolicy defaults();
};

// Empty when allowed; otherwise the refusal message.
std::string refusal(const AccessPolicy& policy, Capability capability, const PeerCredentials& peer);

}  // namespace chase::server
