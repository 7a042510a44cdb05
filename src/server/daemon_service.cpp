// Request handling of chased (contract: server/daemon_service.h; routes: docs/DAEMON.md).
#include "server/daemon_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chase/error.h"
#include "common/json_fields.h"
#include "common/text.h"

namespace chase::server {
namespace {

using json = nlohmann::json;

// A refusal with an HTTP status of its own (the chase::Error codes map to the others).
struct Refusal {
  int status;
  ErrorCode code;
  std::string message;
};

int status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 422;
    case ErrorCode::kParse:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kAlreadyExists:
      return 409;
    case ErrorCode::kNotSupported:
      return 501;
    case ErrorCode::kUnavailable:
    case ErrorCode::kDeviceLost:
      return 503;
    default:
      return 500;
  }
}

Reply error_reply(int status, ErrorCode code, const std::string& message) {
  return {status, "application/json",
          json{{"error", message}, {"code", to_string(code)}, {"status", status}}.dump() + "\n"};
}

Reply json_reply(const json& body) { return {200, "application/json", body.dump() + "\n"}; }

json gpu_json(const GpuInfo& gpu) {
  return {{"index", gpu.index},
          {"hardware_index", gpu.hardware_index},
          {"uuid", gpu.uuid},
          {"name", gpu.name},
          {"architecture", to_string(gpu.architecture)},
          {"pci_bus_id", gpu.pci_bus_id},
          {"state", to_string(gpu.state)},
          {"problem", gpu.problem},
          {"note", gpu.note},
          {"has_energy_counter", gpu.has_energy_counter},
          {"has_power_reading", gpu.has_power_reading},
          {"power_reading", to_string(gpu.power_reading)},
          {"constraints",
           {{"min_power_limit_w", gpu.min_power_limit_w},
            {"max_power_limit_w", gpu.max_power_limit_w},
            {"default_power_limit_w", gpu.default_power_limit_w}}}};
}

// "/gpus/12/power_limit" → {"gpus", "12", "power_limit"}.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const auto slash = std::min(path.find('/'), path.size());
    parts.push_back(path.substr(0, slash));
    path.remove_prefix(slash);
  }
  return parts;
}

std::size_t parse_index(std::string_view text) {
  std::size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.size() > 6 || error != std::errc() || end != text.data() + text.size()) {
    throw Refusal{
        404, ErrorCode::kNotFound,
        fmt::format("'{}' is not a GPU index (use e.g. /gpus/0)", escape_untrusted(text, 40))};
  }
  return value;
}

// The body of a write request: a JSON object with only the keys named.
json parse_body(const std::string& body, std::initializer_list<std::string_view> allowed) {
  json parsed = json::parse(body.empty() ? std::string("{}") : body, nullptr, false);
  if (parsed.is_discarded()) {
    throw Refusal{400, ErrorCode::kParse, "the request body is not valid JSON"};
  }
  if (!parsed.is_object()) {
    throw Refusal{400, ErrorCode::kParse, "the request body must be a JSON object {...}"};
  }
  for (const auto& [key, value] : parsed.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      throw Refusal{
          400, ErrorCode::kParse,
          fmt::format("the request body has an unknown field '{}'", escape_untrusted(key, 40))};
    }
  }
  return parsed;
}

// The real uid of a process (/proc/<pid>/status), if it exists.
std::optional<unsigned> process_uid(long pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (!line.starts_with("Uid:")) continue;
    std::istringstream fields(line.substr(4));
    unsigned uid = 0;
    if (fields >> uid) return uid;
  }
  return std::nullopt;
}

Refusal method_not_allowed(std::string_view method, std::string_view path,
                           std::string_view allowed) {
  return {405, ErrorCode::kInvalidArgument,
          fmt::format("{} is not allowed on {} (allowed: {})", escape_untrusted(method, 20),
                      escape_untrusted(path, 80), allowed)};
}

// The start of a power stream; the transport sends the lines (server/power_stream.h).
Reply stream_reply(const HttpMessage& request, const GpuBackend& gpus) {
  const auto question = request.target.find('?');
  const std::string_view query = question == std::string::npos
                                     ? std::string_view()
                                     : std::string_view(request.target).substr(question + 1);
  try {
    Reply reply{200, "application/x-ndjson", {}};
    reply.stream = parse_stream_request(query, gpus);
    return reply;
  } catch (const StreamRefusal& refusal) {
    throw Refusal{refusal.status,
                  refusal.status == 404 ? ErrorCode::kNotFound : ErrorCode::kInvalidArgument,
                  refusal.message};
  }
}

}  // namespace

