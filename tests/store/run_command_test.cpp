// `chase run` and `chase run-report` end to end: a toy job replaying a Zeus trace recurs
// 2·|B|·|P| times on a SQLite store and must land where `chase simulate recurring` does, run for
// run; then the bad inputs of docs/RECURRING.md.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "chase/recurring_simulation.h"
#include "server/token.h"
#include "store/store_contract.h"
#include "support/process.h"
#include "support/real_data.h"
#include "support/small_zeus_trace.h"

namespace chase::testing {
namespace {

using ::testing::HasSubstr;

// Every run the store recorded, grouped into recurrences like the simulator's (runs up to one
// that reached the target), with their energy.
struct LiveRecurrence {
  double energy_j = 0;
  std::size_t batch_size = 0;
};

std::vector<LiveRecurrence> live_recurrences(const std::vector<RunRecord>& runs) {
  std::vector<LiveRecurrence> recurrences(1);
  for (const auto& run : runs) {
    recurrences.back().energy_j += run.energy_j;
    if (run.outcome == RunOutcome::kReached) {
      recurrences.back().batch_size = run.batch_size;
      recurrences.emplace_back();
    }
  }
  recurrences.pop_back();
  return recurrences;
}

class RunCommand : public SmallZeusTrace {
 protected:
  std::string store_url() const { return "sqlite:" + (store_dir_.path() / "store.db").string(); }

  // The job's options, from the trace's workload, as `simulate recurring` uses them.
  std::vector<std::string> job_options(const ZeusTrace& trace, std::uint64_t seed) const {
    std::string sizes;
    for (const auto size : trace.batch_sizes())
      sizes += (sizes.empty() ? "" : ",") + std::to_string(size);
    const auto& w = trace.workload();
    return {"--batch-sizes",
            sizes,
            "--default-batch-size",
            std::to_string(w.default_batch_size),
            "--target",
            "0.5",
            "--max-epochs",
            std::to_string(w.max_epochs),
            "--eta",
            "0.5",
            "--beta",
            "2",
            "--seed",
            std::to_string(seed),
            "--max-power",
            fmt::format("{}", trace.max_power_limit_w())};
  }

