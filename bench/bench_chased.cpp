// chased's request path over the fake NVML, daemon and client in one process (the daemon's event
// loop on its own thread, the client on the benchmark thread, talking through a real Unix socket
// and a real TCP socket):
//   BM_SetLimitRoundTrip   one POST /gpus/0/power_limit through the library's daemon backend
//                          (alternating 200 and 250 W, so every call changes the limit and writes
//                          the durable record); counters p50_us and p99_us per call.
//   BM_SetLimitRoundTripNoRecord  the same with --no-state (no durable record): the record's share.
//   BM_MetricsScrape       one GET /metrics of 8 GPUs over TCP (keep-alive), as Prometheus does.
//   BM_SetLimitRoundTripTcpToken  BM_SetLimitRoundTrip over TCP (--listen), the bearer token
//                          verified on every request.
//   BM_VerifyToken         one TokenKey::verify() of a typical token (HMAC-SHA256, JSON payload).
// docs/BENCHMARKS.md has the figures and the command.
#include <benchmark/benchmark.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "chase/daemon_client.h"
#include "chase/nvml.h"
#include "server/daemon_server.h"
#include "server/daemon_service.h"
#include "server/token.h"
#include "support/fake_nvml_env.h"

namespace {

using chase::testing::FakeNvmlEnvironment;

// The fake NVML with 8 GPUs and chased serving it on a temporary socket.
struct BenchDaemon {
  FakeNvmlEnvironment env{FakeNvmlEnvironment::standard_config(8)};
  std::unique_ptr<chase::server::DaemonService> service;
  std::unique_ptr<chase::server::DaemonServer> server;
  std::thread loop;
  std::shared_ptr<const chase::server::TokenKey> key =
      std::make_shared<const chase::server::TokenKey>(chase::server::TokenKey::generate());

  explicit BenchDaemon(bool durable) {
    spdlog::set_level(spdlog::level::warn);  // a log line per change would be measured too
    chase::server::ServiceOptions options;
    if (durable) options.state_directory = env.directory() / "chased-state";
    service = std::make_unique<chase::server::DaemonService>(chase::open_nvml(), nullptr, options);
    chase::server::ServerOptions server_options;
    server_options.socket_path = env.directory() / "chased.sock";
    server_options.metrics_listen = "127.0.0.1:0";
    server_options.api_listen = "127.0.0.1:0";
    server_options.token_key = key;
    server = std::make_unique<chase::server::DaemonServer>(*service, server_options);
    loop = std::thread([this] { server->run(); });
  }
  ~BenchDaemon() {
    server->stop();
    loop.join();
  }
};

BenchDaemon& daemon(bool durable = true) {
  static BenchDaemon with_record(true);
  if (durable) return with_record;
  static BenchDaemon without_record(false);
  return without_record;
}

void report_percentiles(benchmark::State& state, std::vector<double>& micros) {
  if (micros.empty()) return;
  std::sort(micros.begin(), micros.end());
  state.counters["p50_us"] = micros[micros.size() / 2];
  state.counters["p99_us"] = micros[std::min(micros.size() - 1, micros.size() * 99 / 100)];
}

void set_limit_round_trip(benchmark::State& state, bool durable) {
  auto gpus =
      chase::open_daemon_gpus("unix:" + (daemon(durable).env.directory() / "chased.sock").string());
  std::vector<double> micros;
  bool low = false;
  for (auto _ : state) {
    low = !low;
    const auto start = std::chrono::steady_clock::now();
    gpus->set_power_limit_w(0, low ? 200 : 250);
    micros.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
  }
  report_percentiles(state, micros);
}
void BM_SetLimitRoundTrip(benchmark::State& state) { set_limit_round_trip(state, true); }
void BM_SetLimitRoundTripNoRecord(benchmark::State& state) { set_limit_round_trip(state, false); }
BENCHMARK(BM_SetLimitRoundTrip)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SetLimitRoundTripNoRecord)->Unit(benchmark::kMicrosecond);

void BM_MetricsScrape(benchmark::State& state) {
  httplib::Client client("127.0.0.1", daemon().server->metrics_port());
  client.set_keep_alive(true);
  std::vector<double> micros;
  std::size_t bytes = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const auto reply = client.Get("/metrics");
    micros.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
    if (!reply || reply->status != 200) {
      state.SkipWithError("GET /metrics failed");
      break;
    }
    bytes = reply->body.size();
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  report_percentiles(state, micros);
}
BENCHMARK(BM_MetricsScrape)->Unit(benchmark::kMicrosecond);

// A token like `chased token issue --scope read-gpus,control-gpus --ttl 8h` gives.
std::string bench_token(const chase::server::TokenKey& key) {
  const auto now = chase::server::unix_now();
  return key.issue({"bench-client", {"read-gpus", "control-gpus"}, now, now + 8 * 3600});
}

void BM_SetLimitRoundTripTcpToken(benchmark::State& state) {
  BenchDaemon& served = daemon();
  auto gpus = chase::open_daemon_gpus(
      "tcp://127.0.0.1:" + std::to_string(served.server->api_port()), bench_token(*served.key));
  std::vector<double> micros;
  bool low = false;
  for (auto _ : state) {
    low = !low;
    const auto start = std::chrono::steady_clock::now();
    gpus->set_power_limit_w(1, low ? 200 : 250);
    micros.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
  }
  report_percentiles(state, micros);
}
BENCHMARK(BM_SetLimitRoundTripTcpToken)->Unit(benchmark::kMicrosecond);

void BM_VerifyToken(benchmark::State& state) {
  const auto key = chase::server::TokenKey::generate();
  const std::string token = bench_token(key);
  for (auto _ : state) benchmark::DoNotOptimize(key.verify(token));
  state.counters["token_bytes"] = static_cast<double>(token.size());
}
BENCHMARK(BM_VerifyToken)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
