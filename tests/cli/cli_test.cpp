// End-to-end tests of the `chase` command line: the real binary, the real NVML backend, the fake
// NVML library underneath. Console output is pinned by golden files (set CHASE_UPDATE_GOLDEN=1 to
// rewrite them after an intended change, and review the diff).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/carbon_csv.h"
#include "support/cli_fixture.h"
#include "support/fake_nvml_env.h"
#include "support/golden.h"
#include "support/process.h"
#include "support/scoped_env.h"

namespace chase {
namespace {

using chase::testing::ScopedEnv;
using testing::FakeNvmlEnvironment;
using ::testing::HasSubstr;
using testing::ProcessResult;
using testing::run_process;

namespace fs = std::filesystem;

using testing::expect_matches_golden;
using testing::read_file;

class CliTest : public testing::FakeGpuCliFixture {
 protected:
  CliTest() : FakeGpuCliFixture("chase_cli_test", 4) {}
};

TEST_F(CliTest, DevicesJsonListsAllFourGpusWithTheirLimits) {
  const auto r = chase({"devices", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["gpu_backend"], "nvml");
  ASSERT_EQ(doc["gpus"].size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    const auto& gpu = doc["gpus"][i];
    EXPECT_EQ(gpu["index"], i);
    EXPECT_EQ(gpu["min_power_limit_w"], 100.0);
    EXPECT_EQ(gpu["max_power_limit_w"], 300.0);
    EXPECT_EQ(gpu["power_limit_w"], 300.0);
    EXPECT_EQ(gpu["energy_counter"], true);
    EXPECT_THAT(gpu["uuid"].get<std::string>(), HasSubstr("GPU-"));
  }
}

TEST_F(CliTest, DevicesTableMatchesGolden) {
  const auto r = chase({"devices"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_matches_golden(r.out, "devices.txt");
}

TEST_F(CliTest, DevicesWithoutNvmlSaysWhyAndStillListsCpus) {
  ScopedEnv missing("CHASE_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1");
  const auto r = chase({"devices", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_TRUE(doc["gpus"].empty());
  EXPECT_THAT(doc["gpu_note"].get<std::string>(), HasSubstr("/nonexistent/libnvidia-ml.so.1"));
}

TEST_F(CliTest, MeasureSleepReportsTimeEnergyAndCarbon) {
  const auto report = dir_ / "report.json";
  const auto before = std::chrono::steady_clock::now();
  const auto r =
      chase({"measure", "--json", "--intensity", "400", "-o", report.string(), "--", "sleep", "2"});
  const std::chrono::duration<double> outside = std::chrono::steady_clock::now() - before;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(read_file(report));
  const double time_s = doc["time_s"];
  // Bounded by what cannot move with the machine's load: the command's own 2 s, and the time this
  // test waited for chase (which measures from inside it).
  EXPECT_GE(time_s, 2.0);
  EXPECT_LE(time_s, outside.count());
  ASSERT_EQ(doc["gpus"].size(), 4u);
  // The fake's power model: min(limit, idle + load × (max − idle)) = 30 + 0.5 × 250 = 155 W.
  const double expected_per_gpu = 155.0 * time_s;
  double total = 0;
  for (const auto& gpu : doc["gpus"]) {
    EXPECT_NEAR(gpu["energy_j"].get<double>(), expected_per_gpu, 0.02 * expected_per_gpu);
    EXPECT_EQ(gpu["method"], "counter");
    total += gpu["energy_j"].get<double>();
  }
  EXPECT_TRUE(doc["cpus"].empty());
  EXPECT_NEAR(doc["total_energy_j"].get<double>(), total, 1e-6);
  EXPECT_NEAR(doc["carbon_g"].get<double>(), doc["total_energy_j"].get<double>() / 3.6e6 * 400,
              1e-12);
  EXPECT_EQ(doc["exit_code"], 0);
}

TEST_F(CliTest, MeasureTableGoesToStderr) {
  const auto r = chase({"measure", "--intensity", "100", "--", "true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("chase measure: true"));
  EXPECT_THAT(r.err, HasSubstr("GPU 3 NVIDIA A40"));
  EXPECT_THAT(r.err, HasSubstr("total"));
  EXPECT_THAT(r.err, HasSubstr("gCO2eq (100 gCO2eq/kWh)"));
}

TEST_F(CliTest, MeasureExitsWithTheCommandsExitCode) {
  EXPECT_EQ(chase({"measure", "--", "sh", "-c", "exit 3"}).exit_code, 3);
  const auto missing = chase({"measure", "--", "no-such-command-chase-test"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_THAT(missing.err, HasSubstr("command not found"));
}

TEST_F(CliTest, MeasureForwardsSigtermToTheCommand) {
  // The command announces itself before sleeping: only then are chase's signals known to be
  // blocked and forwarded (a fixed delay raced chase's start-up on a loaded sanitizer build).
  const auto started = dir_ / "started";
  testing::Process process({CHASE_CLI_PATH, "measure", "--json", "--", "sh", "-c",
                            "touch '" + started.string() + "' && exec sleep 30"});
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!fs::exists(started) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(fs::exists(started)) << "the measured command never started";
  ::kill(process.pid(), SIGTERM);
  const auto r = process.wait(std::chrono::seconds(10));
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
  const auto doc = nlohmann::json::parse(r.err.substr(r.err.find('{')));
  EXPECT_EQ(doc["signal"], SIGTERM);
  EXPECT_LT(doc["time_s"].get<double>(), 5.0);
}

TEST_F(CliTest, MeasureWithCarbonCsvSplitsOverTheSeries) {
  // An hourly series around now with a constant 250 g/kWh.
  const auto csv = dir_ / "carbon.csv";
  std::ofstream(csv) << testing::hourly_carbon_csv_around_now(-3, 3, [](int) { return 250.0; });
  const auto report = dir_ / "report.json";
  const auto r = chase({"measure", "--json", "--carbon-csv", csv.string(), "-o", report.string(),
                        "--", "sleep", "0.2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(read_file(report));
  EXPECT_NEAR(doc["carbon_g"].get<double>(), doc["total_energy_j"].get<double>() / 3.6e6 * 250,
              1e-9);
  EXPECT_EQ(doc["carbon_source"], csv.string());
}

TEST_F(CliTest, MeasureRejectsBadCarbonCsvBeforeRunningTheCommand) {
  const auto csv = dir_ / "bad.csv";
  std::ofstream(csv) << "timestamp,carbon_intensity\n2021-01-01T00:00:00Z,100\n"
                        "2021-01-01T01:00:00Z,lots\n";
  const auto marker = dir_ / "ran";
  const auto r = chase({"measure", "--carbon-csv", csv.string(), "--", "touch", marker.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(csv.string() + ":3"));
  EXPECT_FALSE(fs::exists(marker)) << "the command must not run when its carbon file is bad";
}

// Every numeric option is checked where it enters, with the option, the value and the range in the
// message; a bad value never runs the command (--intensity nan used to drop the emissions, a tiny
// --interval flooded the terminal, --gpus -1 wrapped to the largest index).
TEST_F(CliTest, MeasureRefusesNumbersOutsideTheirRangeBeforeRunningTheCommand) {
  const auto marker = dir_ / "ran";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--intensity", "nan"}, "--intensity: 'nan' is not a finite number in [0, 3000]"},
      {{"--intensity", "inf"}, "--intensity: 'inf' is not a finite number in [0, 3000]"},
      {{"--intensity", "-1"}, "--intensity: '-1' is not a finite number in [0, 3000]"},
      {{"--intensity", "4e5"}, "--intensity: '4e5' is not a finite number in [0, 3000]"},
      {{"--interval", "0.001"}, "--interval: '0.001' is not a finite number in [0.1, 86400]"},
      {{"--interval", "0"}, "--interval: '0' is not a finite number in [0.1, 86400]"},
      {{"--interval", "nan"}, "--interval: 'nan' is not a finite number in [0.1, 86400]"},
      {{"--gpus", "-1"}, "--gpus: '-1' is not a GPU index"},
      {{"--gpus", "0,1x"}, "--gpus: '1x' is not a GPU index"},
  };
  for (const auto& [options, message] : cases) {
    std::vector<std::string> args{"measure"};
    args.insert(args.end(), options.begin(), options.end());
    args.insert(args.end(), {"--", "touch", marker.string()});
    const auto r = chase(args);
    EXPECT_EQ(r.exit_code, 2) << options[1];
    EXPECT_THAT(r.err, HasSubstr(message));
    EXPECT_FALSE(fs::exists(marker)) << options[1] << ": the command must not run";
  }
  // Zero and the range's ends are values, not "the default".
  const auto report = dir_ / "zero.json";
  const auto r =
      chase({"measure", "--json", "--intensity", "0", "-o", report.string(), "--", "true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(read_file(report))["carbon_g"], 0.0);
}

// Text from a file never reaches the terminal raw: a CSV value holding ESC sequences and a NUL is
// quoted escaped in the error.
TEST_F(CliTest, ControlBytesFromAFileAreEscapedInMessages) {
  const auto csv = dir_ / "evil.csv";
  std::ofstream(csv, std::ios::binary)
      << "timestamp,carbon_intensity\n2021-01-01T00:00:00Z,100\n2021-01-01T01:00:00Z,"
      << std::string("\x1b]0;owned\x07\x1b[2J\0x", 16) << "\n";
  const auto r = chase({"measure", "--carbon-csv", csv.string(), "--", "true"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("'\\x1b]0;owned\\x07\\x1b[2J\\x00x'"));
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\0'), std::string::npos);
}

TEST_F(CliTest, MeasureIntervalPrintsLiveLines) {
  const auto r = chase({"measure", "--interval", "0.2", "--", "sleep", "0.9"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::size_t lines = 0;
  std::istringstream err(r.err);
  for (std::string line; std::getline(err, line);) {
    if (line.rfind("[", 0) == 0 && line.find(" W ") != std::string::npos) ++lines;
  }
  EXPECT_GE(lines, 3u) << r.err;
}

TEST_F(CliTest, MeasureWithoutGpusStillMeasuresAndWarns) {
  ScopedEnv missing("CHASE_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1");
  const auto report = dir_ / "report.json";
  const auto r = chase({"measure", "--json", "-o", report.string(), "--", "true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(read_file(report));
  EXPECT_TRUE(doc["gpus"].empty());
  EXPECT_THAT(doc["warnings"].dump(), HasSubstr("NVML is not available"));
  EXPECT_THAT(r.err, HasSubstr("warning"));
}

TEST_F(CliTest, MeasureRejectsUnknownGpu) {
  const auto r = chase({"measure", "--gpus", "0,7", "--", "true"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("no GPU 7"));
}

TEST_F(CliTest, DemoTableMatchesGolden) {
  const auto r = chase({"demo", "--plot", ""});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_matches_golden(r.out, "demo.txt");
}

TEST_F(CliTest, DemoWritesALabelledPlotOfIntensityAndLimits) {
  const auto plot = dir_ / "demo.svg";
  const auto r = chase({"demo", "--plot", plot.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Plot of intensity and chosen limits: " + plot.string()));
  const auto svg = read_file(plot);
  EXPECT_THAT(svg, HasSubstr("<svg"));
  EXPECT_THAT(svg, HasSubstr("SYNTHETIC"));
  for (const auto* policy : {"default", "zeus", "chase", "planner"})
    EXPECT_THAT(svg, HasSubstr(policy));
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

TEST_F(CliTest, DemoPoliciesTradeTimeForCarbonWithinTheirBudgets) {
  const auto r = chase({"demo", "--json", "--plot", ""});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto policies = nlohmann::json::parse(r.out)["policies"];
  const double base_time = policies["default"]["time_s"];
  const double base_carbon = policies["default"]["carbon_g"];
  for (const auto* name : {"zeus", "chase", "planner"}) {
    SCOPED_TRACE(name);
    EXPECT_LT(policies[name]["carbon_g"].get<double>(), base_carbon);
    EXPECT_GT(policies[name]["time_s"].get<double>(), base_time);
  }
  EXPECT_LE(policies["planner"]["time_s"].get<double>(), 1.105 * base_time);
  EXPECT_LT(policies["planner"]["carbon_g"].get<double>(),
            policies["chase"]["carbon_g"].get<double>());
}

TEST_F(CliTest, DemoJsonIsLabelledSyntheticAndSavesEnergyAtLowerLimits) {
  const auto r = chase({"demo", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["synthetic"], true);
  const auto& windows = doc["windows"];
  ASSERT_EQ(windows.size(), 9u);
  EXPECT_EQ(windows.front()["power_limit_w"], 300.0);
  EXPECT_EQ(windows.back()["power_limit_w"], 100.0);
  EXPECT_LT(windows[4]["energy_j"].get<double>(), windows[0]["energy_j"].get<double>());
  EXPECT_GT(windows[4]["time_s"].get<double>(), windows[0]["time_s"].get<double>());
}

}  // namespace
}  // namespace chase
