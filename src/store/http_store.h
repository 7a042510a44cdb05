// Internal (store): the recurring store over HTTP/JSON — the server behind `chase serve` and the
// client `open_recurring_store("http://HOST:PORT")` returns (docs/RECURRING.md "HTTP API").
// Every RecurringStore call is one POST /v1/<call> with a JSON body and a JSON reply; a refused
// call answers 4xx/5xx with {"error": message, "code": name} and the client throws the same
// chase::Error. With a token key, every request must carry "Authorization: Bearer <token>" with a
// token signed by that key (server/token.h; issued by `chased token issue`): a missing, malformed,
// expired or badly signed one gets 401; a valid one without the scope the call needs gets 403
// naming it: "recurring:read" for the reading calls (job, load, profile, runs, run),
// "recurring:write" for every other. A refused call changes nothing.
//
// Thread safety: the server serves from a pool of threads, each call on its own store connection
// from a pool (the store's transactions order them); the client is one store, one thread at a time.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "chase/error.h"
#include "chase/recurring_store.h"

namespace chase::server {
class TokenKey;
}

namespace chase::store {

// The scope a call of the API needs ("recurring:read" or "recurring:write").
std::string_view scope_for_call(std::string_view call) noexcept;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: a free port, chosen by the system
  // The key that signs the bearer tokens; null: no authentication (only sensible on loopback).
  std::shared_ptr<const server::TokenKey> token_key;
  std::size_t threads = 8;
  double lease_s = kDefaultRunLeaseS;
};

class RecurringStoreServer {
 public:
  // `open_store` opens one more connection of the served store; called once per server thread.
  RecurringStoreServer(std::function<std::unique_ptr<RecurringStore>()> open_store,
                       ServerOptions options);
  ~RecurringStoreServer();  // stops serving
  RecurringStoreServer(const RecurringStoreServer&) = delete;
  RecurringStoreServer& operator=(const RecurringStoreServer&) = delete;
  int port() const noexcept;
  // Serves until stop() (from another thread or a signal handler's thread).
  void serve();
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// $CHASE_SERVER_TOKEN, else the first line of the file $CHASE_SERVER_TOKEN_FILE names, else empty;
// an unreadable or empty token file is a kNotFound / kInvalidArgument error naming it.
std::string server_token_from_environment();

// The client: `url` is http://HOST:PORT; `token` the bearer token (empty: none).
std::unique_ptr<RecurringStore> open_http_store(const std::string& url, const std::string& token);

// The ErrorCode whose to_string() is `name`; kInternal when none is.
ErrorCode error_code_named(const std::string& name);

}  // namespace chase::store
