// chased: the chase node daemon. Serves GPU power limits (as leases that end with their client),
// power and energy readings and Prometheus metrics to users who may not change limits themselves.
// Usage and the API: docs/DAEMON.md.
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <chrono>
#include <iostream>

#include "chase/cpu.h"
#include "chase/error.h"
#include "chase/nvml.h"
#include "common/exit_status.h"
#include "server/carbon_feed.h"
#include "server/chased_options.h"
#include "server/daemon_server.h"
#include "server/daemon_service.h"

namespace {

using chase::Error;
using chase::ErrorCode;

struct DaemonOptions {
  std::string socket = "/run/chased/chased.sock";
  std::string socket_mode = "0660";
  std::string socket_group;
  std::string socket_owner;
  std::string metrics_listen;
  std::string listen;  // the whole API over TCP, with bearer tokens signed by token_key
  std::string token_key;
  std::string config;
  std::string state_dir = "/run/chased";
  std::string allow_read_gpus = "*";
  std::string allow_control_gpus;
  std::string allow_read_cpus;
  std::size_t max_connections = 256;
  unsigned request_timeout_ms = 10000;
  bool no_state = false;
  std::string carbon;         // --carbon: a provider spec (server/carbon_feed.h)
  std::string carbon_config;  // --carbon-config: the providers' JSON settings
  unsigned carbon_refresh_s = 300;
};

// A socket path held by a live daemon is "unavailable" to this one (EX_UNAVAILABLE).
int exit_code_for(ErrorCode code) {
  return code == ErrorCode::kAlreadyExists ? 69 : exit_status_for(code);
}

mode_t parse_mode(const std::string& text) {
  unsigned mode = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), mode, 8);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || mode > 0777) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("--socket-mode '{}': expected octal permission bits such as 0660", text));
  }
  if ((mode & 0002) != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--socket-mode {}: a world-writable socket lets every local user "
                            "connect; use 0660 with --socket-group, or 0666 only together with "
                            "explicit --allow-* lists",
                            text));
  }
  return static_cast<mode_t>(mode);
}

chase::server::AccessPolicy make_policy(const DaemonOptions& options) {
  using chase::server::parse_allow_list;
  auto policy = chase::server::AccessPolicy::defaults();
  policy.read_gpus = parse_allow_list(options.allow_read_gpus, "--allow-read-gpus");
  if (!options.allow_control_gpus.empty()) {
    policy.control_gpus = parse_allow_list(options.allow_control_gpus, "--allow-control-gpus");
  }
  if (!options.allow_read_cpus.empty()) {
    policy.read_cpus = parse_allow_list(options.allow_read_cpus, "--allow-read-cpus");
  }
  return policy;
}

std::shared_ptr<chase::GpuBackend> open_gpus_or_none() {
  try {
    return chase::open_nvml();
  } catch (const Error& e) {
    spdlog::warn("chased: no GPUs: {}", e.what());
    return nullptr;
  }
}

std::shared_ptr<chase::CpuBackend> open_cpus_or_none() {
  try {
    auto backend = chase::open_rapl();
    if (backend->zones().empty()) return nullptr;
    return backend;
  } catch (const Error& e) {
    spdlog::warn("chased: no CPU energy: {}", e.what());
    return nullptr;
  }
}

