// The recurring store over HTTP/JSON (contract: store/http_store.h), on cpp-httplib.
#include "store/http_store.h"

#include <fmt/format.h>
#include <httplib.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "chase/error.h"
#include "server/token.h"
#include "store/store_json.h"

namespace chase::store {
namespace {

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kParse:
      return 400;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
      return 409;
    case ErrorCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

// Why a request may not make `call` (status and message), or nullopt when its token allows it.
std::optional<std::pair<int, std::string>> refusal(const httplib::Request& request,
                                                   const server::TokenKey& key,
                                                   std::string_view call) {
  const std::string header = request.get_header_value("Authorization");  // the token views it
  const std::string_view token = server::bearer_token(header);
  if (token.empty()) {
    return std::pair{401, std::string("a bearer token is needed (Authorization: Bearer <token>, "
                                      "issued by `chased token issue`)")};
  }
  try {
    const server::TokenClaims claims = key.verify(token);
    const std::string_view scope = scope_for_call(call);
    if (claims.has_scope(scope)) return std::nullopt;
    return std::pair{403, fmt::format("permission '{}' is missing: the token of '{}' does not "
                                      "carry that scope; ask for a token with --scope {}",
                                      scope, claims.subject, scope)};
  } catch (const Error& e) {
    return std::pair{401, std::string(e.what())};
  }
}

// One call of the API on one store connection.
nlohmann::json dispatch(RecurringStore& store, const std::string& call, const nlohmann::json& in) {
  const auto job = [&] { return in.at("job").get<std::string>(); };
  const auto run_id = [&] { return in.at("run_id").get<std::int64_t>(); };
  if (call == "begin_run") {
    std::optional<RecurringJobSpec> spec;
    if (!in.at("spec").is_null()) spec = spec_from_json(in.at("spec"));
    const RunOwner owner{in.at("host").get<std::string>(), in.at("pid").get<std::int64_t>()};
    return to_json(store.begin_run(job(), spec, owner));
  }
  if (call == "record_epoch") {
    store.record_epoch(run_id(), in.at("epoch").get<std::size_t>(), in.at("metric").get<double>(),
                       in.at("cost").get<double>());
    return nlohmann::json::object();
  }
  if (call == "end_run") {
    store.end_run(run_id(), end_from_json(in.at("end")));
    return nlohmann::json::object();
  }
  if (call == "heartbeat") {
    store.heartbeat(run_id());
    return nlohmann::json::object();
  }
  if (call == "save_profile") {
    store.save_profile(job(), in.at("batch_size").get<std::size_t>(),
                       profile_from_json(in.at("profile")));
    return nlohmann::json::object();
  }
  if (call == "profile") {
    const auto profile = store.profile(job(), in.at("batch_size").get<std::size_t>());
    return {{"profile", profile ? to_json(*profile) : nlohmann::json()}};
  }
  if (call == "job") {
    const auto spec = store.job(job());
    return {{"spec", spec ? to_json(*spec) : nlohmann::json()}};
  }
  if (call == "runs") {
    auto runs = nlohmann::json::array();
    for (const auto& run : store.runs(job())) runs.push_back(to_json(run));
    return {{"runs", runs}};
  }
  if (call == "run") return to_json(store.run(run_id()));
  if (call == "load") {
    auto observations = nlohmann::json::array();
    for (const auto& o : store.load(job())) observations.push_back(to_json(o));
    return {{"observations", observations}};
  }
  if (call == "append") {
    store.append(job(), observation_from_json(in.at("observation")));
    return nlohmann::json::object();
  }
  throw Error(ErrorCode::kNotFound, fmt::format("there is no call /v1/{}", call));
}

// Connections to the served store, one per request at a time.
class StorePool {
 public:
  StorePool(std::function<std::unique_ptr<RecurringStore>()> open, double lease_s)
      : open_(std::move(open)), lease_s_(lease_s) {
    // One at once, so a store that cannot be opened fails `chase serve` before it listens.
    free_.push_back(opened());
  }
  template <typename Work>
  auto with_store(Work&& work) -> decltype(work(std::declval<RecurringStore&>())) {
    std::unique_ptr<RecurringStore> store;
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        store = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (!store) store = opened();
    struct GiveBack {
      StorePool& pool;
      std::unique_ptr<RecurringStore>& store;
      ~GiveBack() {
        std::lock_guard lock(pool.mutex_);
        pool.free_.push_back(std::move(store));
      }
    } give_back{*this, store};
    return work(*store);
  }

