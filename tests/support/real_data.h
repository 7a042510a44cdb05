// Test helper: the real-data tests (../shared/data or $CHASE_DATA_DIR) skip when their data is
// absent, so a developer without the data still gets a green suite. With CHASE_REQUIRE_DATA=1 (CI
// sets it, .ci/run) a missing file fails the test instead, naming the path: a real-data check can
// then never pass unnoticed by skipping.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string_view>

namespace chase::testing {

// CHASE_REQUIRE_DATA=1 turns "data missing" skips into failures; any other value (or none) skips.
inline bool real_data_required() {
  const char* value = std::getenv("CHASE_REQUIRE_DATA");
  return value != nullptr && std::string_view(value) == "1";
}

// The real data folder: $CHASE_DATA_DIR when set and not empty, else ../shared/data next to the
// source tree.
inline std::filesystem::path real_data_dir() {
  const char* env = std::getenv("CHASE_DATA_DIR");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env)
                                        : std::filesystem::path(CHASE_DEFAULT_DATA_DIR);
}

}  // namespace chase::testing

// Skips (or, with CHASE_REQUIRE_DATA=1, fails) the current test when `required_path` does not
// exist. A macro because GTEST_SKIP and FAIL return from the test body.
#define CHASE_SKIP_UNLESS_REAL_DATA(required_path)                                        \
  do {                                                                                    \
    const std::filesystem::path chase_real_data_path_ = (required_path);                  \
    if (!std::filesystem::exists(chase_real_data_path_)) {                                \
      if (::chase::testing::real_data_required()) {                                       \
        FAIL() << "real data required (CHASE_REQUIRE_DATA=1) but missing: "               \
               << chase_real_data_path_ << " (set CHASE_DATA_DIR to the data folder)";    \
      }                                                                                   \
      GTEST_SKIP() << "real data absent: " << chase_real_data_path_                       \
                   << " (set CHASE_DATA_DIR; CHASE_REQUIRE_DATA=1 makes this a failure)"; \
    }                                                                                     \
  } while (0)
