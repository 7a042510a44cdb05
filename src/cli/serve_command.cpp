// chase serve --store URL [--listen HOST:PORT] [--token-key FILE]: the recurring store and its
// optimiser behind an HTTP/JSON API (docs/RECURRING.md "HTTP API"), so many machines share one
// store without database credentials on each; `chase run --server http://HOST:PORT` uses it.
#include <fmt/format.h>
#include <signal.h>

#include <charconv>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "chase/error.h"
#include "chase/recurring_store.h"
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "server/token.h"
#include "store/http_store.h"

namespace chase::cli {
namespace {

struct ServeOptions {
  std::string store;
  std::string listen = "127.0.0.1:8470";
  std::string token_key;
  std::size_t threads = 8;
  double lease_s = kDefaultRunLeaseS;
};

// HOST:PORT; the port may be 0 (any free one).
std::pair<std::string, int> host_and_port(const std::string& text) {
  const auto colon = text.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    const auto digits = text.substr(colon + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size()) port = -1;
  }
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--listen '{}': give HOST:PORT, e.g. 127.0.0.1:8470 (port 0: any free "
                            "one)",
                            text));
  }
  return {text.substr(0, colon), port};
}

// The key that signs the bearer tokens (server/token.h): refused when others may read it.
std::shared_ptr<const server::TokenKey> read_token_key(const std::string& path) {
  if (path.empty()) return nullptr;
  try {
    return std::make_shared<const server::TokenKey>(server::TokenKey::load(path));
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("--token-key: {}", e.what()));
  }
}

int serve(const ServeOptions& options) {
  const auto [host, port] = host_and_port(options.listen);
  store::ServerOptions server_options;
  server_options.host = host;
  server_options.port = port;
  server_options.token_key = read_token_key(options.token_key);
  server_options.threads = options.threads;
  server_options.lease_s = options.lease_s;
  if (!server_options.token_key && host != "127.0.0.1" && host != "localhost" && host != "::1") {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--listen {} reaches other machines: give --token-key so that only "
                            "holders of tokens signed with it (chased token issue --scope "
                            "recurring:read,recurring:write) can decide and record runs",
                            options.listen));
  }
  // SIGINT/SIGTERM stop the server cleanly: waited for on a thread of their own.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const auto url = options.store;
  store::RecurringStoreServer server([url] { return open_recurring_store(url); }, server_options);
  std::cout << fmt::format("chase serve: listening on http://{}:{}\n", host, server.port())
            << std::flush;
  std::thread waiter([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    server.stop();
  });
  server.serve();
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand(
      "serve", "Share a recurring-job store over HTTP/JSON (chase run --server URL uses it)");
  cmd->add_option("--store", options->store, "The store: sqlite:PATH or postgresql://...")
      ->required();
  cmd->add_option("--listen", options->listen, "HOST:PORT to listen on (port 0: any free one)")
      ->capture_default_str();
  cmd->add_option("--token-key", options->token_key,
                  "Key file (chased token keygen, mode 0600) whose signed tokens every request "
                  "must carry; scopes recurring:read, recurring:write");
  cmd->add_option("--threads", options->threads, "Requests served at once")
      ->transform(whole_number(1, 256))
      ->capture_default_str();
  cmd->add_option("--lease", options->lease_s,
                  "Seconds without a heartbeat after which another host's open run counts as "
                  "killed")
      ->check(positive_number(86400 * 30))
      ->capture_default_str();
  cmd->callback([options, &exit_code] { exit_code = serve(*options); });
}

}  // namespace chase::cli
