#include "chase/simulated_gpu.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "chase/error.h"

namespace chase {
namespace {

using ::testing::HasSubstr;

PowerProfile three_point_profile() {
  return PowerProfile({{300, 100, 250}, {100, 40, 90}, {200, 80, 170}}, "test GPU", "test job");
}

class TempFile {
 public:
  TempFile(const std::string& name, const std::string& content)
      : path_(std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "_" + name)) {
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(SimulatedGpuProfile, SortsAndInterpolatesLinearlyAndClamps) {
  const auto profile = three_point_profile();
  EXPECT_DOUBLE_EQ(profile.min_limit_w(), 100);
  EXPECT_DOUBLE_EQ(profile.max_limit_w(), 300);
  EXPECT_DOUBLE_EQ(profile.throughput_at(150), 60);
  EXPECT_DOUBLE_EQ(profile.power_at(250), 210);
  EXPECT_DOUBLE_EQ(profile.throughput_at(50), 40);   // below the range: clamp
  EXPECT_DOUBLE_EQ(profile.power_at(400), 250);      // above the range: clamp
  EXPECT_DOUBLE_EQ(profile.throughput_at(200), 80);  // exactly on a point
}

TEST(SimulatedGpuProfile, RejectsBadPoints) {
  EXPECT_THROW(PowerProfile(std::vector<PowerProfilePoint>{}), Error);
  EXPECT_THROW(PowerProfile({{100, 1, 1}, {100, 2, 2}}), Error);
  EXPECT_THROW(PowerProfile({{100, -1, 1}}), Error);
  EXPECT_THROW(PowerProfile({{100, 1, std::nan("")}}), Error);
}

TEST(SimulatedGpuProfile, LoadsJsonAndCsv) {
  TempFile json("profile.json",
                R"({"gpu": "A40", "workload": "resnet50", "throughput_unit": "images/s",
                    "points": [{"power_limit_w": 100, "throughput": 50, "avg_power_w": 95},
                               {"power_limit_w": 300, "throughput": 150, "avg_power_w": 240}]})");
  const auto from_json = PowerProfile::load(json.path());
  EXPECT_EQ(from_json.gpu(), "A40");
  EXPECT_EQ(from_json.throughput_unit(), "images/s");
  EXPECT_DOUBLE_EQ(from_json.throughput_at(200), 100);

  TempFile csv("profile.csv", "power_limit_w,throughput,avg_power_w\n300,150,240\n100,50,95\n");
  const auto from_csv = PowerProfile::load(csv.path());
  ASSERT_EQ(from_csv.points().size(), 2u);
  EXPECT_DOUBLE_EQ(from_csv.points()[0].power_limit_w, 100);
}

TEST(SimulatedGpuProfile, CsvErrorsNameFileLineAndColumn) {
  TempFile csv("bad_profile.csv",
               "power_limit_w,throughput,avg_power_w\n300,150,240\n100,abc,95\n");
  try {
    PowerProfile::load(csv.path());
    FAIL() << "a non-numeric throughput must be rejected";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kParse);
    EXPECT_THAT(e.what(), HasSubstr(csv.path().string() + ":3"));
    EXPECT_THAT(e.what(), HasSubstr("column 'throughput'"));
  }
  TempFile missing("missing_col.csv", "limit,throughput,avg_power_w\n300,150,240\n");
  EXPECT_THROW(PowerProfile::load(missing.path()), Error);
  TempFile broken("broken.json", R"({"points": [{"power_limit_w": 100}]})");
  try {
    PowerProfile::load(broken.path());
    FAIL() << "a point without throughput must be rejected";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kParse);
    EXPECT_THAT(e.what(), HasSubstr("broken.json"));
  }
  EXPECT_THROW(PowerProfile::load("/nonexistent/profile.json"), Error);
}