 private:
  std::unique_ptr<RecurringStore> opened() {
    auto store = open_();
    store->set_lease(lease_s_);
    return store;
  }
  std::function<std::unique_ptr<RecurringStore>()> open_;
  double lease_s_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<RecurringStore>> free_;
};

void answer_error(httplib::Response& response, ErrorCode code, const std::string& message) {
  response.status = http_status(code);
  response.set_content(
      nlohmann::json{{"error", message}, {"code", std::string(to_string(code))}}.dump(),
      "application/json");
}

}  // namespace

std::string_view scope_for_call(std::string_view call) noexcept {
  for (std::string_view reading : {"job", "load", "profile", "runs", "run"}) {
    if (call == reading) return "recurring:read";
  }
  return "recurring:write";
}

ErrorCode error_code_named(const std::string& name) {
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    const auto code = static_cast<ErrorCode>(c);
    if (name == to_string(code)) return code;
  }
  return ErrorCode::kInternal;
}

class RecurringStoreServer::Impl {
 public:
  Impl(std::function<std::unique_ptr<RecurringStore>()> open_store, ServerOptions options)
      : options_(std::move(options)), pool_(std::move(open_store), options_.lease_s) {
    const auto threads = options_.threads;
    server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    // Small requests and replies on kept-alive connections: without TCP_NODELAY, Nagle's
    // algorithm meets the peer's delayed ACK and every call waits ~40 ms.
    server_.set_tcp_nodelay(true);
    server_.Post(R"(/v1/([a-z_]+))",
                 [this](const httplib::Request& request, httplib::Response& response) {
                   handle(request, response);
                 });
    port_ = options_.port == 0
                ? server_.bind_to_any_port(options_.host)
                : (server_.bind_to_port(options_.host, options_.port) ? options_.port : -1);
    if (port_ < 0) {
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("cannot listen on {}:{} (in use, or not an address of this "
                              "machine)",
                              options_.host, options_.port));
    }
  }

  void handle(const httplib::Request& request, httplib::Response& response) {
    if (options_.token_key) {
      if (const auto refused = refusal(request, *options_.token_key, request.matches[1].str())) {
        answer_error(response, ErrorCode::kPermissionDenied, refused->second);
        response.status = refused->first;
        if (refused->first == 401) response.set_header("WWW-Authenticate", "Bearer");
        return;
      }
    }
    try {
      nlohmann::json body;
      try {
        body = nlohmann::json::parse(request.body);
      } catch (const nlohmann::json::exception&) {
        throw Error(ErrorCode::kInvalidArgument, "the request body is not JSON");
      }
      const auto reply = pool_.with_store([&](RecurringStore& store) {
        try {
          return dispatch(store, request.matches[1], body);
        } catch (const nlohmann::json::exception& e) {
          throw Error(ErrorCode::kInvalidArgument,
                      fmt::format("a malformed request: {}", e.what()));
        }
      });
      response.set_content(reply.dump(), "application/json");
    } catch (const Error& e) {
      answer_error(response, e.code(), e.what());
    } catch (const std::exception& e) {
      answer_error(response, ErrorCode::kInternal, e.what());
    }
  }

  ServerOptions options_;
  StorePool pool_;
  httplib::Server server_;
  int port_ = -1;
};

RecurringStoreServer::RecurringStoreServer(
    std::function<std::unique_ptr<RecurringStore>()> open_store, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(open_store), std::move(options))) {}
RecurringStoreServer::~RecurringStoreServer() { stop(); }
int RecurringStoreServer::port() const noexcept { return impl_->port_; }
void RecurringStoreServer::serve() { impl_->server_.listen_after_bind(); }
void RecurringStoreServer::stop() { impl_->server_.stop(); }

