// LimitProfile: validation, the Zeus monitor-log CSV, chase's JSON (round trip), and the
// `chase select` console/JSON output (golden file tests/cli/golden/select.txt).
#include "chase/limit_profile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chase/error.h"
#include "support/golden.h"
#include "support/process.h"

namespace chase {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class LimitProfileFiles : public ::testing::Test {
 protected:
  LimitProfileFiles()
      : dir_(fs::temp_directory_path() / ("chase_limit_profile_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
  }
  ~LimitProfileFiles() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path;
  }

  // The error kParse message of loading `text` as `name`.
  std::string load_error(const std::string& name, const std::string& text) {
    try {
      load_limit_profile(write(name, text));
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kParse) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "no error for " << name;
    return "";
  }

  fs::path dir_;
};

constexpr const char* kTwoGpuLog =
    "start_time,window_name,elapsed_time,gpu0_energy,gpu1_energy\n"
    "1.0,__GlobalPowerLimitOptimizer_250,10.0,1000.0,1100.0\n"
    "2.0,__GlobalPowerLimitOptimizer_100,12.5,700.0,800.0\n"
    "3.0,__GlobalPowerLimitOptimizer_175,11.0,900.0,950.0\n";

TEST(LimitProfile, SortsByDescendingLimitAndDerivesPower) {
  LimitProfileInfo info;
  info.gpu_count = 2;
  const LimitProfile profile({{100, 20, 2000}, {300, 10, 3000}}, info);
  ASSERT_EQ(profile.points().size(), 2u);
  EXPECT_EQ(profile.points()[0].power_limit_w, 300);
  EXPECT_DOUBLE_EQ(profile.points()[0].avg_power_w(), 300);
  EXPECT_DOUBLE_EQ(profile.max_power_w(), 600);
  EXPECT_EQ(profile.highest_limit_point().power_limit_w, 300);
}

TEST(LimitProfile, RejectsBadPoints) {
  EXPECT_THROW(LimitProfile({}, {}), Error);
  EXPECT_THROW(LimitProfile({{200, 0, 100}}, {}), Error);
  EXPECT_THROW(LimitProfile({{200, 1, -5}}, {}), Error);
  EXPECT_THROW(LimitProfile({{200, std::nan(""), 100}}, {}), Error);
  EXPECT_THROW(LimitProfile({{200, 1, 100}, {200, 2, 100}}, {}), Error);
  EXPECT_THROW(LimitProfile({{200, 1, 100}}, {}, 150), Error);  // max below the highest point
  LimitProfileInfo no_gpus;
  no_gpus.gpu_count = 0;
  EXPECT_THROW(LimitProfile({{200, 1, 100}}, no_gpus), Error);
}

TEST_F(LimitProfileFiles, ReadsAZeusMonitorLogSummingEveryGpu) {
  const auto profile = load_limit_profile(write("job.csv", kTwoGpuLog));
  EXPECT_EQ(profile.info().gpu_count, 2u);
  EXPECT_EQ(profile.info().job_id, "job");
  ASSERT_EQ(profile.points().size(), 3u);
  EXPECT_EQ(profile.points()[1].power_limit_w, 175);
  EXPECT_DOUBLE_EQ(profile.points()[1].energy_j, 1850);
  EXPECT_DOUBLE_EQ(profile.points()[1].time_s, 11);
  EXPECT_DOUBLE_EQ(profile.max_power_w(), 500);  // 250 W × 2 GPUs
}

TEST_F(LimitProfileFiles, ZeusLogErrorsNameFileLineAndColumn) {
  const std::string header = "start_time,window_name,elapsed_time,gpu0_energy\n";
  EXPECT_THAT(load_error("a.csv", header + "1,__GlobalPowerLimitOptimizer_x,1,1\n"),
              HasSubstr("a.csv:2, column 'window_name'"));
  EXPECT_THAT(load_error("b.csv", header + "1,__GlobalPowerLimitOptimizer_250,abc,1\n"),
              HasSubstr("b.csv:2, column 'elapsed_time'"));
  EXPECT_THAT(load_error("c.csv", header + "1,__P_250,1,1\n1,__P_250,2,2\n"),
              HasSubstr("already measured on line 2"));
  EXPECT_THAT(load_error("d.csv", "start_time,window_name,elapsed_time\n1,__P_250,1\n"),
              HasSubstr("no column 'gpu0_energy'"));
  EXPECT_THAT(load_error("e.csv", header), HasSubstr("no profiling windows"));
  EXPECT_THAT(load_error("f.csv", header + "1,__P_250,1\n"),
              HasSubstr("f.csv:2: 3 fields where the header has 4"));
  EXPECT_THAT(load_error("g.csv", header + "1,__P_250,0,5\n"), HasSubstr("zero time or energy"));
}

TEST_F(LimitProfileFiles, JsonRoundTripsEverything) {
  LimitProfileInfo info{"NVIDIA A40", 4, "resnet50-nightly", 256, 40};
  const LimitProfile original({{300, 8.2, 4300.5}, {200, 9.1, 3600.25}}, info, 300);
  const auto path = dir_ / "profile.json";
  save_limit_profile(original, path);
  const auto loaded = load_limit_profile(path);
  EXPECT_EQ(loaded.info().gpu_model, "NVIDIA A40");
  EXPECT_EQ(loaded.info().gpu_count, 4u);
  EXPECT_EQ(loaded.info().job_id, "resnet50-nightly");
  EXPECT_EQ(loaded.info().batch_size, 256u);
  EXPECT_EQ(loaded.info().steps_per_window, 40u);
  EXPECT_EQ(loaded.max_power_limit_w(), 300);
  ASSERT_EQ(loaded.points().size(), 2u);
  EXPECT_EQ(loaded.points()[1].energy_j, 3600.25);
  EXPECT_EQ(loaded.points()[0].time_s, 8.2);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator{}), 1)
      << "no temporary file is left behind";
}

