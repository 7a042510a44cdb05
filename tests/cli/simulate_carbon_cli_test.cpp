// End-to-end tests of `chase simulate carbon`: the real binary on a small hand-made Zeus trace and
// a synthetic carbon CSV. The summary is pinned by a golden file (CHASE_UPDATE_GOLDEN=1 rewrites
// it); the temporary directory is masked.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "chase/time.h"
#include "support/golden.h"
#include "support/process.h"
#include "support/simulate_carbon_case.h"

namespace chase {
namespace {

using testing::expect_matches_golden;
using ::testing::HasSubstr;
using testing::ProcessResult;
using testing::read_file;
using testing::run_process;
namespace fs = std::filesystem;

class SimulateCarbonCliTest : public ::testing::Test {
 protected:
  SimulateCarbonCliTest()
      : dir_(fs::temp_directory_path() / ("chase_sim_carbon_cli_" + std::to_string(::getpid()))) {
    testing::write_small_carbon_case(dir_);
  }
  ~SimulateCarbonCliTest() override { fs::remove_all(dir_); }

  ProcessResult chase(std::vector<std::string> args) const {
    std::vector<std::string> argv = testing::simulate_carbon_args(
        dir_, {"--start", "2021-01-03T02:00:00Z", "--forecast", "persistence"});
    argv.insert(argv.begin(), CHASE_CLI_PATH);
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }

  std::string masked(std::string text) const {
    const std::string dir = dir_.string();
    for (auto at = text.find(dir); at != std::string::npos; at = text.find(dir)) {
      text.replace(at, dir.size(), "<dir>");
    }
    return text;
  }

  fs::path dir_;
};

TEST_F(SimulateCarbonCliTest, ChaseSummaryMatchesGolden) {
  const auto r = chase({"--batch-size", "256", "--epochs", "200", "--policy", "chase", "--eta",
                        "0.9", "--ci-max", "800"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_matches_golden(masked(r.out), "simulate_carbon_chase.txt");
}

TEST_F(SimulateCarbonCliTest, JsonHasTheDocumentedKeysAndATimeline) {
  const auto r = chase({"--epochs", "30", "--policy", "planner", "--slack", "0.2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  for (const char* key : {"carbon_g", "energy_j", "time_s", "timeline", "policy", "default",
                          "carbon_change_percent", "slowdown_percent"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_EQ(json["policy"], "planner");
  ASSERT_FALSE(json["timeline"].empty());
  const auto& first = json["timeline"][0];
  for (const char* key : {"time", "ci", "power_limit_w"}) EXPECT_TRUE(first.contains(key)) << key;
  EXPECT_LE(json["slowdown_percent"].get<double>(), 20 + 1e-6);
}

TEST_F(SimulateCarbonCliTest, DefaultPolicyMatchesTheTraceExactly) {
  const auto r = chase({"--epochs", "10", "--policy", "default", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  EXPECT_DOUBLE_EQ(json["time_s"].get<double>(), 1000);
  EXPECT_DOUBLE_EQ(json["energy_j"].get<double>(), 200000);
  EXPECT_DOUBLE_EQ(json["slowdown_percent"].get<double>(), 0);
}

TEST_F(SimulateCarbonCliTest, SweepWritesTheTableCsvAndPlot) {
  const auto csv = dir_ / "sweep.csv";
  const auto plot = dir_ / "sweep.svg";
  const auto r = chase({"--epochs", "100", "--sweep", "--starts", "3", "--from",
                        "2021-01-03T00:00:00Z", "--to", "2021-01-05T00:00:00Z", "--etas", "0.5",
                        "--slacks", "0.1", "--csv", csv.string(), "--plot", plot.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("chase eta=0.5"));
  EXPECT_THAT(r.out, HasSubstr("oracle slack=0.1"));
  EXPECT_THAT(r.out, HasSubstr("planner at chase eta=0.5's mean slowdown"));
  EXPECT_THAT(r.out, HasSubstr("planner at chase eta=0.5's per-start slowdown"));
  const auto rows = read_file(csv);
  EXPECT_THAT(rows, HasSubstr("start,label,policy"));
  // default, zeus, chase, planner, oracle, planner + oracle at zeus's and chase's mean slowdowns,
  // and at chase's per-start slowdowns.
  EXPECT_EQ(std::count(rows.begin(), rows.end(), '\n'), 1 + 11 * 3);
  EXPECT_THAT(read_file(plot), HasSubstr("<svg"));
}

TEST_F(SimulateCarbonCliTest, BadInputExitsNonZeroSayingWhat) {
  auto r = chase({"--batch-size", "1024", "--policy", "default"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("batch size 1024"));
  r = chase({"--policy", "default", "--period", "soon"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--period 'soon'"));
  r = chase({"--policy", "default", "--epochs", "100000"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("before the job"));
  r = chase({"--policy", "greedy"});
  EXPECT_NE(r.exit_code, 0);
}

// --ci-max ≤ 0 or NaN used to be replaced by the trace's maximum while the header printed that
// default as if asked; "the default" is now spelled by leaving the option out.
TEST_F(SimulateCarbonCliTest, CiMaxIsAPositiveIntensityOrLeftOut) {
  for (const std::string bad : {"0", "-5", "nan", "inf", "1e9"}) {
    const auto r = chase({"--policy", "chase", "--ci-max", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_THAT(r.err, HasSubstr("--ci-max: '" + bad + "' is not a finite number in (0, 3000]"));
  }
  auto r = chase({"--policy", "chase", "--ci-max", "640"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("CI_max 640.0 gCO2eq/kWh"));
  r = chase({"--policy", "chase"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("CI_max 500.0 gCO2eq/kWh"));  // the day before's maximum
}

TEST_F(SimulateCarbonCliTest, NumericOptionsNameTheirRange) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--eta", "1.5"}, "--eta: '1.5' is not a finite number in [0, 1]"},
      {{"--eta", "nan"}, "--eta: 'nan' is not a finite number in [0, 1]"},
      {{"--slack", "-0.1"}, "--slack: '-0.1' is not a finite number in [0, 100]"},
      {{"--epochs", "0"}, "--epochs: '0' is not a finite number in (0, 1e+06]"},
      {{"--epochs", "nan"}, "--epochs: 'nan' is not a finite number in (0, 1e+06]"},
      {{"--batch-size", "0"}, "--batch-size: '0' is not a whole number from 1 to 4294967295"},
      {{"--batch-size", "-256"}, "--batch-size: '-256' is not a whole number"},
      {{"--batch-size", "2.5"}, "--batch-size: '2.5' is not a whole number"},
      {{"--sweep", "--starts", "0"}, "--starts: '0' is not a whole number from 1 to 100000"},
      {{"--sweep", "--etas", "0.5,2"}, "--etas: '2' is not a finite number in [0, 1]"},
      {{"--sweep", "--slacks", "0.1,nan"}, "--slacks: 'nan' is not a finite number in [0, 100]"},
      {{"--sweep", "--threads", "0"}, "--threads: '0' is not a whole number from 1 to 256"},
  };
  for (const auto& [options, message] : cases) {
    const auto r = chase(options);
    EXPECT_EQ(r.exit_code, 2) << options.back();
    EXPECT_THAT(r.err, HasSubstr(message));
  }
}

}  // namespace
}  // namespace chase