namespace {

class HttpRecurringStore final : public RecurringStore {
 public:
  HttpRecurringStore(const std::string& url, const std::string& token) : url_(url), client_(url) {
    if (!client_.is_valid()) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("'{}' is not a server URL; use http://HOST:PORT", url));
    }
    client_.set_connection_timeout(5, 0);
    client_.set_read_timeout(120, 0);  // a decision waits behind other writers at most that long
    client_.set_keep_alive(true);
    client_.set_tcp_nodelay(true);  // see the server's: ~40 ms per call otherwise
    if (!token.empty()) client_.set_bearer_token_auth(token);
    call("job", {{"job", ""}});  // answers, or fails now: before any command runs
  }

  std::vector<BatchSizeObservation> load(const std::string& job) const override {
    std::vector<BatchSizeObservation> out;
    // The reply is kept: a loop over a member of the temporary would read freed memory.
    const auto reply = call("load", {{"job", job}});
    for (const auto& o : reply.at("observations")) out.push_back(observation_from_json(o));
    return out;
  }
  void append(const std::string& job, const BatchSizeObservation& o) override {
    call("append", {{"job", job}, {"observation", to_json(o)}});
  }
  RunDecision begin_run(const std::string& job, const std::optional<RecurringJobSpec>& spec,
                        const RunOwner& owner) override {
    return decision_from_json(call("begin_run", {{"job", job},
                                                 {"spec", spec ? to_json(*spec) : nlohmann::json()},
                                                 {"host", owner.host},
                                                 {"pid", owner.pid}}));
  }
  void record_epoch(std::int64_t run_id, std::size_t epoch, double metric, double cost) override {
    if (!std::isfinite(metric)) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("run {}: epoch {} reports the metric {}; only finite metrics count",
                              run_id, epoch, metric));
    }
    call("record_epoch",
         {{"run_id", run_id}, {"epoch", epoch}, {"metric", metric}, {"cost", cost}});
  }
  void end_run(std::int64_t run_id, const RunEnd& end) override {
    call("end_run", {{"run_id", run_id}, {"end", to_json(end)}});
  }
  void heartbeat(std::int64_t run_id) override { call("heartbeat", {{"run_id", run_id}}); }
  void save_profile(const std::string& job, std::size_t batch_size,
                    const SavedProfile& profile) override {
    call("save_profile", {{"job", job}, {"batch_size", batch_size}, {"profile", to_json(profile)}});
  }
  std::optional<SavedProfile> profile(const std::string& job,
                                      std::size_t batch_size) const override {
    const auto reply = call("profile", {{"job", job}, {"batch_size", batch_size}});
    if (reply.at("profile").is_null()) return std::nullopt;
    return profile_from_json(reply.at("profile"));
  }
  std::optional<RecurringJobSpec> job(const std::string& job) const override {
    const auto reply = call("job", {{"job", job}});
    if (reply.at("spec").is_null()) return std::nullopt;
    return spec_from_json(reply.at("spec"));
  }
  std::vector<RunRecord> runs(const std::string& job) const override {
    std::vector<RunRecord> out;
    const auto reply = call("runs", {{"job", job}});
    for (const auto& r : reply.at("runs")) out.push_back(run_from_json(r));
    return out;
  }
  RunRecord run(std::int64_t run_id) const override {
    return run_from_json(call("run", {{"run_id", run_id}}));
  }
  void set_lease(double) override {
    throw Error(ErrorCode::kNotSupported, "a served store's lease is set by chase serve --lease");
  }

 private:
  nlohmann::json call(const std::string& name, const nlohmann::json& body) const {
    const auto result = client_.Post(("/v1/" + name).c_str(), body.dump(), "application/json");
    if (!result) {
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("the chase server {} does not answer ({}); is `chase serve` running "
                              "there?",
                              url_, httplib::to_string(result.error())));
    }
    nlohmann::json reply;
    try {
      reply = nlohmann::json::parse(result->body);
    } catch (const nlohmann::json::exception&) {
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("{} answered HTTP {} without JSON: is it a chase server?", url_,
                              result->status));
    }
    if (result->status == 401) {
      throw Error(ErrorCode::kPermissionDenied,
                  fmt::format("{} refused the token ({}): give a token signed with the server's "
                              "key (`chased token issue --scope recurring:read,recurring:write`) "
                              "with --token-file, $CHASE_SERVER_TOKEN or $CHASE_SERVER_TOKEN_FILE",
                              url_, reply.value("error", "no reason given")));
    }
    if (result->status != 200) {
      throw Error(error_code_named(reply.value("code", "")),
                  reply.value("error", fmt::format("HTTP {}", result->status)));
    }
    return reply;
  }

  std::string url_;
  mutable httplib::Client client_;
};

}  // namespace

std::string server_token_from_environment() {
  return server::token_from_environment("CHASE_SERVER_TOKEN", "CHASE_SERVER_TOKEN_FILE")
      .value_or("");
}

std::unique_ptr<RecurringStore> open_http_store(const std::string& url, const std::string& token) {
  return std::make_unique<HttpRecurringStore>(url, token);
}

}  // namespace chase::store