DaemonService::DaemonService(std::shared_ptr<GpuBackend> gpus, std::shared_ptr<CpuBackend> cpus,
                             ServiceOptions options)
    : gpus_(std::move(gpus)), cpus_(std::move(cpus)), options_(std::move(options)) {
  if (!options_.state_directory) return;
  store_.emplace(*options_.state_directory);
  if (!gpus_) return;
  for (const auto& restored : restore_abandoned_limits(*gpus_, *store_)) {
    spdlog::warn("chased: a previous daemon left {} changed (original {} W, found {} W): {}",
                 restored.gpu.empty() ? restored.uuid : restored.gpu, restored.original_w,
                 restored.found_w, restored.note);
  }
}

DaemonService::~DaemonService() { restore_all(); }

Reply DaemonService::handle(const HttpMessage& request, const Caller& caller) {
  try {
    return route(request, caller);
  } catch (const Refusal& refusal) {
    return error_reply(refusal.status, refusal.code, refusal.message);
  } catch (const Error& e) {
    return error_reply(status_for(e.code()), e.code(), e.what());
  } catch (const std::exception& e) {
    return error_reply(500, ErrorCode::kInternal, fmt::format("internal error: {}", e.what()));
  }
}

void DaemonService::require(Capability capability, const Caller& caller) const {
  if (caller.credentials) {
    const std::string why = refusal(options_.policy, capability, *caller.credentials);
    if (!why.empty()) throw Refusal{403, ErrorCode::kPermissionDenied, why};
    return;
  }
  if (caller.scopes) {
    if (caller.scopes->contains(capability)) return;
    throw Refusal{403, ErrorCode::kPermissionDenied,
                  fmt::format("permission '{}' is missing: the token of '{}' does not carry that "
                              "scope; ask for a token with --scope {}",
                              to_string(capability), escape_untrusted(caller.token_subject, 60),
                              to_string(capability))};
  }
  throw Refusal{401, ErrorCode::kPermissionDenied,
                fmt::format("permission '{}' is missing: this listener serves only GET /metrics; "
                            "use the Unix socket, or the API address with a bearer token",
                            to_string(capability))};
}

Reply DaemonService::route(const HttpMessage& request, const Caller& caller) {
  const std::string_view path = request.path();
  const std::string_view method = request.method;
  const auto parts = split_path(path);
  const bool get = method == "GET" || method == "HEAD";

  if (path == "/metrics") {
    if (!get) throw method_not_allowed(method, path, "GET");
    if (!caller.metrics_only) require(Capability::kReadGpus, caller);
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics()};
  }
  if (path == "/health") {
    if (!get) throw method_not_allowed(method, path, "GET");
    return json_reply({{"status", "ok"}, {"leases", leases_.size()}});
  }
  if (caller.metrics_only) {
    throw Refusal{404, ErrorCode::kNotFound,
                  fmt::format("{} is not served here: this listener serves only GET /metrics and "
                              "GET /health",
                              escape_untrusted(path, 80))};
  }
  if (path == "/gpus/power/stream") {
    if (method != "GET") throw method_not_allowed(method, path, "GET");
    require(Capability::kReadGpus, caller);
    if (!gpus_) throw Error(ErrorCode::kUnavailable, "chased has no GPUs (NVML did not open)");
    return stream_reply(request, *gpus_);
  }
  if (!parts.empty() && parts[0] == "gpus" && parts.size() <= 3) {
    if (!gpus_) throw Error(ErrorCode::kUnavailable, "chased has no GPUs (NVML did not open)");
    if (parts.size() == 1) {
      if (!get) throw method_not_allowed(method, path, "GET");
      require(Capability::kReadGpus, caller);
      json all = json::array();
      for (const auto& gpu : gpus_->gpus()) {
        json entry = gpu_json(gpu);
        try {
          entry["power_limit_w"] = is_healthy(gpu) ? json(gpus_->power_limit_w(gpu.index)) : json();
        } catch (const Error& e) {
          entry["power_limit_w"] = nullptr;
          entry["problem"] = e.what();
        }
        entry["leases"] = leases_.count(gpu.index);
        all.push_back(std::move(entry));
      }
      return json_reply(all);
    }
    const std::size_t index = parse_index(parts[1]);
    const GpuInfo& gpu = checked_gpu(gpus_->gpus(), index);
    if (parts.size() == 2) {
      if (!get) throw method_not_allowed(method, path, "GET");
      require(Capability::kReadGpus, caller);
      json entry = gpu_json(gpu);
      entry["power_limit_w"] = gpus_->power_limit_w(index);
      entry["leases"] = leases_.count(index);
      return json_reply(entry);
    }
    const std::string_view what = parts[2];
    if (what == "power_limit") {
      if (method == "POST") return set_limit(index, request, caller);
      if (method == "DELETE") return release_limit(index, request, caller);
      if (!get) throw method_not_allowed(method, path, "GET, POST, DELETE");
      require(Capability::kReadGpus, caller);
      json reply = {{"index", index},
                    {"power_limit_w", gpus_->power_limit_w(index)},
                    {"leases", leases_.count(index)}};
      if (const auto original = leases_.original_w(index)) reply["original_w"] = *original;
      return json_reply(reply);
    }
    if (what == "power" || what == "energy") {
      if (!get) throw method_not_allowed(method, path, "GET");
      require(Capability::kReadGpus, caller);
      if (what == "power")
        return json_reply({{"index", index}, {"power_w", gpus_->power_w(index)}});
      if (!gpu.has_energy_counter) {
        throw Error(ErrorCode::kNotSupported,
                    fmt::format("{} has no energy counter (it is measured by sampling "
                                "/gpus/{}/power)",
                                describe(gpu), index));
      }
      return json_reply({{"index", index}, {"energy_j", gpus_->energy_j(index)}});
    }
  }
  if (path == "/cpus") {
    if (!get) throw method_not_allowed(method, path, "GET");
    require(Capability::kReadCpus, caller);
    if (!cpus_) throw Error(ErrorCode::kUnavailable, "chased reads no CPU energy (no RAPL zones)");
    json zones = json::array();
    for (std::size_t i = 0; i < cpus_->zones().size(); ++i) {
      const auto& zone = cpus_->zones()[i];
      zones.push_back({{"index", i},
                       {"label", zone.label},
                       {"kind", zone.kind},
                       {"package", zone.package},
                       {"energy_j", cpus_->energy_j(i)}});
    }
    return json_reply(zones);
  }
  if (path == "/leases") {
    if (!get) throw method_not_allowed(method, path, "GET");
    require(Capability::kReadGpus, caller);
    json all = json::array();
    for (const auto& lease : leases_.leases()) {
      all.push_back({{"id", lease.id},
                     {"gpu", lease.gpu},
                     {"power_limit_w", lease.limit_w},
                     {"holder", lease.owner.describe()},
                     {"uid", lease.uid},
                     {"original_w", leases_.original_w(lease.gpu).value_or(0)}});
    }
    return json_reply(all);
  }
  throw Refusal{
      404, ErrorCode::kNotFound,
      fmt::format("no route {} {} (see docs/DAEMON.md: /gpus, /gpus/N, "
                  "/gpus/N/power_limit, /gpus/N/power, /gpus/N/energy, /gpus/power/stream, /cpus, "
                  "/leases, /metrics, /health)",
                  escape_untrusted(method, 20), escape_untrusted(path, 80))};
}

