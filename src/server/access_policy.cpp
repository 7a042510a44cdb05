// Allow-lists per capability, checked against SO_PEERCRED (contract: server/access_policy.h).
#include "server/access_policy.h"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "chase/error.h"
#include "common/text.h"

namespace chase::server {
namespace {

std::vector<gid_t> supplementary_groups(pid_t pid) {
  std::vector<gid_t> groups;
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (!line.starts_with("Groups:")) continue;
    std::istringstream fields(line.substr(7));
    unsigned long gid = 0;
    while (fields >> gid) groups.push_back(static_cast<gid_t>(gid));
    break;
  }
  return groups;
}

std::optional<unsigned long> parse_id(std::string_view text) {
  unsigned long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value > 0xfffffffeUL) {
    return std::nullopt;
  }
  return value;
}

[[noreturn]] void bad_entry(std::string_view entry, std::string_view option, std::string_view why) {
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("{}: '{}' {} (use e.g. uid:0,gid:44,user:alice,group:video, or * for "
                          "anyone who can open the socket)",
                          option, escape_untrusted(entry, 60), why));
}

}  // namespace

std::string_view to_string(Capability capability) noexcept {
  switch (capability) {
    case Capability::kReadGpus:
      return "read-gpus";
    case Capability::kControlGpus:
      return "control-gpus";
    case Capability::kReadCpus:
      return "read-cpus";
  }
  return "unknown";
}

std::optional<Capability> parse_capability(std::string_view name) noexcept {
  for (auto capability : {Capability::kReadGpus, Capability::kControlGpus, Capability::kReadCpus}) {
    if (to_string(capability) == name) return capability;
  }
  return std::nullopt;
}

std::optional<PeerCredentials> peer_credentials(int socket_fd) {
  ucred credentials{};
  socklen_t size = sizeof credentials;
  if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) {
    return std::nullopt;
  }
  PeerCredentials peer{credentials.pid, credentials.uid, credentials.gid, {}};
  if (peer.pid > 0) peer.groups = supplementary_groups(peer.pid);
  return peer;
}

bool AllowList::allows(const PeerCredentials& peer) const {
  if (anyone || uids.contains(peer.uid) || gids.contains(peer.gid)) return true;
  for (gid_t group : peer.groups) {
    if (gids.contains(group)) return true;
  }
  return false;
}

std::string AllowList::describe() const {
  if (anyone) return "anyone";
  std::string out;
  for (uid_t uid : uids) out += fmt::format("{}uid {}", out.empty() ? "" : ", ", uid);
  for (gid_t gid : gids) out += fmt::format("{}gid {}", out.empty() ? "" : ", ", gid);
  return out.empty() ? "nobody" : out;
}

AllowList parse_allow_list(std::string_view text, std::string_view option) {
  AllowList list;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = std::min(text.find(',', start), text.size());
    const auto entry = text.substr(start, comma - start);
    start = comma + 1;
    if (entry == "*") {
      list.anyone = true;
      continue;
    }
    const auto colon = entry.find(':');
    if (colon == std::string_view::npos) bad_entry(entry, option, "is not kind:value");
    const auto kind = entry.substr(0, colon);
    const std::string value(entry.substr(colon + 1));
    if (kind == "uid" || kind == "gid") {
      const auto id = parse_id(value);
      if (!id) bad_entry(entry, option, "is not a numeric id");
      if (kind == "uid") list.uids.insert(static_cast<uid_t>(*id));
      if (kind == "gid") list.gids.insert(static_cast<gid_t>(*id));
    } else if (kind == "user") {
      const passwd* user = ::getpwnam(value.c_str());
      if (user == nullptr) bad_entry(entry, option, "names no user on this machine");
      list.uids.insert(user->pw_uid);
    } else if (kind == "group") {
      const group* found = ::getgrnam(value.c_str());
      if (found == nullptr) bad_entry(entry, option, "names no group on this machine");
      list.gids.insert(found->gr_gid);
    } else {
      bad_entry(entry, option, "has an unknown kind (uid, gid, user or group)");
    }
  }
  return list;
}

const AllowList& AccessPolicy::list(Capability capability) const {
  switch (capability) {
    case Capability::kReadGpus:
      return read_gpus;
    case Capability::kControlGpus:
      return control_gpus;
    case Capability::kReadCpus:
      return read_cpus;
  }
  return read_gpus;
}

AccessPolicy AccessPolicy::defaults() {
  AccessPolicy policy;
  policy.read_gpus.anyone = true;
  for (AllowList* list : {&policy.control_gpus, &policy.read_cpus}) {
    list->uids.insert(0);
    list->uids.insert(::geteuid());
  }
  return policy;
}

std::string refusal(const AccessPolicy& policy, Capability capability,
                    const PeerCredentials& peer) {
  const AllowList& list = policy.list(capability);
  if (list.allows(peer)) return {};
  return fmt::format(
      "permission '{}' is missing: the caller (uid {}, gid {}) is not on its allow-list ({}); "
      "an administrator can add it with chased --allow-{} (e.g. uid:{} or gid:{})",
      to_string(capability), peer.uid, peer.gid, list.describe(), to_string(capability), peer.uid,
      peer.gid);
}

}  // namespace chase::server
