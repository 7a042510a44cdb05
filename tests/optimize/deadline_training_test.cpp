// Deadline mode in a training loop, on simulated GPUs in virtual time: "idle" holds the loop
// through a dirty window with the GPUs at their minimum limit and still finishes before the
// deadline, the report showing the pause; "release" tells the loop to checkpoint and exit with the
// resume time (callback, return value and resume file), and a second run finishes the work.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "chase/carbon_provider.h"
#include "chase/error.h"
#include "chase/simulated_gpu.h"
#include "chase/training.h"
#include "support/errors.h"

namespace chase {
namespace {

using testing::error_message;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const UtcTime kStart = *parse_utc_time("2026-01-01T00:00:00Z");
constexpr double kSamplesPerStep = 512;
constexpr double kMinLimitW = 100;

// 30-minute points for eight hours: clean (100 g/kWh) except a dirty window (600) from 1 h to 2.5
// h.
CarbonSeries dirty_window() {
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (int i = 0; i < 16; ++i) {
    times.push_back(kStart + i * 30min);
    values.push_back(i >= 2 && i < 5 ? 600 : 100);
  }
  return CarbonSeries(times, values, 30min, "dirty window");
}

struct DeadlineJob {
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(kStart);
  std::shared_ptr<SimulatedGpuBackend> gpus =
      make_simulated_gpus(2, synthetic_demo_profile(), clock);
  // About two hours at the highest limit; slack 1: due four hours after the start.
  std::size_t total_steps = static_cast<std::size_t>(
      7200 / (kSamplesPerStep / synthetic_demo_profile().throughput_at(300)));
  UtcTime deadline = kStart + 4h;

  DeadlineJob() { gpus->set_all_busy(true); }

  TrainingOptions options(PauseMode mode) const {
    CarbonSignalOptions signal;
    signal.clock = clock;
    signal.horizon = 48h;
    TrainingOptions options;
    PlannerOptions planner;
    planner.slowdown_budget = 1.0;
    planner.pause.mode = mode;
    planner.pause.idle_power_w = 30;
    options.policy = planner;
    options.carbon =
        std::make_shared<CarbonSignal>(make_replay_provider(dirty_window(), clock), signal);
    options.clock = clock;
    options.total_steps = total_steps;
    options.profiling.warmup_steps = 2;
    options.profiling.profile_steps = 5;
    return options;
  }

