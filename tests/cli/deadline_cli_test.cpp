// `chase simulate carbon --pause ...` end to end: the real binary on the small hand-made Zeus
// trace and a synthetic day/night carbon CSV — the pause is reported (summary, timeline, JSON,
// sweep) and bad input exits 2 with a message saying what would work.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "chase/time.h"
#include "support/cli_fixture.h"
#include "support/process.h"
#include "support/simulate_carbon_case.h"

namespace chase {
namespace {

using ::testing::HasSubstr;
using testing::ProcessResult;
using testing::run_process;
namespace fs = std::filesystem;

class DeadlineCli : public testing::CliFixture {
 protected:
  DeadlineCli() : CliFixture("chase_deadline_cli") { testing::write_small_carbon_case(dir_); }

  // 100 epochs (2.8 h at 300 W) from 04:00, two hours before the dirty day begins.
  ProcessResult chase(std::vector<std::string> args) const {
    std::vector<std::string> argv = testing::simulate_carbon_args(
        dir_, {"--start", "2021-01-03T04:00:00Z", "--epochs", "100", "--forecast", "persistence"});
    argv.insert(argv.begin(), CHASE_CLI_PATH);
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }
};

TEST_F(DeadlineCli, TheOracleReleasesThroughTheDirtyDayAndSaysSo) {
  const auto r = chase({"--policy", "oracle", "--slack", "5", "--pause", "release", "--timeline"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("pause release"));
  EXPECT_THAT(r.out, HasSubstr(" pause "));  // a timeline row
  EXPECT_THAT(r.out, HasSubstr("resume(s)"));
  const auto json = nlohmann::json::parse(
      chase({"--policy", "oracle", "--slack", "5", "--pause", "release", "--json"}).out);
  EXPECT_EQ(json["pause"], "release");
  EXPECT_GE(json["paused_s"].get<double>(), 10 * 3600) << "the dirty day is skipped";
  EXPECT_GE(json["resumes"].get<int>(), 1);
  EXPECT_LT(json["carbon_change_percent"].get<double>(), -50);
  EXPECT_LE(json["time_s"].get<double>(), 6 * 10000 + 1e-6) << "by the deadline";
}

TEST_F(DeadlineCli, TheSweepPausesItsPlannersAndReportsTheHoursPaused) {
  const auto r = chase({"--sweep", "--starts", "2", "--from", "2021-01-03T04:00:00Z", "--to",
                        "2021-01-04T04:00:00Z", "--etas", "0.5", "--slacks", "5", "--pause", "idle",
                        "--idle-power-w", "20"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("planner and oracle pause: idle, idle 20 W"));
  EXPECT_THAT(r.out, HasSubstr("paused h"));
  EXPECT_THAT(r.out, HasSubstr("oracle slack=5"));
}

// --exogenous keeps the trace's day-ahead columns for the forecaster and says so; a trace without
// any is refused, since the flag would silently do nothing.
TEST_F(DeadlineCli, ExogenousInputsAreReportedAndRefusedWhereThereAreNone) {
  auto r = chase({"--policy", "planner", "--slack", "1", "--exogenous"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("has no column whose name contains \"forecast\""));
  // The same day/night trace with a day-ahead demand forecast column.
  {
    std::ifstream in(dir_ / "carbon.csv");
    std::ofstream out(dir_ / "carbon.csv.new");
    std::string line;
    std::getline(in, line);
    out << line << ",demand_forecast,coal\n";
    for (int i = 0; std::getline(in, line); ++i) out << line << "," << 1000 + i << ",7\n";
  }
  fs::rename(dir_ / "carbon.csv.new", dir_ / "carbon.csv");
  r = chase({"--policy", "planner", "--slack", "1", "--exogenous", "--exogenous-lead", "12h"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("forecast inputs: 1 day-ahead column(s) of the trace, read up to "
                               "12 h ahead"));
  const auto json = nlohmann::json::parse(
      chase({"--policy", "planner", "--slack", "1", "--exogenous", "--json"}).out);
  EXPECT_EQ(json["forecast_inputs"]["columns"], nlohmann::json::array({"demand_forecast"}));
  EXPECT_EQ(json["forecast_inputs"]["lead_s"], 24 * 3600);
  // A daily publication instead of a rolling lead, said as such; the two together, or a time
  // that is not one, are refused.
  r = chase(
      {"--policy", "planner", "--slack", "1", "--exogenous", "--exogenous-published-at", "12:00"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("published daily at 12:00 UTC for the next day"));
  r = chase({"--policy", "planner", "--slack", "1", "--exogenous", "--exogenous-published-at",
             "12:00", "--exogenous-lead", "12h"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("excludes"));
  r = chase(
      {"--policy", "planner", "--slack", "1", "--exogenous", "--exogenous-published-at", "noon"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("give HH:MM"));
  // Without the flag the columns stay out, and so does the line.
  r = chase({"--policy", "planner", "--slack", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("forecast inputs")));
}

TEST_F(DeadlineCli, BadInputExitsTwoSayingWhatWouldWork) {
  auto r = chase({"--policy", "chase", "--pause", "idle"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--pause idle needs --policy planner or oracle"));
  r = chase({"--policy", "oracle", "--slack", "1", "--pause", "idle", "--idle-power-w", "150"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("above the 100.0 W the job draws at its minimum limit"));
  r = chase({"--policy", "planner", "--slack", "0.001", "--pause", "release"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("give a slack of at least"));
  r = chase(
      {"--policy", "planner", "--slack", "0.1", "--pause", "release", "--resume-cost-s", "3000"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("more than the job's"));
  r = chase({"--policy", "planner", "--pause", "nap"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--pause"));
}

}  // namespace
}  // namespace chase
