// Test helper: golden-output checks for the command line, as google/benchmark does for its
// reporters. Golden files live in tests/cli/golden/; after an intended change of output, run the
// tests with CHASE_UPDATE_GOLDEN=1 to rewrite them, and review the diff.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace chase::testing {

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void expect_matches_golden(const std::string& actual, const std::string& golden_name) {
  const auto golden = std::filesystem::path(CHASE_SOURCE_DIR) / "tests/cli/golden" / golden_name;
  if (std::getenv("CHASE_UPDATE_GOLDEN")) {
    std::ofstream(golden) << actual;
    return;
  }
  ASSERT_TRUE(std::filesystem::exists(golden))
      << golden << " is missing; run with CHASE_UPDATE_GOLDEN=1";
  EXPECT_EQ(actual, read_file(golden)) << "output differs from " << golden;
}

}  // namespace chase::testing