  ProcessResult chase_run(const std::string& job, std::vector<std::string> options,
                          std::vector<std::string> command) const {
    std::vector<std::string> args = {CHASE_CLI_PATH, "run",      "--job",       job, "--store",
                                     store_url(),    "--no-cpu", "--max-tries", "20"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--");
    args.insert(args.end(), command.begin(), command.end());
    return run_process(args, std::chrono::seconds(60));
  }

  // Recurs the toy job over `trace` and compares with the simulator, run for run.
  void expect_matches_simulation(const std::filesystem::path& trace_dir, const std::string& gpu,
                                 const std::string& workload, std::uint64_t seed) {
    const auto trace = ZeusTrace::load(trace_dir, gpu, zeus_workload(workload));
    const auto recurrences = default_recurrences(trace);
    const std::string job = "toy-" + workload;
    for (std::size_t i = 0; i < recurrences; ++i) {
      const auto r =
          chase_run(job, job_options(trace, seed),
                    {CHASE_TOY_JOB_PATH, trace_dir.string(), gpu, workload, std::to_string(seed)});
      ASSERT_EQ(r.exit_code, 0) << "recurrence " << i + 1 << ": " << r.err;
    }
    const auto sim = run_process(
        {CHASE_CLI_PATH, "simulate", "recurring", "--trace-dir", trace_dir.string(), "--gpu", gpu,
         "--workload", workload, "--seed", std::to_string(seed), "--json"},
        std::chrono::seconds(60));
    ASSERT_EQ(sim.exit_code, 0) << sim.err;
    const auto doc = nlohmann::json::parse(sim.out);

    auto store = open_recurring_store(store_url());
    const auto runs = store->runs(job);
    // Run for run: the same batch sizes, the same energies, the same outcomes.
    const auto& history = doc["history"];
    ASSERT_EQ(runs.size(), history.size());
    for (std::size_t i = 0; i < runs.size(); ++i) {
      EXPECT_EQ(runs[i].batch_size, history[i]["batch_size"].get<std::size_t>()) << "run " << i;
      EXPECT_EQ(runs[i].energy_j, history[i]["energy_j"].get<double>()) << "run " << i;
      EXPECT_EQ(runs[i].outcome == RunOutcome::kReached, history[i]["reached"].get<bool>());
    }
    const auto live = live_recurrences(runs);
    ASSERT_EQ(live.size(), recurrences);
    const auto& summary = doc["summary"];
    EXPECT_EQ(live.back().batch_size, summary["converged"]["batch_size"].get<std::size_t>());
    double last10 = 0;
    const std::size_t scored = std::min<std::size_t>(10, live.size());
    for (std::size_t i = live.size() - scored; i < live.size(); ++i) last10 += live[i].energy_j;
    last10 /= static_cast<double>(scored);
    const double reduction = 100 * (1 - last10 / doc["default"]["energy_j"].get<double>());
    EXPECT_NEAR(reduction, summary["energy_reduction_pct"].get<double>(), 1e-9);
    std::cout << fmt::format(
        "{} on {}: {} recurrences, {} runs; converged at batch {}; last-{} "
        "energy reduction {:.3f} % (simulator {:.3f} %)\n",
        workload, gpu, live.size(), runs.size(), live.back().batch_size, scored, reduction,
        summary["energy_reduction_pct"].get<double>());
  }

  TempDir store_dir_;
};

TEST_F(RunCommand, ToyJobOnSqliteMatchesTheSimulatorRunForRun) {
  expect_matches_simulation(dir_, "v100", "imagenet", 3);
}

TEST_F(RunCommand, ToyJobOnRealTraceMatchesTheSimulator) {
  const auto dir = real_zeus_trace_dir();
  CHASE_SKIP_UNLESS_REAL_DATA(dir);
  expect_matches_simulation(dir, "v100", "squad", 1);
}

TEST_F(RunCommand, SimulateWithAStoreGivesTheInMemoryNumbers) {
  const std::vector<std::string> base = {CHASE_CLI_PATH,  "simulate", "recurring", "--trace-dir",
                                         dir_.string(),   "--gpu",    "v100",      "--workload",
                                         "imagenet",      "--seed",   "5",         "--json",
                                         "--recurrences", "30"};
  const auto memory = run_process(base);
  ASSERT_EQ(memory.exit_code, 0) << memory.err;
  auto with_store = base;
  with_store.insert(with_store.end(), {"--store", store_url()});
  const auto stored = run_process(with_store);
  ASSERT_EQ(stored.exit_code, 0) << stored.err;
  EXPECT_EQ(nlohmann::json::parse(stored.out), nlohmann::json::parse(memory.out));
  EXPECT_GT(open_recurring_store(store_url())->load("simulate/imagenet/v100").size(), 30u);
  // The same job again would continue its history: refused, with what to do.
  const auto again = run_process(with_store);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("give another --job"));
}

// A shell script under chase run: the environment, run-report's answers, the outcome recorded.
TEST_F(RunCommand, ShellScriptReportsWithRunReport) {
  const auto script = store_dir_.path() / "train.sh";
  std::ofstream(script)
      << "#!/bin/sh\n"
         "echo \"$CHASE_JOB $CHASE_BATCH_SIZE $CHASE_PROFILE\" > \"$1\"\n"
         "for e in 1 2 3 4 5 6 7 8 9 10; do\n"
         "  metric=$(echo \"$e $CHASE_BATCH_SIZE\" | awk '{print $1 * $2 / 100}')\n"
         "  answer=$(\"$CHASE_CLI\" run-report --epoch $e --metric $metric) || exit 3\n"
         "  case \"$answer\" in stop*) exit 0;; esac\n"
         "done\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  setenv("CHASE_CLI", CHASE_CLI_PATH, 1);
  const auto seen = store_dir_.path() / "seen";
  const auto r = chase_run(
      "shell", {"--batch-sizes", "32,64", "--target", "1.5", "--max-power", "300", "--json"},
      {"/bin/sh", script.string(), seen.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string line;
  std::getline(std::ifstream(seen), line);
  EXPECT_EQ(line, "shell 32 1");
  const auto report = nlohmann::json::parse(r.out);
  ASSERT_EQ(report["runs"].size(), 1u);
  EXPECT_EQ(report["runs"][0]["outcome"], "reached");
  EXPECT_EQ(report["runs"][0]["epochs"], 5);  // 5 × 32 / 100 = 1.6 ≥ 1.5
  const auto runs = open_recurring_store(store_url())->runs("shell");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].outcome, RunOutcome::kReached);
  EXPECT_EQ(runs[0].last_metric, 1.6);
}

TEST_F(RunCommand, BadInputIsRefusedBeforeTheCommandRuns) {
  const auto marker = store_dir_.path() / "started";
  const std::vector<std::string> touch = {"/usr/bin/touch", marker.string()};
  // Unknown job without its options.
  auto r = chase_run("nobody", {}, touch);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("unknown job 'nobody'"));
  // A URL that does not parse, and a database that does not answer.
  r = run_process({CHASE_CLI_PATH, "run", "--job", "j", "--store", "mysql://x", "--batch-sizes",
                   "8", "--target", "1", "--max-power", "1", "--", touch[0], touch[1]});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("not a store URL"));
  r = run_process({CHASE_CLI_PATH, "run", "--job", "j", "--store",
                   "postgresql:///none?host=" + store_dir_.path().string(), "--batch-sizes", "8",
                   "--target", "1", "--max-power", "1", "--", touch[0], touch[1]});
  EXPECT_EQ(r.exit_code, 69) << r.err;
  // Options that contradict the stored ones.
  ASSERT_EQ(
      chase_run("j", {"--batch-sizes", "8,16", "--target", "1", "--max-power", "1"}, {"/bin/true"})
          .exit_code,
      1);  // ran, never reported: failed, recorded (20 tries)
  r = chase_run("j", {"--beta", "3"}, touch);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("beta: stored 2, given 3"));
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(RunCommand, ScriptThatNeverReportsOrCrashesIsRecordedAsFailed) {
  const std::vector<std::string> job = {"--batch-sizes", "8", "--target", "1", "--max-power", "1"};
  // Each failure is recorded and the next size tried, until pruning has none left.
  auto r = chase_run("silent", {"--batch-sizes", "8,16,32", "--target", "1", "--max-power", "1"},
                     {"/bin/true"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("without reporting an epoch"));
  EXPECT_THAT(r.err, HasSubstr("no batch size reached the target"));
  auto store = open_recurring_store(store_url());
  EXPECT_EQ(store->runs("silent").size(), 2u);  // 8 (the default), then up: 16; 32 never tried
  for (const auto& run : store->runs("silent")) EXPECT_EQ(run.outcome, RunOutcome::kFailed);

  r = chase_run("crash", job, {"/bin/sh", "-c", "kill -SEGV $$"});
  EXPECT_EQ(r.exit_code, 128 + SIGSEGV);
  EXPECT_THAT(r.err, HasSubstr("crashed"));
  ASSERT_EQ(store->runs("crash").size(), 1u);  // a crash is not retried
  EXPECT_EQ(store->runs("crash")[0].outcome, RunOutcome::kFailed);

  r = chase_run("exit3", job, {"/bin/sh", "-c", "exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(store->runs("exit3").size(), 1u);
}

TEST_F(RunCommand, NonFiniteMetricsAndStrayReportsAreRefused) {
  // Outside chase run: nothing to report to.
  auto r = run_process({CHASE_CLI_PATH, "run-report", "--epoch", "1", "--metric", "0.5"});
  EXPECT_EQ(r.exit_code, 69);
  EXPECT_THAT(r.err, HasSubstr("not started by `chase run`"));
  // NaN and inf, from inside: refused, and the run goes on to a good report.
  const auto script = store_dir_.path() / "nan.sh";
  std::ofstream(script)
      << "#!/bin/sh\n"
         "\"$CHASE_CLI\" run-report --epoch 1 --metric nan 2> \"$1.nan\" && exit 4\n"
         "\"$CHASE_CLI\" run-report --epoch 1 --metric inf 2> \"$1.inf\" && exit 5\n"
         "\"$CHASE_CLI\" run-report --epoch 1 --metric 2\n";
  setenv("CHASE_CLI", CHASE_CLI_PATH, 1);
  const auto out = store_dir_.path() / "err";
  r = chase_run("nan", {"--batch-sizes", "8", "--target", "1", "--max-power", "1"},
                {"/bin/sh", script.string(), out.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string nan_error;
  std::getline(std::ifstream(out.string() + ".nan"), nan_error);
  EXPECT_THAT(nan_error, HasSubstr("not a finite number"));
  EXPECT_EQ(open_recurring_store(store_url())->runs("nan")[0].outcome, RunOutcome::kReached);
}

// kill -9 of chase run mid-recurrence: the next chase run records the run as killed and proceeds.
TEST_F(RunCommand, KilledChaseRunIsRecordedByTheNextOne) {
  setenv("CHASE_CLI", CHASE_CLI_PATH, 1);
  // chase run's socket folder goes under TMPDIR; a killed chase run cannot remove it, the test
  // does.
  setenv("TMPDIR", store_dir_.path().c_str(), 1);
  Process killed({CHASE_CLI_PATH, "run", "--job", "k", "--store", store_url(), "--no-cpu",
                  "--batch-sizes", "8", "--target", "1", "--max-power", "1", "--", "/bin/sh", "-c",
                  "sleep 10"});
  auto store = open_recurring_store(store_url());
  for (int i = 0; i < 100 && store->runs("k").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(store->runs("k").size(), 1u);
  unsetenv("TMPDIR");
  ::kill(killed.pid(), SIGKILL);
  EXPECT_EQ(killed.wait().signal, SIGKILL);
  const auto r =
      chase_run("k", {}, {"/bin/sh", "-c", "\"$CHASE_CLI\" run-report --epoch 1 --metric 1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("recorded as killed"));
  const auto runs = store->runs("k");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].outcome, RunOutcome::kKilled);
  EXPECT_EQ(runs[1].outcome, RunOutcome::kReached);
}

}  // namespace
}  // namespace chase::testing

namespace chase::testing {
namespace {

// The Python two-line API (python/chase/recurring.py, pure Python, loaded by path so the compiled
// module is not needed).
TEST_F(RunCommand, PythonScriptReportsWithTheTwoLineApi) {
  if (std::system("python3 -c 'import json, socket' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3 is not installed";
  }
  const auto script = store_dir_.path() / "train.py";
  std::ofstream(script) << "import importlib.util, sys\n"
                           "spec = importlib.util.spec_from_file_location('recurring', '"
                        << CHASE_SOURCE_DIR
                        << "/python/chase/recurring.py')\n"
                           "recurring = importlib.util.module_from_spec(spec)\n"
                           "sys.modules['recurring'] = recurring\n"
                           "spec.loader.exec_module(recurring)\n"
                           "run = recurring.Run.from_environment()\n"
                           "for epoch in range(1, 100):\n"
                           "    if run.report(epoch, epoch * run.batch_size / 100).stop:\n"
                           "        break\n"
                           "try:\n"
                           "    run.report(epoch + 1, 1.0)\n"
                           "    sys.exit(7)\n"
                           "except recurring.RunError as e:\n"
                           "    print(e, file=sys.stderr)\n";
  const auto r = chase_run(
      "python", {"--batch-sizes", "64,32", "--target", "2", "--max-power", "300", "--json"},
      {"python3", script.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("already told to stop"));
  const auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["runs"][0]["batch_size"], 64);  // the first size is the default
  EXPECT_EQ(report["runs"][0]["epochs"], 4);       // 4 × 64 / 100 = 2.56 ≥ 2
  EXPECT_EQ(report["runs"][0]["outcome"], "reached");
}

}  // namespace
}  // namespace chase::testing

namespace chase::testing {
namespace {

// A `chase serve` on 127.0.0.1, a free port, with a token key; killed (SIGKILL) by the destructor.
class Served {
 public:
  Served(const std::string& store_url, const std::filesystem::path& key_file)
      : process_({CHASE_CLI_PATH, "serve", "--store", store_url, "--listen", "127.0.0.1:0",
                  "--token-key", key_file.string()}) {
    if (!process_.wait_for_output("listening on http://", std::chrono::seconds(20))) {
      throw std::runtime_error("chase serve did not start: " + process_.stderr_so_far());
    }
    const auto out = process_.stdout_so_far();
    const auto at = out.find("http://");
    url_ = out.substr(at, out.find('\n', at) - at);
  }
  ~Served() { ::kill(process_.pid(), SIGKILL); }
  const std::string& url() const { return url_; }
  Process& process() { return process_; }

 private:
  Process process_;
  std::string url_;
};

class ServeCommand : public RunCommand {
 protected:
  // The server's signing key (created once, mode 0600).
  std::filesystem::path key_file() const {
    const auto path = store_dir_.path() / "token.key";
    if (!std::filesystem::exists(path)) server::TokenKey::generate().create_key_file(path);
    return path;
  }
  // A token signed with key_file() carrying `scopes`.
  std::string token(std::vector<std::string> scopes = {"recurring:read", "recurring:write"}) const {
    const auto now = server::unix_now();
    return server::TokenKey::load(key_file())
        .issue({"run-test", std::move(scopes), now, now + 600});
  }
  std::filesystem::path token_file() const {
    const auto path = store_dir_.path() / "token";
    std::ofstream(path) << token() << "\n";
    return path;
  }
  ProcessResult run_via(const std::string& url, const std::string& job,
                        std::vector<std::string> options, std::vector<std::string> command) const {
    std::vector<std::string> args = {CHASE_CLI_PATH, "run", "--job",        job,
                                     "--server",     url,   "--token-file", token_file().string(),
                                     "--no-cpu"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--");
    args.insert(args.end(), command.begin(), command.end());
    return run_process(args, std::chrono::seconds(60));
  }
};

TEST_F(ServeCommand, RunsThroughTheServerLandInItsStore) {
  Served served(store_url(), key_file());
  setenv("CHASE_CLI", CHASE_CLI_PATH, 1);
  const std::vector<std::string> job = {"--batch-sizes", "8,16", "--target", "1",
                                        "--max-power",   "100"};
  for (int i = 0; i < 3; ++i) {
    const auto r = run_via(served.url(), "shared", job,
                           {"/bin/sh", "-c", "\"$CHASE_CLI\" run-report --epoch 1 --metric 1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const auto runs = open_recurring_store(store_url())->runs("shared");
  ASSERT_EQ(runs.size(), 3u);
  for (const auto& run : runs) EXPECT_EQ(run.outcome, RunOutcome::kReached);
  // The HTTP store answers like the database behind it.
  auto over_http = open_recurring_store(served.url(), token());
  EXPECT_EQ(over_http->load("shared").size(), 3u);
  EXPECT_EQ(over_http->runs("shared").back().run_id, runs.back().run_id);
  error_message([&] { over_http->run(424242); }, ErrorCode::kNotFound);
}

TEST_F(ServeCommand, WrongTokenAndDeadServerAreRefusedBeforeTheCommandRuns) {
  const auto marker = store_dir_.path() / "started";
  {
    Served served(store_url(), key_file());
    const auto wrong = store_dir_.path() / "wrong";
    std::ofstream(wrong) << "not-the-token-at-all\n";
    const auto r = run_process({CHASE_CLI_PATH, "run", "--job", "j", "--server", served.url(),
                                "--token-file", wrong.string(), "--batch-sizes", "8", "--target",
                                "1", "--max-power", "1", "--", "/usr/bin/touch", marker.string()});
    EXPECT_EQ(r.exit_code, 77) << r.err;
    EXPECT_THAT(r.err, HasSubstr("refused the token"));
    // A valid token that may only read: refused at the first write, before the command runs.
    std::ofstream(wrong) << token({"recurring:read"}) << "\n";
    const auto reader =
        run_process({CHASE_CLI_PATH, "run", "--job", "j", "--server", served.url(), "--token-file",
                     wrong.string(), "--batch-sizes", "8", "--target", "1", "--max-power", "1",
                     "--", "/usr/bin/touch", marker.string()});
    EXPECT_EQ(reader.exit_code, 77) << reader.err;
    EXPECT_THAT(reader.err, HasSubstr("permission 'recurring:write' is missing"));
  }
  // Nothing listens there any more.
  const auto r = run_via("http://127.0.0.1:1", "j",
                         {"--batch-sizes", "8", "--target", "1", "--max-power", "1"},
                         {"/usr/bin/touch", marker.string()});
  EXPECT_EQ(r.exit_code, 69) << r.err;
  EXPECT_THAT(r.err, HasSubstr("does not answer"));
  EXPECT_FALSE(std::filesystem::exists(marker));
}

// kill -9 of chase serve mid-recurrence: the store stays consistent; with a new server the open
// run is recorded as killed once its chase run is gone, and the next run proceeds.
TEST_F(ServeCommand, KilledServerLeavesTheStoreConsistent) {
  setenv("CHASE_CLI", CHASE_CLI_PATH, 1);
  auto served = std::make_unique<Served>(store_url(), key_file());
  const std::vector<std::string> job = {"--batch-sizes", "8", "--target", "1", "--max-power", "1"};
  Process run({CHASE_CLI_PATH, "run", "--job", "k", "--server", served->url(), "--token-file",
               token_file().string(), "--no-cpu", "--batch-sizes", "8", "--target", "1",
               "--max-power", "1", "--", "/bin/sh", "-c",
               "sleep 1; \"$CHASE_CLI\" run-report --epoch 1 --metric 1"});
  auto store = open_recurring_store(store_url());
  for (int i = 0; i < 200 && store->runs("k").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_EQ(store->runs("k").size(), 1u);
  served.reset();  // SIGKILL while the run is open
  const auto lost = run.wait(std::chrono::seconds(30));
  EXPECT_NE(lost.exit_code, 0);  // its report and its end could not reach the server
  EXPECT_THAT(lost.err, HasSubstr("does not answer"));
  EXPECT_EQ(store->runs("k")[0].outcome, RunOutcome::kOpen);

  Served again(store_url(), key_file());
  const auto r = run_via(again.url(), "k", {},
                         {"/bin/sh", "-c", "\"$CHASE_CLI\" run-report --epoch 1 --metric 1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("recorded as killed"));
  const auto runs = store->runs("k");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].outcome, RunOutcome::kKilled);
  EXPECT_EQ(runs[1].outcome, RunOutcome::kReached);
  EXPECT_EQ(store->load("k").size(), 1u);
}

}  // namespace
}  // namespace chase::testing
