// End-to-end tests of `chase forecast`: the real binary on small synthetic CSV files. Console
// output is pinned by golden files (CHASE_UPDATE_GOLDEN=1 rewrites them); timings and the
// temporary directory are masked since they change from run to run.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "chase/time.h"
#include "support/carbon_csv.h"
#include "support/golden.h"
#include "support/process.h"

namespace chase {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::ProcessResult;
using testing::run_process;

namespace fs = std::filesystem;

using testing::expect_matches_golden;
using testing::read_file;

// 12 days of hourly intensity with a daily cycle and a slow drift; every number is computed from
// the index alone (no randomness), so the forecasts are the same on every machine run.
std::string synthetic_csv(std::size_t days = 12) {
  std::string csv = "UTC time,carbon_intensity,wind_forecast\n";
  const UtcTime start = *parse_utc_time("2021-03-01T00:00:00Z");
  for (std::size_t i = 0; i < days * 24; ++i) {
    const double hour = static_cast<double>(i % 24);
    const double value = 300 + 80 * std::sin(2 * 3.14159265358979 * hour / 24) +
                         20 * std::sin(static_cast<double>(i) / 37.0) + static_cast<double>(i % 7);
    csv += format_utc_time(start + std::chrono::hours(static_cast<long>(i))) + "," +
           std::to_string(std::round(value * 10) / 10) + "," + std::to_string(i % 5) + "\n";
  }
  return csv;
}

class ForecastCliTest : public ::testing::Test {
 protected:
  ForecastCliTest()
      : dir_(fs::temp_directory_path() /
             ("chase_forecast_cli_test_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
  }
  ~ForecastCliTest() override { fs::remove_all(dir_); }

  static ProcessResult chase(std::vector<std::string> args) {
    args.insert(args.begin(), CHASE_CLI_PATH);
    return run_process(args);
  }

  fs::path write(const std::string& name, const std::string& content) const {
    const fs::path path = dir_ / name;
    std::ofstream(path) << content;
    return path;
  }

  // The output with the temporary directory and the timing column masked.
  std::string masked(std::string text) const {
    const std::string dir = dir_.string();
    for (std::size_t at = text.find(dir); at != std::string::npos; at = text.find(dir)) {
      text.replace(at, dir.size(), "<dir>");
    }
    return std::regex_replace(text, std::regex(R"( +[0-9]+\.[0-9]{2}\n)"), "   <seconds>\n");
  }

  fs::path dir_;
};

TEST_F(ForecastCliTest, RollingBacktestTableMatchesGolden) {
  const auto csv = write("synthetic.csv", synthetic_csv());
  const auto r = chase({"forecast", "backtest", "--data", csv.string(), "--protocol", "rolling",
                        "--models", "persistence,seasonal,linear,auto", "--history-days", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_matches_golden(masked(r.out), "forecast_backtest.txt");
}

TEST_F(ForecastCliTest, BacktestJsonHasTheDocumentedKeysForBothProtocols) {
  const auto csv = write("synthetic.csv", synthetic_csv());
  for (const std::string protocol : {"rolling", "chase"}) {
    std::vector<std::string> args = {"forecast",   "backtest",         "--data",
                                     csv.string(), "--protocol",       protocol,
                                     "--models",   "persistence,auto", "--json"};
    if (protocol == "chase") {
      args.insert(args.end(), {"--windows", "3"});
    } else {
      args.insert(args.end(), {"--horizon", "24h", "--history-days", "3", "--exogenous"});
    }
    const auto r = chase(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto doc = nlohmann::json::parse(r.out);
    EXPECT_EQ(doc["protocol"], protocol);
    ASSERT_EQ(doc["models"].size(), 2u);
    for (const std::string model : {"persistence", "auto"}) {
      const auto& score = doc["models"][model];
      for (const char* key : {"mape_median", "mape_mean", "fit_predict_s", "points"}) {
        EXPECT_TRUE(score.contains(key)) << protocol << " " << model << " " << key;
      }
      EXPECT_GT(score["mape_mean"].get<double>(), 0);
    }
    if (protocol == "rolling") {
      EXPECT_EQ(doc["horizon_steps"], 24);
      EXPECT_EQ(doc["data"]["exogenous_columns"], nlohmann::json::array({"wind_forecast"}));
    } else {
      EXPECT_EQ(doc["models"]["auto"]["points"], 3 * 252);
    }
  }
}

TEST_F(ForecastCliTest, PredictTableMatchesGolden) {
  const auto csv = write("synthetic.csv", synthetic_csv());
  const auto r = chase({"forecast", "predict", "--data", csv.string(), "--horizon", "6h"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_matches_golden(masked(r.out), "forecast_predict.txt");
}

TEST_F(ForecastCliTest, PredictJsonForecastsTheStepsAfterTheLastPoint) {
  const auto csv = write("synthetic.csv", synthetic_csv());
  const auto r = chase({"forecast", "predict", "--data", csv.string(), "--horizon", "24h",
                        "--model", "auto", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["model"], "auto");
  EXPECT_EQ(doc["horizon_steps"], 24);
  ASSERT_EQ(doc["forecast"].size(), 24u);
  EXPECT_EQ(doc["forecast"][0]["time"], "2021-03-13T00:00:00Z");
  EXPECT_EQ(doc["forecast"][23]["time"], "2021-03-13T23:00:00Z");
  for (const auto& point : doc["forecast"]) {
    EXPECT_GT(point["value"].get<double>(), 150);
    EXPECT_LT(point["value"].get<double>(), 450);
  }
}

TEST_F(ForecastCliTest, BadValueNamesFileLineAndColumn) {
  const auto csv =
      write("bad.csv", "time,value\n2021-01-01T00:00:00Z,100\n2021-01-01T01:00:00Z,lots\n");
  const auto r = chase({"forecast", "backtest", "--data", csv.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err,
              AllOf(HasSubstr(csv.string() + ":3"), HasSubstr("'value'"), HasSubstr("'lots'")));
}

TEST_F(ForecastCliTest, NegativeIntensityAndMissingColumnAndEmptyFile) {
  const auto negative =
      write("neg.csv", "time,value\n2021-01-01T00:00:00Z,100\n2021-01-01T01:00:00Z,-5\n");
  auto r = chase({"forecast", "predict", "--data", negative.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(negative.string() + ":3"));
  const auto csv = write("synthetic.csv", synthetic_csv());
  r = chase({"forecast", "backtest", "--data", csv.string(), "--value-col", "ci_actual"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, AllOf(HasSubstr(csv.string()), HasSubstr("'ci_actual'")));
  const auto empty = write("empty.csv", "");
  r = chase({"forecast", "backtest", "--data", empty.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(empty.string()));
}

TEST_F(ForecastCliTest, GapsNeedAFillAndAreReported) {
  std::string text = synthetic_csv();
  // Drop the rows of 2021-03-05 10:00 and 11:00.
  for (const char* hour : {"2021-03-05T10:00:00Z", "2021-03-05T11:00:00Z"}) {
    const auto at = text.find(hour);
    text.erase(at, text.find('\n', at) - at + 1);
  }
  const auto csv = write("gaps.csv", text);
  auto r = chase({"forecast", "backtest", "--data", csv.string(), "--models", "persistence"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("1 gap(s)"), HasSubstr("--fill")));
  r = chase({"forecast", "backtest", "--data", csv.string(), "--models", "persistence",
             "--history-days", "3", "--fill", "linear"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out,
              AllOf(HasSubstr("1 gap(s), 2 missing point(s)"), HasSubstr("2 point(s) filled")));
}

// 30-min rows, then 15-min rows: not a gap (nothing is missing), so "0 gap(s), pass --fill" could
// not help; the message says what changed, where, and that --resample is the fix.
TEST_F(ForecastCliTest, AChangeOfSpacingMidSeriesAsksForResample) {
  std::string text = "UTC time,carbon_intensity\n";
  const UtcTime start = *parse_utc_time("2021-03-01T00:00:00Z");
  UtcTime t = start;
  for (int i = 0; i < 48 * 4; ++i, t += std::chrono::minutes(30)) {
    text += format_utc_time(t) + "," + std::to_string(300 + i % 48) + "\n";
  }
  for (int i = 0; i < 40; ++i, t += std::chrono::minutes(15)) {
    text += format_utc_time(t) + "," + std::to_string(300 + i % 7) + "\n";
  }
  const auto csv = write("spacing.csv", text);
  auto r = chase({"forecast", "predict", "--data", csv.string(), "--model", "persistence"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("changes its spacing"), HasSubstr("mostly 30m apart"),
                           HasSubstr("15m apart"), HasSubstr("pass --resample 30m")));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("0 gap(s)")));
  r = chase({"forecast", "predict", "--data", csv.string(), "--model", "persistence", "--resample",
             "30m", "--horizon", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

// --horizon 1000000 used to fail at the first step too far ("too few to forecast 288 step(s)"),
// naming a number the user never gave.
TEST_F(ForecastCliTest, AHorizonBeyondTheHistoryIsNamedAsGiven) {
  const auto csv = write("synthetic.csv", synthetic_csv());
  auto r = chase({"forecast", "predict", "--data", csv.string(), "--model", "persistence",
                  "--horizon", "1000000"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("--horizon 1000000 is 1000000 step(s) of 3600 s"),
                           HasSubstr("288 points"), HasSubstr("at most 287 step(s)")));
  r = chase({"forecast", "backtest", "--data", csv.string(), "--models", "persistence", "--horizon",
             "1000000h"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--horizon 1000000h is 1000000 step(s)"));
}

TEST_F(ForecastCliTest, BadOptionsSayWhatIsAccepted) {
  const auto csv = write("synthetic.csv", synthetic_csv());
  auto r = chase({"forecast", "backtest", "--data", csv.string(), "--models", "prophet"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("prophet"), HasSubstr("auto")));
  r = chase({"forecast", "backtest", "--data", csv.string(), "--protocol", "weekly"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("chase, rolling"));
  r = chase({"forecast", "backtest", "--data", csv.string(), "--fill", "cubic"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("none, previous, linear"));
  r = chase({"forecast", "predict", "--data", csv.string(), "--horizon", "90m"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("whole number"));
  r = chase({"forecast", "predict"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--data FILE or --provider NAME"));
}

TEST_F(ForecastCliTest, PredictFromAProviderFillsItsHolesAndForecastsAfterNow) {
  // The file provider replays a CSV as a live service: 30 days of hourly history up to now, with
  // a missing hour (as a provider's null value leaves one).
  const auto file = write("live.csv", testing::hourly_carbon_csv_around_now(
                                          -30 * 24, 0, [](int h) -> std::optional<double> {
                                            if (h == -5) return std::nullopt;
                                            return 300 + h % 24;
                                          }));
  ::setenv("CHASE_CARBON_FILE", file.c_str(), 1);
  const auto r = chase({"forecast", "predict", "--provider", "file", "--history-days", "7",
                        "--horizon", "3h", "--model", "persistence", "--json"});
  ::unsetenv("CHASE_CARBON_FILE");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["data"]["filled_points"], 1);
  ASSERT_EQ(doc["forecast"].size(), 3u);
  for (const auto& point : doc["forecast"])
    EXPECT_EQ(point["value"], 300.0) << "persistence of h = 0";
}

}  // namespace
}  // namespace chase
