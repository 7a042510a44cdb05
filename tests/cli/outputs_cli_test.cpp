// End-to-end tests of what the `chase` commands write and read when the files misbehave: outputs in
// a missing directory, on a full disk (/dev/full), naming an input of the same run; inputs that
// never end (/dev/zero, a FIFO, a provider's endless body); a huge thread count. The real binary,
// the fake NVML library, a 127.0.0.1 replay server (cli/output_file.h, common/bounded_input.h).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "carbon/http_client.h"
#include "chase/error.h"
#include "chase/time.h"
#include "support/cli_fixture.h"
#include "support/fake_nvml_env.h"
#include "support/golden.h"
#include "support/process.h"
#include "support/replay_server.h"
#include "support/scoped_env.h"
#include "support/simulate_carbon_case.h"

namespace chase {
namespace {

using chase::testing::ScopedEnv;
using testing::FakeNvmlEnvironment;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ProcessResult;
using testing::read_file;
using testing::run_process;
namespace fs = std::filesystem;

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

class OutputsCliTest : public testing::FakeGpuCliFixture {
 protected:
  OutputsCliTest() : FakeGpuCliFixture("chase_outputs_cli", 2) {
    testing::write_small_carbon_case(dir_);
  }
  std::vector<std::string> sweep_args() const {
    return testing::simulate_carbon_args(
        dir_, {"--forecast", "persistence", "--epochs", "100", "--sweep", "--starts", "3", "--from",
               "2021-01-03T00:00:00Z", "--to", "2021-01-05T00:00:00Z", "--etas", "0.5", "--slacks",
               "0.1"});
  }
};

// --- chase measure ---------------------------------------------------------------------------

TEST_F(OutputsCliTest, MeasureOutputInAMissingDirectoryFailsBeforeTheCommandRuns) {
  const auto marker = dir_ / "command-ran";
  const auto r = chase({"measure", "-o", (dir_ / "no/such/dir/report.txt").string(), "--",
                        "/bin/sh", "-c", "touch " + quoted(marker)});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("-o"));
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
  EXPECT_FALSE(fs::exists(marker)) << "the command ran although its report could not be written";
}

TEST_F(OutputsCliTest, MeasureLogInAMissingDirectoryFailsBeforeTheCommandRuns) {
  const auto marker = dir_ / "command-ran";
  const auto r = chase({"measure", "--log", (dir_ / "no/such/dir/log.csv").string(), "--",
                        "/bin/sh", "-c", "touch " + quoted(marker)});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("log.csv"));
  EXPECT_FALSE(fs::exists(marker));
}

