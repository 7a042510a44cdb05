// scripts/hardware-check, the checklist for the first real GPU: its syntax, and its non-GPU parts
// (identity, measuring, limits after SIGTERM and SIGKILL, `chase limits restore`) run end to end
// over the fake NVML, where the nvidia-smi comparisons are skipped.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/fake_nvml_env.h"
#include "support/process.h"

namespace chase {
namespace {

namespace fs = std::filesystem;
using testing::FakeNvmlEnvironment;
using ::testing::HasSubstr;

const fs::path kScript = fs::path(CHASE_SOURCE_DIR) / "scripts" / "hardware-check";

std::string read_all(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(HardwareCheck, TheScriptParses) {
  const auto result = testing::run_process({"/bin/bash", "-n", kScript.string()});
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

TEST(HardwareCheck, RunsOverTheFakeNvmlAndRecordsEveryCheck) {
  if (::access("/usr/bin/python3", X_OK) != 0 &&
      std::system("command -v python3 >/dev/null") != 0) {
    GTEST_SKIP() << "the script needs python3";
  }
  const fs::path build = fs::path(CHASE_CLI_PATH).parent_path();
  ASSERT_EQ(fs::path(CHASE_GUARD_HELPER_PATH), build / "tests" / "power_limit_guard_helper")
      << "the script expects the helper there";
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(2));
  const fs::path record = env.directory() / "record.txt";
  const auto result =
      testing::run_process({"/bin/bash", kScript.string(), "--build", build.string(), "--out",
                            record.string(), "--gpu", "1", "--load-cmd", "sleep 0.2"},
                           std::chrono::seconds(90));
  const std::string text = read_all(record);
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_THAT(text, HasSubstr("CHECK identity: PASS"));
  EXPECT_THAT(text, HasSubstr("CHECK power: PASS"));
  EXPECT_THAT(text, HasSubstr("CHECK limit-sigterm: PASS (300 W)"));
  EXPECT_THAT(text, HasSubstr("CHECK limit-sigkill: PASS (chase limits restore: 100 W"));
  EXPECT_THAT(text, HasSubstr("CHECK cuda-order: SKIP"));
  EXPECT_THAT(text, HasSubstr("CHECK mig: SKIP"));
  EXPECT_EQ(env.limits_in_state_file().at(FakeNvmlEnvironment::standard_uuid(1)), 300);
}

TEST(HardwareCheck, AMissingBuildIsAClearError) {
  const auto result =
      testing::run_process({"/bin/bash", kScript.string(), "--build", "/nonexistent/build"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("/nonexistent/build/chase is missing"));
}

}  // namespace
}  // namespace chase