Reply DaemonService::set_limit(std::size_t index, const HttpMessage& request,
                               const Caller& caller) {
  require(Capability::kControlGpus, caller);
  const json body = parse_body(request.body, {"power_limit_w", "holder_pid"});
  const JsonFields fields(body, "request body");
  const double watts = fields.required_number("power_limit_w");
  const auto holder_pid = fields.count("holder_pid", 1, 4194304);
  const GpuInfo& gpu = gpus_->gpus()[index];
  if (!is_healthy(gpu)) {
    throw Error(ErrorCode::kUnavailable,
                fmt::format("{} is {}: {}", describe(gpu), to_string(gpu.state), gpu.problem));
  }
  check_power_limit(gpu, watts);

  LeaseOwner owner{caller.connection, 0, 0};
  const unsigned uid = caller.credentials ? caller.credentials->uid : 0;
  if (holder_pid) {
    const long pid = static_cast<long>(*holder_pid);
    const auto owner_uid = process_uid(pid);
    if (!owner_uid) {
      throw Refusal{422, ErrorCode::kInvalidArgument,
                    fmt::format("holder_pid {}: no such process", pid)};
    }
    if (!caller.credentials || (caller.credentials->uid != 0 && *owner_uid != uid)) {
      throw Refusal{403, ErrorCode::kPermissionDenied,
                    fmt::format("holder_pid {}: a lease may be tied only to a process of the "
                                "caller's own user (found uid {}), and only over the Unix socket",
                                pid, *owner_uid)};
    }
    owner = LeaseOwner{0, pid, process_start_time(pid)};
  }

  const auto existing_original = leases_.original_w(index);
  const double current = gpus_->power_limit_w(index);
  const double original = existing_original.value_or(current);
  write_record(index, original, watts);  // before the change: a crash now still restores
  try {
    gpus_->set_power_limit_w(index, watts);
  } catch (...) {
    sync_record(index);
    throw;
  }
  const Lease& lease = leases_.acquire(owner, index, watts, current, uid);
  spdlog::info("chased: {} set to {} W by {} ({}); original {} W", describe(gpu), watts,
               lease.owner.describe(),
               caller.credentials ? fmt::format("uid {}", uid)
                                  : fmt::format("token of '{}'", caller.token_subject),
               original);
  return json_reply({{"index", index},
                     {"power_limit_w", watts},
                     {"original_w", original},
                     {"lease", {{"id", lease.id}, {"holder", lease.owner.describe()}}}});
}