int serve(const DaemonOptions& options) {
  // Termination signals arrive through a signalfd the event loop polls: the loop then ends every
  // lease (restoring the limits) before the process exits.
  sigset_t signals;
  sigemptyset(&signals);
  for (int signal : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, signal);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  const int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd < 0) throw Error(ErrorCode::kInternal, "chased: cannot create a signalfd");

  chase::server::ServiceOptions service_options;
  service_options.policy = make_policy(options);
  std::unique_ptr<chase::server::CarbonFeed> carbon;
  if (!options.carbon.empty()) {
    carbon = std::make_unique<chase::server::CarbonFeed>(
        chase::server::make_feed_provider(options.carbon, options.carbon_config),
        std::chrono::seconds(options.carbon_refresh_s));
    service_options.extra_metrics = [&carbon] { return carbon->metrics(); };
  }
  if (!options.no_state) service_options.state_directory = options.state_dir;
  chase::server::DaemonService service(open_gpus_or_none(), open_cpus_or_none(),
                                       std::move(service_options));

  chase::server::ServerOptions server_options;
  server_options.socket_path = options.socket;
  server_options.socket_mode = parse_mode(options.socket_mode);
  if (!options.socket_group.empty()) {
    const group* found = ::getgrnam(options.socket_group.c_str());
    if (found == nullptr) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("--socket-group '{}': no such group", options.socket_group));
    }
    server_options.socket_group = found->gr_gid;
  }
  if (!options.socket_owner.empty()) {
    const passwd* found = ::getpwnam(options.socket_owner.c_str());
    if (found == nullptr) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("--socket-owner '{}': no such user", options.socket_owner));
    }
    server_options.socket_owner = found->pw_uid;
  }
  server_options.api_listen = options.listen;
  if (!options.token_key.empty()) {
    server_options.token_key = std::make_shared<const chase::server::TokenKey>(
        chase::server::TokenKey::load(options.token_key));
  }
  server_options.metrics_listen = options.metrics_listen;
  server_options.max_connections = options.max_connections;
  server_options.request_timeout = std::chrono::milliseconds(options.request_timeout_ms);
  chase::server::DaemonServer server(service, server_options);

  std::string ready = fmt::format("chased: ready, API on unix:{}", options.socket);
  if (!options.metrics_listen.empty()) {
    const auto [host, port] =
        chase::server::parse_listen_address(options.metrics_listen, "--metrics-listen");
    ready += fmt::format(", metrics on {}:{}", host, server.metrics_port());
  }
  if (!options.listen.empty()) {
    const auto [host, port] = chase::server::parse_listen_address(options.listen, "--listen");
    ready += fmt::format(", API with tokens on {}:{}", host, server.api_port());
  }
  std::cout << ready << std::endl;
  server.run(signal_fd);
  ::close(signal_fd);
  std::cout << "chased: stopped, every leased limit restored" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chased: the chase node daemon (GPU power limits as leases, readings, metrics)"};
  DaemonOptions options;
  app.add_option("--socket", options.socket, "Unix socket of the API")->capture_default_str();
  app.add_option("--socket-mode", options.socket_mode, "Permission bits of the socket (octal)")
      ->capture_default_str();
  app.add_option("--socket-group", options.socket_group, "Group owning the socket");
  app.add_option("--socket-owner", options.socket_owner, "User owning the socket");
  app.add_option("--listen", options.listen,
                 "HOST:PORT serving the whole API over TCP; every request needs a bearer token "
                 "(needs --token-key)");
  app.add_option("--token-key", options.token_key,
                 "Key file that signs the bearer tokens (chased token keygen; mode 0600)");
  app.set_config("--config", "", "JSON file whose keys are these long option names")
      ->configurable(false);
  app.config_formatter(std::make_shared<chase::server::JsonConfig>(app));
  app.allow_config_extras(false);
  int token_exit = 0;
  auto* token = chase::server::add_token_commands(app, token_exit);
  app.add_option("--metrics-listen", options.metrics_listen,
                 "HOST:PORT serving GET /metrics (Prometheus), read-only");
  app.add_option("--state-dir", options.state_dir,
                 "Directory of the record of changed limits (restored after a crash)")
      ->capture_default_str();
  app.add_flag("--no-state", options.no_state, "Keep no record (a crash leaves limits changed)");
  app.add_option("--allow-read-gpus", options.allow_read_gpus,
                 "Who may read GPUs: uid:N,gid:N,user:NAME,group:NAME or *")
      ->capture_default_str();
  app.add_option("--allow-control-gpus", options.allow_control_gpus,
                 "Who may change GPU power limits (default: root and the daemon's user)");
  app.add_option("--allow-read-cpus", options.allow_read_cpus,
                 "Who may read CPU (RAPL) energy (default: root and the daemon's user)");
  app.add_option("--max-connections", options.max_connections, "Connections served at once")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--request-timeout-ms", options.request_timeout_ms,
                 "A request left incomplete this long gets 408 and its connection is closed")
      ->check(CLI::Range(100u, 600000u))
      ->capture_default_str();
  auto* carbon = app.add_option("--carbon", options.carbon,
                                "Serve the grid's carbon intensity in /metrics from this provider "
                                "(electricitymaps, watttime, ukgrid, carbon-aware-sdk, file) or "
                                "file:CSV");
  app.add_option("--carbon-config", options.carbon_config,
                 "JSON settings of the carbon providers (the environment wins)")
      ->needs(carbon)
      ->check(CLI::ExistingFile);
  app.add_option("--carbon-refresh-s", options.carbon_refresh_s,
                 "Seconds between two refreshes of the carbon intensity")
      ->needs(carbon)
      ->check(CLI::Range(1u, 86400u))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (token->parsed()) return token_exit;
  try {
    if (const auto* config = app.get_config_ptr(); config != nullptr && config->count() > 0) {
      chase::server::check_config_file(config->as<std::string>());
    }
    if (!options.listen.empty() && options.token_key.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "--listen needs --token-key FILE: over TCP chased cannot tell who connects, so "
                  "every request must carry a token signed with that key (chased token keygen)");
    }
    return serve(options);
  } catch (const Error& e) {
    std::cerr << "chased: " << e.what() << '\n';
    return exit_code_for(e.code());
  } catch (const std::exception& e) {
    std::cerr << "chased: internal error: " << e.what() << '\n';
    return 1;
  }
}
