// The examples build and run: examples/minimal over the real NVML backend (the fake NVML beneath),
// static and carbon-aware, restoring the GPUs' limits when it ends.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/carbon_csv.h"
#include "support/fake_nvml_env.h"
#include "support/process.h"

namespace chase {
namespace {

using testing::FakeNvmlEnvironment;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

#ifdef CHASE_EXAMPLE_MINIMAL_PATH

// Enough steps to profile all 9 limits (1 + 2 steps each, plus the set) and run on.
const std::vector<std::string> kShortRun = {CHASE_EXAMPLE_MINIMAL_PATH,
                                            "--steps",
                                            "60",
                                            "--epochs",
                                            "1",
                                            "--warmup",
                                            "1",
                                            "--profile",
                                            "2"};

TEST(MinimalExample, ProfilesChoosesAndRestoresTheLimits) {
  FakeNvmlEnvironment nvml(FakeNvmlEnvironment::standard_config(2));
  const auto r = testing::run_process(kShortRun);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("policy static: 60 steps"));
  EXPECT_THAT(r.out, HasSubstr("chosen power limit: "));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("none")));
  for (const auto& [uuid, limit] : nvml.limits_in_state_file()) {
    EXPECT_EQ(limit, 300) << uuid << " was not restored";
  }
  EXPECT_FALSE(nvml.limits_in_state_file().empty()) << "the example changed no limit";
}

TEST(MinimalExample, FollowsACarbonCsvWithTheChasePolicy) {
  FakeNvmlEnvironment nvml(FakeNvmlEnvironment::standard_config(2));
  const auto csv =
      fs::temp_directory_path() / ("chase_example_carbon_" + std::to_string(::getpid()) + ".csv");
  std::ofstream(csv) << testing::hourly_carbon_csv_around_now(-3, 3,
                                                              [](int h) { return 200.0 + 50 * h; });
  auto args = kShortRun;
  args.insert(args.end(), {"--carbon-csv", csv.string()});
  const auto r = testing::run_process(args);
  fs::remove(csv);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("policy chase"));
  EXPECT_THAT(r.out, HasSubstr("chase(eta=0.5"));
}

TEST(MinimalExample, SigtermWhileProfilingRestoresTheLimits) {
  FakeNvmlEnvironment nvml(FakeNvmlEnvironment::standard_config(2));
  // Long enough to be killed mid-way: 10 limits' worth of warm-up and profiling at 1 ms a step.
  testing::Process process({CHASE_EXAMPLE_MINIMAL_PATH, "--steps", "100000", "--epochs", "1",
                            "--warmup", "50", "--profile", "200"});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto lowered = [&] {
    for (const auto& [uuid, limit] : nvml.limits_in_state_file()) {
      if (limit < 300) return true;
    }
    return false;
  };
  while (!lowered() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(lowered()) << "profiling never lowered a limit";
  ::kill(process.pid(), SIGTERM);
  const auto r = process.wait(std::chrono::seconds(10));
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.signal, SIGTERM) << "the process still dies of the signal";
  for (const auto& [uuid, limit] : nvml.limits_in_state_file()) {
    EXPECT_EQ(limit, 300) << uuid << " was not restored after SIGTERM";
  }
}

#else
TEST(MinimalExample, NotBuilt) { GTEST_SKIP() << "built with CHASE_BUILD_EXAMPLES=OFF"; }
#endif

#ifdef CHASE_EXAMPLE_LIBTORCH_PATH

// The epoch losses and the held-out accuracy the example prints.
std::vector<double> numbers_after(const std::string& text, const std::string& label) {
  std::vector<double> numbers;
  for (auto at = text.find(label); at != std::string::npos; at = text.find(label, at + 1)) {
    numbers.push_back(std::stod(text.substr(at + label.size())));
  }
  return numbers;
}

TEST(LibtorchExample, TrainsACnnWhileChaseFollowsTheCarbonSignal) {
  const auto r = testing::run_process(
      {CHASE_EXAMPLE_LIBTORCH_PATH, "--epochs", "3", "--steps", "40", "--step-seconds", "120"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto losses = numbers_after(r.out, "mean loss ");
  ASSERT_EQ(losses.size(), 3u) << r.out;
  EXPECT_LT(losses.back(), losses.front()) << "the CNN learns";
  const auto accuracy = numbers_after(r.out, "held-out accuracy ");
  ASSERT_EQ(accuracy.size(), 1u);
  EXPECT_GT(accuracy.front(), 0.8) << r.out;
  EXPECT_THAT(r.out, HasSubstr("SIMULATED GPU"));
  EXPECT_THAT(r.out, HasSubstr("policy chase"));
  EXPECT_THAT(r.out, HasSubstr("chase(eta=0.5")) << "the policy chose at period boundaries";
}

#else
TEST(LibtorchExample, NotBuilt) {
  GTEST_SKIP() << "libtorch not found or a sanitizer build (scripts/install-deps installs it)";
}
#endif

}  // namespace
}  // namespace chase
