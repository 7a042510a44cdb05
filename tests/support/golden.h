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
#include <string_view>

namespace chase::testing {

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Only CHASE_UPDATE_GOLDEN=1 rewrites: set to 0 or empty (as a CI matrix may leave it) it checks.
inline bool update_golden_requested() {
  const char* value = std::getenv("CHASE_UPDATE_GOLDEN");
  return value != nullptr && std::string_view(value) == "1";
}

// Checks `actual` against the file `golden` (or, with CHASE_UPDATE_GOLDEN=1, rewrites it).
inline void expect_matches_golden_file(const std::string& actual,
                                       const std::filesystem::path& golden) {
  if (update_golden_requested()) {
    std::ofstream(golden) << actual;
    return;
  }
  ASSERT_TRUE(std::filesystem::exists(golden))
      << golden << " is missing; run with CHASE_UPDATE_GOLDEN=1";
  EXPECT_EQ(actual, read_file(golden)) << "output differs from " << golden;
}

inline void expect_matches_golden(const std::string& actual, const std::string& golden_name) {
  expect_matches_golden_file(
      actual, std::filesystem::path(CHASE_SOURCE_DIR) / "tests/cli/golden" / golden_name);
}

}  // namespace chase::testing
