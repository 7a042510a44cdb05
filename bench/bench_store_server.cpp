// `chase serve` under load, on loopback (docs/BENCHMARKS.md "Recurring store"): client threads
// each run whole recurrences' store traffic — a decision (begin_run) and its outcome (end_run),
// over HTTP with keep-alive — against a served SQLite store, and, when CHASE_BENCH_POSTGRES_URL
// names a database, a served PostgreSQL one. Reported: decisions per second (items_per_second)
// and the decision latency's p50 and p99 in ms. Bounded: --benchmark_min_time caps each run.
//
//   chase_bench_store_server --benchmark_min_time=3s
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "chase/recurring_store.h"
#include "server/token.h"
#include "store/http_store.h"

namespace {

chase::RecurringJobSpec spec() {
  chase::RecurringJobSpec s;
  s.batch_sizes = {16, 32, 64, 128, 256};
  s.default_batch_size = 64;
  s.target_metric = 0.9;
  s.max_power_w = 300;
  return s;
}

// A served store for the whole program: SQLite in a temporary folder (or PostgreSQL).
struct Served {
  explicit Served(std::string served_store) : store_url(std::move(served_store)) {
    chase::store::ServerOptions options;
    options.threads = 16;
    options.token_key = key;
    server = std::make_unique<chase::store::RecurringStoreServer>(
        [u = store_url] { return chase::open_recurring_store(u); }, options);
    thread = std::thread([this] { server->serve(); });
    url = "http://127.0.0.1:" + std::to_string(server->port());
  }
  ~Served() {
    server->stop();
    thread.join();
  }
  // A signed token with both scopes, as `chased token issue` makes (verified on every call).
  std::string token() const {
    const auto now = chase::server::unix_now();
    return key->issue({"bench", {"recurring:read", "recurring:write"}, now, now + 3600});
  }
  std::string store_url;
  std::shared_ptr<const chase::server::TokenKey> key =
      std::make_shared<const chase::server::TokenKey>(chase::server::TokenKey::generate());
  std::unique_ptr<chase::store::RecurringStoreServer> server;
  std::thread thread;
  std::string url;
};

// A real job recurs a few hundred times. Each thread moves to a fresh job every
// kRecurrencesPerJob decisions, so the figures are those of jobs with 0-200 recurrences behind
// them (and of the first decision of a job on each server connection, which builds the job's
// cached optimiser from the history; later ones only catch up on what was appended since).
constexpr std::size_t kRecurrencesPerJob = 200;
std::string job_name(const char* kind, const benchmark::State& state, std::size_t iteration) {
  return fmt::format("{}-{}-{}-{}", kind, getpid(), state.thread_index(),
                     iteration / kRecurrencesPerJob);
}

std::mutex latencies_mutex;
std::condition_variable all_in;
std::vector<double> latencies_ms;
int threads_in = 0;

void served_decisions(benchmark::State& state, Served& served) {
  auto store = chase::store::open_http_store(served.url, served.token());
  const chase::RunOwner owner{"bench", static_cast<std::int64_t>(getpid())};
  std::vector<double> mine;
  std::size_t iteration = 0;
  for (auto _ : state) {
    const auto job = job_name("served", state, iteration++);
    const auto start = std::chrono::steady_clock::now();
    const auto decision = store->begin_run(job, spec(), owner);
    mine.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
    const double cost = 1000 + static_cast<double>(decision.batch_size);
    store->end_run(decision.run_id, {chase::RunOutcome::kReached, 3, cost, 1, cost, 0});
  }
  state.SetItemsProcessed(state.iterations());
  std::unique_lock lock(latencies_mutex);
  latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
  ++threads_in;
  all_in.notify_all();
  if (state.thread_index() == 0) {
    // Thread 0 reports once every thread's latencies are in.
    all_in.wait(lock, [&] { return threads_in == state.threads(); });
    threads_in = 0;
    auto all = latencies_ms;
    std::sort(all.begin(), all.end());
    if (!all.empty()) {
      state.counters["p50_ms"] = all[all.size() / 2];
      state.counters["p99_ms"] = all[all.size() * 99 / 100];
      state.counters["decisions"] = static_cast<double>(all.size());
    }
    latencies_ms.clear();
  }
}

// The benchmark's temporary folder, removed at exit (statics are destroyed in reverse order, so
// after the servers using it).
const std::filesystem::path& bench_dir() {
  struct Dir {
    Dir()
        : path(std::filesystem::temp_directory_path() /
               ("chase_bench_store_" + std::to_string(getpid()))) {
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
    std::filesystem::path path;
  };
  static const Dir dir;
  return dir.path;
}

Served* sqlite_served() {
  static Served served("sqlite:" + (bench_dir() / "served.db").string());
  return &served;
}

void BM_ServedDecisionsSqlite(benchmark::State& state) {
  served_decisions(state, *sqlite_served());
}
BENCHMARK(BM_ServedDecisionsSqlite)->Threads(1)->Threads(8)->UseRealTime();

// The same traffic on the store directly (no HTTP): what the database itself costs.
void BM_DirectDecisionsSqlite(benchmark::State& state) {
  static const auto url = "sqlite:" + (bench_dir() / "direct.db").string();
  auto store = chase::open_recurring_store(url);
  const chase::RunOwner owner{"bench", static_cast<std::int64_t>(getpid())};
  std::size_t iteration = 0;
  for (auto _ : state) {
    const auto job = job_name("direct", state, iteration++);
    const auto decision = store->begin_run(job, spec(), owner);
    const double cost = 1000 + static_cast<double>(decision.batch_size);
    store->end_run(decision.run_id, {chase::RunOutcome::kReached, 3, cost, 1, cost, 0});
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DirectDecisionsSqlite)->Threads(1)->Threads(8)->UseRealTime();

void BM_ServedDecisionsPostgres(benchmark::State& state) {
  const char* url = std::getenv("CHASE_BENCH_POSTGRES_URL");
  if (url == nullptr || *url == '\0') {
    state.SkipWithError("set CHASE_BENCH_POSTGRES_URL to a postgresql:// database to run this");
    for (auto _ : state) {
    }
    return;
  }
  static Served served(url);
  served_decisions(state, served);
}
BENCHMARK(BM_ServedDecisionsPostgres)->Threads(1)->Threads(8)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