// JSON fields of the wrong type name the file, the point and the field (common/json_fields.h), not
// nlohmann's "[json.exception.type_error.302]".
TEST(SimulatedGpuProfile, JsonFieldsOfTheWrongTypeNameThePointAndField) {
  const auto error_of = [](const TempFile& file) -> std::string {
    try {
      PowerProfile::load(file.path());
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kParse);
      return e.what();
    }
    ADD_FAILURE() << "no error for " << file.path();
    return "";
  };
  TempFile text("typed.json", R"({"points": [{"power_limit_w": 300, "throughput": 150,
      "avg_power_w": 240}, {"power_limit_w": 100, "throughput": "fast", "avg_power_w": 95}]})");
  auto message = error_of(text);
  EXPECT_THAT(message, HasSubstr("typed.json: points[1]: 'throughput' is \"fast\""));
  EXPECT_THAT(message, ::testing::Not(HasSubstr("json.exception")));
  TempFile missing("missing.json", R"({"points": [{"power_limit_w": 100}]})");
  EXPECT_THAT(error_of(missing), HasSubstr("points[0]: 'throughput' is missing"));
  TempFile gpu("gpu.json", R"({"gpu": 40, "points": [{"power_limit_w": 300, "throughput": 150,
      "avg_power_w": 240}]})");
  EXPECT_THAT(error_of(gpu), HasSubstr("gpu.json: 'gpu' is 40; it must be a string"));
  TempFile list("list.json", R"({"points": {"power_limit_w": 300}})");
  EXPECT_THAT(error_of(list), HasSubstr("\"points\" is missing or not a list"));
}

TEST(SimulatedGpuProfile, SyntheticDemoProfileSaysItIsSynthetic) {
  const auto profile = synthetic_demo_profile();
  EXPECT_THAT(profile.workload(), HasSubstr("synthetic"));
  EXPECT_THAT(profile.gpu(), HasSubstr("synthetic"));
  EXPECT_DOUBLE_EQ(profile.min_limit_w(), 100);
  EXPECT_DOUBLE_EQ(profile.max_limit_w(), 300);
  // Lower limits must trade throughput for power, or the demo shows nothing.
  EXPECT_LT(profile.throughput_at(150), profile.throughput_at(300));
  EXPECT_LT(profile.power_at(150), profile.power_at(300));
}

TEST(SimulatedGpuBackendTest, EnergyIntegratesPiecewiseConstantPowerExactly) {
  auto clock = std::make_shared<ManualClock>();
  SimulatedGpuSpec spec;
  spec.idle_power_w = 20;
  spec.profile = three_point_profile();
  SimulatedGpuBackend gpus({spec, spec}, clock);

  EXPECT_EQ(gpus.gpu_count(), 2u);
  EXPECT_DOUBLE_EQ(gpus.gpus()[1].max_power_limit_w, 300);
  EXPECT_TRUE(gpus.gpus()[0].has_energy_counter);
  clock->advance(Seconds(10));  // idle: 20 W
  gpus.set_busy(0, true);
  clock->advance(Seconds(5));  // busy at 300 W limit: 250 W
  gpus.set_power_limit_w(0, 100);
  clock->advance(Seconds(2));  // busy at 100 W limit: 90 W
  EXPECT_DOUBLE_EQ(gpus.energy_j(0), 10 * 20 + 5 * 250 + 2 * 90);
  EXPECT_DOUBLE_EQ(gpus.energy_j(1), 17 * 20);
  EXPECT_DOUBLE_EQ(gpus.power_w(0), 90);
  EXPECT_DOUBLE_EQ(gpus.throughput(0), 40);
  EXPECT_DOUBLE_EQ(gpus.throughput(1), 0);  // idle does no work
}

TEST(SimulatedGpuBackendTest, RejectsOutOfRangeLimitAndUnknownGpu) {
  auto gpus = make_simulated_gpus(1, three_point_profile(), std::make_shared<ManualClock>());
  try {
    gpus->set_power_limit_w(0, 50);
    FAIL() << "50 W is below the profile's range";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr("100 W to 300 W"));
  }
  EXPECT_DOUBLE_EQ(gpus->power_limit_w(0), 300);
  try {
    gpus->energy_j(3);
    FAIL() << "GPU 3 does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

}  // namespace
}  // namespace chase
