// Internal (chased): what the daemon does with one request — routing, permission checks, power
// limit leases with their durable record, and the Prometheus exposition — kept apart from sockets
// so it is tested (and fuzzed) without any.
//
// Contract: handle() never throws: every failure becomes a JSON error reply
// {"error": message, "code": chase error code name, "status": HTTP status} and a refused or
// malformed request changes nothing. The routes and their rules are in docs/DAEMON.md. Power limit
// changes are leases (server/lease_table.h); before a GPU's first lease changes its limit, a
// record of its original limit is written to the LimitStateStore of `state_directory`
// (chase/limit_state.h) with the daemon process as holder, so a daemon killed with SIGKILL has its
// changes undone by the next daemon started on that directory (the constructor does it). When a
// lease ends, the limit goes back only if the device still has the value the daemon set last
// (otherwise an administrator changed it since, and it is left alone with a warning in the log).
//
// Thread safety: none; the daemon calls it from its event loop thread only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "chase/cpu.h"
#include "chase/gpu.h"
#include "chase/limit_state.h"
#include "server/access_policy.h"
#include "server/http_message.h"
#include "server/lease_table.h"
#include "server/power_stream.h"

namespace chase::server {

struct ServiceOptions {
  AccessPolicy policy = AccessPolicy::defaults();
  // Where the record of changed limits lives; nullopt: none (limits are then restored from memory
  // only, and a daemon crash leaves them changed).
  std::optional<std::filesystem::path> state_directory;
  // More exposition appended to /metrics (chased's carbon feed); it must not block.
  std::function<std::string()> extra_metrics = {};
};

// Who sent a request, as the transport knows it.
struct Caller {
  std::uint64_t connection = 0;                // non-zero, unique per connection
  std::optional<PeerCredentials> credentials;  // Unix socket: SO_PEERCRED
  std::optional<std::set<Capability>> scopes;  // TCP with a valid bearer token: its scopes
  std::string token_subject;                   // whom the token was issued to
  bool metrics_only = false;                   // the metrics listener: GET /metrics only
};

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Set for GET /gpus/power/stream: the transport streams power_line() instead of `body`.
  std::optional<StreamRequest> stream = {};
};

class DaemonService {
 public:
  // Restores what a previous daemon on the same state directory left changed (see above).
  DaemonService(std::shared_ptr<GpuBackend> gpus, std::shared_ptr<CpuBackend> cpus,
                ServiceOptions options);
  ~DaemonService();  // restores every leased limit
  DaemonService(const DaemonService&) = delete;
  DaemonService& operator=(const DaemonService&) = delete;

  Reply handle(const HttpMessage& request, const Caller& caller);
  // A connection closed: its leases end now.
  void connection_closed(std::uint64_t connection);
  // Ends the leases of processes that have exited; true when any lease is held by a process (so
  // the event loop knows to keep checking).
  bool check_process_leases();
  // Ends every lease (daemon shutdown).
  void restore_all();

  // One line of a power stream (server/power_stream.h).
  std::string power_line(const StreamRequest& request);
  // The Prometheus text exposition of every GPU and CPU zone.
  std::string metrics();
  const LeaseTable& leases() const noexcept { return leases_; }

 private:
  Reply route(const HttpMessage& request, const Caller& caller);
  void require(Capability capability, const Caller& caller) const;
  Reply set_limit(std::size_t gpu, const HttpMessage& request, const Caller& caller);
  Reply release_limit(std::size_t gpu, const HttpMessage& request, const Caller& caller);
  void apply(const std::vector<LimitChange>& changes);
  void write_record(std::size_t gpu, double original_w, double set_w);
  void sync_record(std::size_t gpu);

  std::shared_ptr<GpuBackend> gpus_;
  std::shared_ptr<CpuBackend> cpus_;
  ServiceOptions options_;
  std::optional<LimitStateStore> store_;
  LeaseTable leases_;
};

// The Prometheus text exposition (format 0.0.4) of the GPUs and CPU zones; a GPU or zone that
// fails to read is left out of the value families and has chase_gpu_up 0.
std::string render_metrics(GpuBackend* gpus, CpuBackend* cpus, const LeaseTable& leases);

}  // namespace chase::server
