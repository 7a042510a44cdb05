// The test helpers that decide whether a check runs at all: the real-data switch
// (CHASE_REQUIRE_DATA) and the golden-file update switch (CHASE_UPDATE_GOLDEN). A helper that
// skipped or rewrote when it should check would hide every defect its tests guard.
#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "support/golden.h"
#include "support/real_data.h"
#include "support/scoped_env.h"

namespace chase::testing {
namespace {

// Sets an environment variable for the scope, then puts back what was there.

const char* const kMissing = "/nonexistent/chase-real-data/zeus-trace";

void check_missing_real_data() { CHASE_SKIP_UNLESS_REAL_DATA(kMissing); }

// The one result the helper reports, intercepted so that this test itself neither skips nor fails.
::testing::TestPartResult only_result_of_missing_data_check() {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    check_missing_real_data();
  }
  EXPECT_EQ(results.size(), 1);
  if (results.size() < 1) {
    return ::testing::TestPartResult(::testing::TestPartResult::kSuccess, "", 0, "no result");
  }
  return results.GetTestPartResult(0);
}

TEST(RealDataSwitch, MissingDataSkipsByDefault) {
  ScopedEnv env("CHASE_REQUIRE_DATA", std::nullopt);
  const auto result = only_result_of_missing_data_check();
  EXPECT_TRUE(result.skipped()) << result.message();
  EXPECT_THAT(result.message(), ::testing::HasSubstr(kMissing));
}

TEST(RealDataSwitch, MissingDataFailsNamingThePathWhenRequired) {
  ScopedEnv env("CHASE_REQUIRE_DATA", "1");
  const auto result = only_result_of_missing_data_check();
  EXPECT_TRUE(result.fatally_failed()) << result.message();
  EXPECT_THAT(result.message(), ::testing::HasSubstr(kMissing));
  EXPECT_THAT(result.message(), ::testing::HasSubstr("CHASE_REQUIRE_DATA=1"));
}

TEST(RealDataSwitch, OnlyOneRequiresTheData) {
  ScopedEnv env("CHASE_REQUIRE_DATA", "0");
  EXPECT_TRUE(only_result_of_missing_data_check().skipped());
}

TEST(RealDataSwitch, PresentDataRunsTheTest) {
  ScopedEnv env("CHASE_REQUIRE_DATA", "1");
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    CHASE_SKIP_UNLESS_REAL_DATA(CHASE_SOURCE_DIR);
  }
  EXPECT_EQ(results.size(), 0);
}

TEST(RealDataSwitch, DataDirFollowsTheEnvironment) {
  {
    ScopedEnv env("CHASE_DATA_DIR", "/some/where");
    EXPECT_EQ(real_data_dir(), std::filesystem::path("/some/where"));
  }
  ScopedEnv env("CHASE_DATA_DIR", "");
  EXPECT_EQ(real_data_dir(), std::filesystem::path(CHASE_DEFAULT_DATA_DIR));
}

std::vector<::testing::TestPartResult> results_of_golden_check(
    const std::string& actual, const std::filesystem::path& golden) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    expect_matches_golden_file(actual, golden);
  }
  std::vector<::testing::TestPartResult> out;
  for (int i = 0; i < results.size(); ++i) out.push_back(results.GetTestPartResult(i));
  return out;
}

class GoldenSwitch : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    golden_ = std::filesystem::temp_directory_path() /
              ("chase-golden-" + std::to_string(::getpid()) + ".txt");
    std::ofstream(golden_) << "old output\n";
  }
  void TearDown() override { std::filesystem::remove(golden_); }
  std::filesystem::path golden_;
};

// CHASE_UPDATE_GOLDEN=0 (or empty, or "true") checks: the mismatch fails and the golden is kept.
TEST_P(GoldenSwitch, AnyValueButOneChecksAndKeepsTheGolden) {
  ScopedEnv env("CHASE_UPDATE_GOLDEN", GetParam());
  const auto results = results_of_golden_check("new output\n", golden_);
  ASSERT_EQ(results.size(), 1U);
  EXPECT_TRUE(results[0].failed());
  EXPECT_EQ(read_file(golden_), "old output\n");
}

INSTANTIATE_TEST_SUITE_P(Values, GoldenSwitch, ::testing::Values("0", "", "true", "yes", "10"));

TEST(GoldenUpdate, OneRewritesTheGolden) {
  const auto golden = std::filesystem::temp_directory_path() /
                      ("chase-golden-update-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(golden) << "old output\n";
  {
    ScopedEnv env("CHASE_UPDATE_GOLDEN", "1");
    EXPECT_TRUE(results_of_golden_check("new output\n", golden).empty());
  }
  EXPECT_EQ(read_file(golden), "new output\n");
  EXPECT_TRUE(results_of_golden_check("new output\n", golden).empty()) << "unset: it checks";
  std::filesystem::remove(golden);
}

}  // namespace
}  // namespace chase::testing