  // Runs steps until the work is done or the controller releases the job; returns the steps run.
  std::size_t run(TrainingController& controller, std::size_t steps) const {
    controller.on_train_begin();
    std::size_t done = 0;
    for (; done < steps; ++done) {
      controller.on_step_begin();
      if (controller.release_request()) break;
      clock->advance(Seconds(kSamplesPerStep / gpus->throughput(0)));
      controller.on_step_end();
    }
    controller.on_train_end();
    return done;
  }
};

TEST(DeadlineTraining, IdleModeHoldsTheLoopAtTheMinimumLimitThroughTheDirtyWindow) {
  DeadlineJob job;
  auto options = job.options(PauseMode::kIdle);
  double held_s = 0;
  std::vector<double> limits_while_held;
  options.wait_until = [&](UtcTime until) {
    // The loop is held: the GPUs idle, at the limit the controller set.
    job.gpus->set_all_busy(false);
    for (std::size_t g = 0; g < 2; ++g) limits_while_held.push_back(job.gpus->power_limit_w(g));
    held_s += seconds_between(job.clock->utc_now(), until);
    job.clock->advance(until - job.clock->utc_now());
    job.gpus->set_all_busy(true);
  };
  TrainingController controller(job.gpus, options);
  EXPECT_EQ(job.run(controller, job.total_steps), job.total_steps);
  EXPECT_LE(job.clock->utc_now(), job.deadline) << "finished before the deadline";
  const auto report = controller.report();
  EXPECT_EQ(report.steps, job.total_steps);
  EXPECT_GE(held_s, 3600) << "most of the 1.5 h dirty window is skipped";
  EXPECT_NEAR(report.paused_s, held_s, 1e-6);
  ASSERT_FALSE(limits_while_held.empty());
  for (const double limit : limits_while_held) EXPECT_EQ(limit, kMinLimitW);
  bool reported_pause = false;
  for (const auto& p : report.periods) {
    if (p.reason.find("pause (idle)") == std::string::npos) continue;
    reported_pause = true;
    EXPECT_EQ(p.steps, 0u) << format_utc_time(p.start);
    EXPECT_EQ(p.limits_w.back(), kMinLimitW);
    EXPECT_GE(p.carbon_intensity, 600) << "it pauses in the dirty window";
  }
  EXPECT_TRUE(reported_pause);
  EXPECT_THAT(run_report_json(report), HasSubstr("\"paused_s\""));
  std::ostringstream text;
  print_run_report(text, report);
  EXPECT_THAT(text.str(), HasSubstr("paused"));
  EXPECT_FALSE(report.release);
}

TEST(DeadlineTraining, IdleModeWithoutAWaitFunctionAdvancesAVirtualClock) {
  DeadlineJob job;
  TrainingController controller(job.gpus, job.options(PauseMode::kIdle));
  EXPECT_EQ(job.run(controller, job.total_steps), job.total_steps);
  EXPECT_GE(controller.report().paused_s, 3600);
  EXPECT_LE(job.clock->utc_now(), job.deadline);
}

TEST(DeadlineTraining, ReleaseModeCheckpointsExitsAndASecondRunFinishesTheWork) {
  DeadlineJob job;
  const fs::path resume_file =
      fs::temp_directory_path() / ("chase_resume_" + std::to_string(::getpid()) + ".json");
  auto options = job.options(PauseMode::kRelease);
  options.resume_file = resume_file;
  int callbacks = 0;
  options.on_release = [&](const ReleaseRequest&) { ++callbacks; };
  std::size_t first_steps = 0;
  ReleaseRequest release;
  {
    TrainingController first(job.gpus, options);
    first_steps = job.run(first, job.total_steps);
    ASSERT_LT(first_steps, job.total_steps) << "released before the end";
    ASSERT_TRUE(first.release_request());
    release = *first.release_request();
    EXPECT_EQ(callbacks, 1);
    EXPECT_EQ(release.steps_done, first_steps);
    EXPECT_EQ(release.job_start, kStart);
    EXPECT_GT(release.resume_at, job.clock->utc_now());
    EXPECT_LE(release.resume_at, kStart + 150min) << "no later than the window's end";
    const auto report = first.report();
    ASSERT_TRUE(report.release);
    EXPECT_THAT(run_report_json(report), HasSubstr("\"resume_at\""));
  }
  const auto from_file = read_resume_file(resume_file);
  fs::remove(resume_file);
  EXPECT_EQ(from_file.resume_at, release.resume_at);
  EXPECT_EQ(from_file.steps_done, release.steps_done);
  EXPECT_EQ(from_file.job_start, release.job_start);

  // The scheduler starts the job again at the resume time, from the checkpoint.
  job.clock->advance(release.resume_at - job.clock->utc_now());
  auto second_options = job.options(PauseMode::kRelease);
  second_options.resumed = from_file;
  TrainingController second(job.gpus, second_options);
  const auto second_steps = job.run(second, job.total_steps - first_steps);
  EXPECT_FALSE(second.release_request());
  EXPECT_EQ(first_steps + second_steps, job.total_steps);
  EXPECT_LE(job.clock->utc_now(), job.deadline) << "the work is done before the deadline";
}

TEST(DeadlineTraining, AResumeFileThatIsNotOneIsRefusedNamingIt) {
  const fs::path file =
      fs::temp_directory_path() / ("chase_bad_resume_" + std::to_string(::getpid()) + ".json");
  std::ofstream(file) << R"({"resume_at": "tomorrow", "job_start": "2026-01-01T00:00:00Z"})";
  EXPECT_THAT(error_message([&] { read_resume_file(file); }, ErrorCode::kParse),
              HasSubstr("resume_at"));
  std::ofstream(file)
      << R"({"resume_at": "2026-01-01T00:00:00Z", "job_start": "2026-01-01T00:00:00Z"})";
  EXPECT_THAT(error_message([&] { read_resume_file(file); }, ErrorCode::kParse),
              HasSubstr("steps_done"));
  fs::remove(file);
}

}  // namespace
}  // namespace chase