Reply DaemonService::release_limit(std::size_t index, const HttpMessage& request,
                                   const Caller& caller) {
  require(Capability::kControlGpus, caller);
  const json body = parse_body(request.body, {"holder_pid"});
  const auto holder_pid = JsonFields(body, "request body").count("holder_pid", 1, 4194304);
  LeaseOwner owner{caller.connection, 0, 0};
  if (holder_pid) {
    const long pid = static_cast<long>(*holder_pid);
    owner = LeaseOwner{0, pid, process_start_time(pid)};
    const auto lease_list = leases_.leases();
    const auto held = std::find_if(lease_list.begin(), lease_list.end(), [&](const Lease& l) {
      return l.gpu == index && l.owner.pid == pid;
    });
    if (held == lease_list.end())
      owner.start_time = 0;  // nothing to release either way
    else if (caller.credentials && caller.credentials->uid != 0 &&
             held->uid != caller.credentials->uid) {
      throw Refusal{403, ErrorCode::kPermissionDenied,
                    fmt::format("the lease of process {} on GPU {} belongs to uid {}", pid, index,
                                held->uid)};
    } else {
      owner = held->owner;
    }
  }
  const std::size_t before = leases_.count(index);
  apply(leases_.release(owner, index));
  return json_reply({{"index", index},
                     {"released", before - leases_.count(index)},
                     {"power_limit_w", gpus_->power_limit_w(index)}});
}

void DaemonService::apply(const std::vector<LimitChange>& changes) {
  for (const auto& change : changes) {
    const GpuInfo& gpu = gpus_->gpus()[change.gpu];
    try {
      const double found = gpus_->power_limit_w(change.gpu);
      if (std::abs(found - change.expected_w) >= kLimitTolerance_w) {
        spdlog::warn(
            "chased: {} is at {} W, not the {} W chased set, so someone else changed it; "
            "leaving it (it would have gone back to {} W)",
            describe(gpu), found, change.expected_w, change.limit_w);
      } else {
        gpus_->set_power_limit_w(change.gpu, change.limit_w);
        spdlog::info("chased: {} back to {} W ({})", describe(gpu), change.limit_w,
                     change.to_original ? "its last lease ended" : "the most recent live lease");
      }
      sync_record(change.gpu);
    } catch (const std::exception& e) {
      spdlog::error(
          "chased: cannot restore {} to {} W: {} (the record in the state directory is "
          "kept; the next chased start retries)",
          describe(gpu), change.limit_w, e.what());
    }
  }
}

void DaemonService::connection_closed(std::uint64_t connection) {
  apply(leases_.release(LeaseOwner{connection, 0, 0}));
}

bool DaemonService::check_process_leases() {
  const auto owners = leases_.process_owners();
  for (const auto& owner : owners) {
    if (!holder_alive(LimitHolder{owner.pid, owner.start_time, 0, 0})) {
      spdlog::info("chased: process {} ended; its leases end", owner.pid);
      apply(leases_.release(owner));
    }
  }
  return !leases_.process_owners().empty();
}

void DaemonService::restore_all() {
  if (gpus_) apply(leases_.release_all());
}

void DaemonService::write_record(std::size_t index, double original_w, double set_w) {
  if (!store_) return;
  const std::string& uuid = gpus_->gpus()[index].uuid;
  store_->update([&](std::vector<LimitRecord>& records) {
    auto record = std::find_if(records.begin(), records.end(),
                               [&](const LimitRecord& r) { return r.uuid == uuid; });
    if (record == records.end()) {
      records.push_back({uuid, original_w, set_w, {}});
      record = std::prev(records.end());
    }
    record->last_set_w = set_w;
    record->holders = {this_process_holder(0, set_w)};
    return true;
  });
}

void DaemonService::sync_record(std::size_t index) {
  if (!store_) return;
  const std::string& uuid = gpus_->gpus()[index].uuid;
  const auto leased = leases_.leased_w(index);
  store_->update([&](std::vector<LimitRecord>& records) {
    if (!leased) {
      return std::erase_if(records, [&](const LimitRecord& r) { return r.uuid == uuid; }) > 0;
    }
    for (auto& record : records) {
      if (record.uuid != uuid) continue;
      record.last_set_w = *leased;
      record.holders = {this_process_holder(0, *leased)};
    }
    return true;
  });
}

std::string DaemonService::power_line(const StreamRequest& request) {
  return server::power_line(*gpus_, request);
}

std::string DaemonService::metrics() {
  std::string text = render_metrics(gpus_.get(), cpus_.get(), leases_);
  if (options_.extra_metrics) text += options_.extra_metrics();
  return text;
}

}  // namespace chase::server