TEST_F(OutputsCliTest, MeasureReportOnAFullDiskKeepsTheCommandsExitCodeAndTheReport) {
  const auto r = chase({"measure", "--json", "-o", "/dev/full", "--", "/bin/sh", "-c", "exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("-o '/dev/full'"));
  EXPECT_THAT(r.err, HasSubstr("No space left on device"));
  EXPECT_THAT(r.err, HasSubstr("exited with code 3"));
  // The measurement is not lost: the report comes on standard error instead.
  const auto json_start = r.err.find('{');
  ASSERT_NE(json_start, std::string::npos) << r.err;
  const auto json_end = r.err.rfind('}');
  const auto report = nlohmann::json::parse(r.err.substr(json_start, json_end - json_start + 1));
  EXPECT_EQ(report["exit_code"], 3);
  EXPECT_TRUE(report.contains("total_energy_j"));
}

TEST_F(OutputsCliTest, MeasureReportOnAFullDiskAfterASuccessfulCommandIsNotASuccess) {
  const auto r = chase({"measure", "-o", "/dev/full", "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 74) << r.err;  // EX_IOERR: the command's 0 would hide the lost report
  EXPECT_THAT(r.err, HasSubstr("exited with code 0"));
  EXPECT_THAT(r.err, HasSubstr("exit code 0"));  // the console report, on standard error
}

TEST_F(OutputsCliTest, MeasureLogOnAFullDiskIsReportedWithTheMeasurement) {
  const auto report = dir_ / "report.json";
  const auto r =
      chase({"measure", "--json", "--log", "/dev/full", "-o", report.string(), "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 74) << r.err;
  EXPECT_THAT(r.err, HasSubstr("measurement log '/dev/full'"));
  const auto doc = nlohmann::json::parse(read_file(report));
  EXPECT_EQ(doc["exit_code"], 0);
  EXPECT_THAT(doc["warnings"].dump(), HasSubstr("/dev/full"));
}

TEST_F(OutputsCliTest, MeasureReportOnStandardErrorThatIsFullIsNotASuccess) {
  const auto r =
      run_process({"/bin/sh", "-c",
                   std::string("exec '") + CHASE_CLI_PATH + "' measure -- /bin/true 2>/dev/full"});
  EXPECT_EQ(r.exit_code, 74);
}

TEST_F(OutputsCliTest, MeasureOutputThatNamesTheCarbonCsvIsRefusedAndTheCsvKept) {
  const auto csv = dir_ / "carbon.csv";
  const auto before = read_file(csv);
  const auto marker = dir_ / "command-ran";
  auto r = chase({"measure", "--carbon-csv", csv.string(), "-o", csv.string(), "--", "/bin/sh",
                  "-c", "touch " + quoted(marker)});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("would overwrite --carbon-csv"));
  EXPECT_EQ(read_file(csv), before);
  EXPECT_FALSE(fs::exists(marker));
  // The same file by another name is the same file.
  r = chase({"measure", "--carbon-csv", csv.string(), "--log",
             (dir_ / "trace/../carbon.csv").string(), "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(read_file(csv), before);
}

TEST_F(OutputsCliTest, MeasureReportAndLogMayNotShareAFile) {
  const auto file = dir_ / "both.txt";
  const auto r = chase({"measure", "-o", file.string(), "--log", file.string(), "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("also the file of -o"));
}

// --- standard output of every command --------------------------------------------------------

TEST_F(OutputsCliTest, EveryCommandFailsWhenItsStandardOutputIsFull) {
  const std::string trace = (dir_ / "trace").string();
  const std::string carbon = (dir_ / "carbon.csv").string();
  const std::vector<std::string> commands{
      "devices",
      "devices --json",
      "demo --plot ''",
      "demo --json --plot ''",
      "forecast predict --data '" + carbon + "' --model persistence --horizon 2",
      "forecast backtest --data '" + carbon +
          "' --protocol rolling --models persistence --history-days 2",
      "simulate carbon --trace-dir '" + trace + "' --gpu a40 --workload imagenet --carbon '" +
          carbon + "' --forecast persistence --policy default --start 2021-01-03T00:00:00Z",
      "--help",
      "--version",
  };
  for (const auto& command : commands) {
    const auto r = chase_shell(command + " > /dev/full");
    EXPECT_NE(r.exit_code, 0) << command << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("standard output")) << command;
    EXPECT_THAT(r.err, HasSubstr("No space left on device")) << command;
  }
}

// --- files of the demo and the sweep ---------------------------------------------------------

TEST_F(OutputsCliTest, DemoPlotInAMissingDirectoryFailsAtOnce) {
  const auto r = chase({"demo", "--plot", (dir_ / "missing/plot.svg").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--plot"));
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
  EXPECT_THAT(r.out, Not(HasSubstr("Lowest energy")));  // before any work
}

TEST_F(OutputsCliTest, DemoPlotOnAFullDiskStillPrintsTheTablesThenFails) {
  const auto r = chase({"demo", "--plot", "/dev/full"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--plot '/dev/full'"));
  EXPECT_THAT(r.out, HasSubstr("Lowest energy"));  // a partial result beats none
  EXPECT_THAT(r.out, Not(HasSubstr("Plot of intensity")));
}

TEST_F(OutputsCliTest, SweepCsvOnAFullDiskStillWritesThePlotAndTheTable) {
  auto args = sweep_args();
  const auto plot = dir_ / "sweep.svg";
  args.insert(args.end(), {"--csv", "/dev/full", "--plot", plot.string()});
  const auto r = chase(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--csv '/dev/full'"));
  EXPECT_THAT(read_file(plot), HasSubstr("<svg"));
  EXPECT_THAT(r.out, HasSubstr("oracle slack=0.1"));
}

TEST_F(OutputsCliTest, SweepOutputsMayNotOverwriteItsInputs) {
  const auto carbon = dir_ / "carbon.csv";
  const auto train = dir_ / "trace/summary_train.csv";
  const auto carbon_before = read_file(carbon);
  const auto train_before = read_file(train);
  auto args = sweep_args();
  args.insert(args.end(), {"--csv", carbon.string()});
  auto r = chase(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("would overwrite --carbon"));
  args = sweep_args();
  args.insert(args.end(), {"--plot", train.string()});
  r = chase(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--trace-dir"));
  args = sweep_args();
  args.insert(args.end(), {"--csv", (dir_ / "x").string(), "--plot", (dir_ / "x").string()});
  r = chase(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(read_file(carbon), carbon_before);
  EXPECT_EQ(read_file(train), train_before);
}

TEST_F(OutputsCliTest, SweepWithAHugeThreadCountRunsAndMatchesOneThread) {
  auto args = sweep_args();
  args.insert(args.end(), {"--json", "--threads", "1"});
  const auto one = chase(args);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  args.back() = "256";  // the most --threads takes; more simulations than the sweep has
  const auto many = chase(args);
  ASSERT_EQ(many.exit_code, 0) << many.err;
  EXPECT_EQ(nlohmann::json::parse(many.out), nlohmann::json::parse(one.out));
  args.back() = "1000000";  // a typo, refused before anything runs
  const auto absurd = chase(args);
  EXPECT_EQ(absurd.exit_code, 2) << absurd.err;
  EXPECT_THAT(absurd.err, HasSubstr("--threads: '1000000' is not a whole number from 1 to 256"));
}

// --- long computations: bounded, with progress --------------------------------------------------

TEST_F(OutputsCliTest, LongComputationsAreBoundedWithAMessageNamingTheOption) {
  auto r = chase({"simulate", "recurring", "--trace-dir", (dir_ / "trace").string(), "--gpu", "a40",
                  "--workload", "imagenet", "--recurrences", "100000000000"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--recurrences: '100000000000' is not a whole number from 1 to "
                               "1000000"));
  // 10000 epochs of up to 200 s in 1-second periods: 2 million policy decisions.
  r = chase({"simulate", "carbon", "--trace-dir", (dir_ / "trace").string(), "--gpu", "a40",
             "--workload", "imagenet", "--carbon", (dir_ / "carbon.csv").string(), "--policy",
             "default", "--period", "1s", "--epochs", "10000"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--period 1s splits this job into up to 2000000"));
  // Three hours ahead of 1-second data is 10800 models (the history is long enough for them).
  std::string seconds = "UTC time,carbon_intensity\n";
  const UtcTime start = *parse_utc_time("2021-01-01T00:00:00Z");
  for (int i = 0; i < 12000; ++i) {
    seconds += format_utc_time(start + std::chrono::seconds(i)) + ",300\n";
  }
  std::ofstream(dir_ / "seconds.csv") << seconds;
  r = chase({"forecast", "predict", "--data", (dir_ / "seconds.csv").string(), "--model",
             "persistence", "--horizon", "3h"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--horizon 3h is 10800 steps"));
  EXPECT_THAT(r.err, HasSubstr("--resample"));
}

TEST_F(OutputsCliTest, LongComputationsShowProgressWhenAsked) {
  ScopedEnv progress("CHASE_PROGRESS", "always");  // stderr is a file here, not a terminal
  auto r = chase({"forecast", "predict", "--data", (dir_ / "carbon.csv").string(), "--model",
                  "persistence", "--horizon", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("forecast predict: 0 of 3 steps"));
  r = chase({"simulate", "carbon", "--trace-dir", (dir_ / "trace").string(), "--gpu", "a40",
             "--workload", "imagenet", "--carbon", (dir_ / "carbon.csv").string(), "--policy",
             "default", "--start", "2021-01-03T00:00:00Z"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("simulate carbon: "));
  EXPECT_THAT(r.err, HasSubstr("of 40 epochs"));
  r = chase({"simulate", "recurring", "--trace-dir", (dir_ / "trace").string(), "--gpu", "a40",
             "--workload", "imagenet", "--recurrences", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("simulate recurring: 1 of 3 recurrences"));
}

TEST_F(OutputsCliTest, NoProgressLinesWhenStandardErrorIsNotATerminal) {
  const auto r = chase({"forecast", "predict", "--data", (dir_ / "carbon.csv").string(), "--model",
                        "persistence", "--horizon", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("forecast predict:")));
}

// --- inputs that never end --------------------------------------------------------------------

TEST_F(OutputsCliTest, DevZeroAsDataIsRefusedAfterALongLineNotReadUntilMemoryRunsOut) {
  const auto r = chase({"forecast", "predict", "--data", "/dev/zero", "--model", "persistence"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_THAT(r.err, HasSubstr("'/dev/zero' has a line longer than 1 MiB"));
}

TEST_F(OutputsCliTest, AFifoThatNeverEndsStopsAtTheInputLimit) {
  const auto fifo = dir_ / "endless.csv";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  ScopedEnv limit("CHASE_MAX_INPUT_BYTES", "1M");
  std::atomic<bool> stop{false};
  // Writes a valid CSV that never ends until the reader goes away (EPIPE) or the test ends.
  std::thread writer([&] {
    ::signal(SIGPIPE, SIG_IGN);
    int fd = -1;
    while (!stop && fd < 0) {
      fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // ENXIO until the reader opens it
      if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (fd < 0) return;
    ::fcntl(fd, F_SETFL, 0);
    std::string text = "UTC time,carbon_intensity\n";
    UtcTime t = *parse_utc_time("2021-01-01T00:00:00Z");
    while (!stop) {
      for (int i = 0; i < 1000; ++i, t += std::chrono::hours(1)) {
        text += format_utc_time(t) + ",300\n";
      }
      if (::write(fd, text.data(), text.size()) < 0) break;
      text.clear();
    }
    ::close(fd);
  });
  const auto r = chase({"forecast", "predict", "--data", fifo.string(), "--model", "persistence"});
  stop = true;
  writer.join();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("larger than the input limit of 1 MiB"));
  EXPECT_THAT(r.err, HasSubstr("CHASE_MAX_INPUT_BYTES"));
}

TEST_F(OutputsCliTest, TheInputLimitCanBeRaisedAndIsChecked) {
  const auto carbon = (dir_ / "carbon.csv").string();  // about 7 KiB
  {
    ScopedEnv limit("CHASE_MAX_INPUT_BYTES", "4K");
    const auto r = chase({"forecast", "predict", "--data", carbon, "--model", "persistence"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.err, HasSubstr("larger than the input limit of 4 KiB"));
  }
  {
    ScopedEnv limit("CHASE_MAX_INPUT_BYTES", "1M");
    const auto r = chase({"forecast", "predict", "--data", carbon, "--model", "persistence"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  {
    ScopedEnv limit("CHASE_MAX_INPUT_BYTES", "lots");
    const auto r = chase({"forecast", "predict", "--data", carbon, "--model", "persistence"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_THAT(r.err, HasSubstr("CHASE_MAX_INPUT_BYTES='lots' is not a size"));
  }
}

TEST_F(OutputsCliTest, ADevZeroProfileIsAClearErrorInEitherFormat) {
  for (const char* name : {"zero.json", "zero.csv"}) {
    const auto link = dir_ / name;
    fs::create_symlink("/dev/zero", link);
    const auto r = chase({"select", "--profile", link.string()});
    EXPECT_NE(r.exit_code, 0) << name;
    EXPECT_FALSE(r.timed_out) << name;
    EXPECT_THAT(r.err, HasSubstr(link.string())) << name;
  }
}

// --- a provider whose answer never ends --------------------------------------------------------

TEST_F(OutputsCliTest, AProviderBodyThatNeverEndsIsCappedNotRetried) {
  testing::ReplayServer server;
  testing::ReplayResponse endless;
  endless.endless = true;
  server.route("/emissions/bylocation", endless);
  ScopedEnv url("CARBON_AWARE_SDK_URL", server.base_url());
  ScopedEnv location("CARBON_AWARE_SDK_LOCATION", "westeurope");
  ScopedEnv cache("CHASE_CARBON_CACHE_DIR", (dir_ / "cache").string());
  const auto r = run_process({CHASE_CLI_PATH, "forecast", "predict", "--provider",
                              "carbon-aware-sdk", "--history-days", "2", "--model", "persistence"},
                             std::chrono::seconds(60));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 69) << r.err;  // kUnavailable
  EXPECT_THAT(r.err, HasSubstr("exceeded 64 MiB"));
  EXPECT_EQ(server.count("/emissions/bylocation"), 1u);
}

TEST(HttpClientLimitTest, ABodyPastTheCapStopsTheTransferWithAClearError) {
  testing::ReplayServer server;
  testing::ReplayResponse endless;
  endless.endless = true;
  endless.body = std::string(1000, 'x');
  server.route("/data", endless);
  detail::HttpOptions options;
  options.max_body_bytes = std::size_t{1} << 20;
  options.retry.max_attempts = 3;
  const detail::HttpClient client("replay", options);
  try {
    client.get({server.base_url() + "/data", {}, {}});
    FAIL() << "an endless body was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_THAT(e.what(), HasSubstr("body exceeded 1 MiB"));
  }
  EXPECT_EQ(server.count("/data"), 1u);  // the same request would stream forever again
}

TEST(HttpClientLimitTest, ABodyUnderTheCapIsReturnedWhole) {
  testing::ReplayServer server;
  testing::ReplayResponse ok;
  ok.body = std::string(100'000, 'y');
  server.route("/data", ok);
  detail::HttpOptions options;
  options.max_body_bytes = 100'000;
  const detail::HttpClient client("replay", options);
  EXPECT_EQ(client.get({server.base_url() + "/data", {}, {}}).body.size(), 100'000u);
}

}  // namespace
}  // namespace chase