TEST_F(LimitProfileFiles, JsonErrorsSayWhatIsWrong) {
  EXPECT_THAT(load_error("a.json", "{not json"), HasSubstr("not a JSON object"));
  EXPECT_THAT(load_error("b.json", R"({"format": "other", "version": 1, "points": []})"),
              HasSubstr("'format'"));
  EXPECT_THAT(load_error("c.json", R"({"format": "chase-limit-profile", "version": 1,
                                        "points": [{"power_limit_w": 300, "time_s": "x"}]})"),
              HasSubstr("points[0]: 'time_s'"));
  EXPECT_THAT(load_error("d.json", R"({"format": "chase-limit-profile", "version": 1,
                                        "points": []})"),
              HasSubstr("at least one point"));
  EXPECT_THAT(load_error("e.json", R"({"format": "chase-limit-profile", "version": 9})"),
              HasSubstr("unsupported version"));
}

// Found by fuzz/limit_profile_json_fuzz.cpp: fields of the wrong type escaped as nlohmann
// type_errors instead of kParse, and a negative gpu_count wrapped around to 2^64 - 1.
TEST_F(LimitProfileFiles, JsonFieldsOfTheWrongTypeAreParseErrorsNamingTheField) {
  const std::string points = R"("points": [{"power_limit_w": 300, "time_s": 1, "energy_j": 1}])";
  const std::string head = R"({"format": "chase-limit-profile", "version": 1, )";
  EXPECT_THAT(load_error("f.json", R"({"format": 1, "version": 1})"), HasSubstr("'format'"));
  EXPECT_THAT(load_error("g.json", R"({"format": "chase-limit-profile", "version": "1"})"),
              HasSubstr("unsupported version"));
  EXPECT_THAT(load_error("h.json", head + R"("gpu_count": -1, )" + points + "}"),
              HasSubstr("'gpu_count' is -1, not a whole number"));
  EXPECT_THAT(load_error("i.json", head + R"("gpu_count": "x", )" + points + "}"),
              HasSubstr("'gpu_count'"));
  EXPECT_THAT(load_error("j.json", head + R"("batch_size": 1.5, )" + points + "}"),
              HasSubstr("'batch_size'"));
  EXPECT_THAT(load_error("k.json", head + R"("gpu_model": 40, )" + points + "}"),
              HasSubstr("'gpu_model' is 40, not a string"));
  EXPECT_THAT(load_error("l.json", head + R"("max_power_limit_w": "300", )" + points + "}"),
              HasSubstr("'max_power_limit_w'"));
  const auto loaded = load_limit_profile(
      write("m.json", head + R"("gpu_model": null, "gpu_count": 2, )" + points + "}"));
  EXPECT_EQ(loaded.info().gpu_count, 2u);
  EXPECT_EQ(loaded.info().gpu_model, "");
}

TEST_F(LimitProfileFiles, UnknownExtensionOrMissingFile) {
  EXPECT_THROW(load_limit_profile(write("p.txt", "x")), Error);
  try {
    load_limit_profile(dir_ / "missing.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
  }
}

// ---- `chase select`
// ------------------------------------------------------------------------------

TEST_F(LimitProfileFiles, SelectPrintsEveryCandidateAndMarksTheChoice) {
  const auto log = write("job.csv", kTwoGpuLog);
  const auto r = testing::run_process(
      {CHASE_CLI_PATH, "select", "--profile", log.string(), "--selector", "zeus", "--eta", "0.5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The table without its first line (which names the temporary file) is pinned.
  testing::expect_matches_golden(r.out.substr(r.out.find('\n') + 1), "select.txt");
  EXPECT_THAT(r.out, HasSubstr("zeus(eta=0.5) on " + log.string() + " (2 GPUs, MaxPower 500 W)"));
}

TEST_F(LimitProfileFiles, SelectJsonHasTheDocumentedKeys) {
  const auto log = write("job.csv", kTwoGpuLog);
  const auto r = testing::run_process(
      {CHASE_CLI_PATH, "select", "--json", "--profile", log.string(), "--selector", "energy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["power_limit_w"], 100.0);  // 1500 J at 100 W is the least energy
  ASSERT_EQ(doc["candidates"].size(), 3u);
  for (const auto* key : {"power_limit_w", "time_s", "energy_j", "avg_power_w", "cost"}) {
    EXPECT_TRUE(doc["candidates"][0].contains(key)) << key;
  }
  EXPECT_EQ(doc["candidates"][0]["power_limit_w"], 250.0);
  EXPECT_DOUBLE_EQ(doc["candidates"][0]["avg_power_w"].get<double>(), 210);
}

TEST_F(LimitProfileFiles, SelectRejectsParametersOfAnotherSelectorAndBadFiles) {
  const auto log = write("job.csv", kTwoGpuLog);
  auto r = testing::run_process({CHASE_CLI_PATH, "select", "--profile", log.string(), "--selector",
                                 "energy", "--eta", "0.3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--eta applies to --selector zeus only"));
  r = testing::run_process({CHASE_CLI_PATH, "select", "--profile", log.string(), "--eta", "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("eta must be between 0"));
  const auto bad = write("bad.csv", "start_time,window_name,elapsed_time,gpu0_energy\n1,w_9,x,1\n");
  r = testing::run_process({CHASE_CLI_PATH, "select", "--profile", bad.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(bad.string() + ":2, column 'elapsed_time'"));
}

}  // namespace
}  // namespace chase
