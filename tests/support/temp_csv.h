// Test helper: a CSV file in the temp directory, unique per process and test, removed afterwards.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

namespace chase::testing {

class TempCsv {
 public:
  explicit TempCsv(const std::string& content, const std::string& suffix = "") {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::to_string(::getpid()) + "_" + test->test_suite_name() + "_" +
                       test->name() + suffix + ".csv";
    std::replace(name.begin(), name.end(), '/', '_');  // parameterised tests: "Suite/Test/0"
    path_ = std::filesystem::temp_directory_path() / name;
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempCsv() { std::filesystem::remove(path_); }
  TempCsv(const TempCsv&) = delete;
  TempCsv& operator=(const TempCsv&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string name() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace chase::testing
