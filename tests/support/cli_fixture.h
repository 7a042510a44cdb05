// Test helper: fixtures for end-to-end tests of the `chase` binary (CHASE_CLI_PATH).
//
// CliFixture gives each test a fresh temporary directory (dir_, removed afterwards) and runs the
// CLI; FakeGpuCliFixture adds `gpus` fake NVML GPUs and no CPU zones, so output depends on the
// fake GPUs only. Thread safety: as any GoogleTest fixture, one test thread.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "support/fake_nvml_env.h"
#include "support/process.h"
#include "support/scoped_env.h"

namespace chase::testing {

class CliFixture : public ::testing::Test {
 protected:
  // `tag` names the directory, so a leftover one says which suite left it.
  explicit CliFixture(const std::string& tag)
      : dir_(std::filesystem::temp_directory_path() / (tag + "_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
  }
  ~CliFixture() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  static ProcessResult chase(std::vector<std::string> args) {
    args.insert(args.begin(), CHASE_CLI_PATH);
    return run_process(args);
  }
  // `chase ARGS` through /bin/sh, so its standard output can be redirected (e.g. to /dev/full).
  static ProcessResult chase_shell(const std::string& args) {
    return run_process({"/bin/sh", "-c", std::string("exec '") + CHASE_CLI_PATH + "' " + args});
  }

  std::filesystem::path dir_;
};

class FakeGpuCliFixture : public CliFixture {
 protected:
  FakeGpuCliFixture(const std::string& tag, std::size_t gpus)
      : CliFixture(tag),
        no_rapl_("CHASE_SYSFS_ROOT", (dir_ / "no-sysfs").string()),
        nvml_(FakeNvmlEnvironment::standard_config(gpus)) {}

  ScopedEnv no_rapl_;  // no CPU zones
  FakeNvmlEnvironment nvml_;
};

}  // namespace chase::testing
