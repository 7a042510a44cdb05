// A saved profile shared across the ranks of a data-parallel job (chase/power_limit_optimizer.h):
// rank 0 writes it; a later run reuses it only when every rank finds it, and then every rank sets
// the same limit at its first step without profiling; when any rank lacks it (or cannot read it),
// every rank profiles again.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <barrier>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "chase/coordinator.h"
#include "chase/limit_profile.h"
#include "chase/nvml.h"
#include "chase/power_limit_optimizer.h"
#include "support/fake_nvml_env.h"

namespace chase {
namespace {

namespace fs = std::filesystem;
using testing::FakeNvmlEnvironment;
using namespace std::chrono_literals;

constexpr std::size_t kRanks = 2;

template <typename Fn>
auto on_every_rank(Fn fn) {
  std::vector<std::future<decltype(fn(std::size_t{0}))>> futures;
  for (std::size_t rank = 0; rank < kRanks; ++rank) {
    futures.push_back(std::async(std::launch::async, fn, rank));
  }
  std::vector<decltype(fn(std::size_t{0}))> results;
  for (auto& f : futures) results.push_back(f.get());
  return results;
}

struct RankOutcome {
  bool loaded = false;
  OptimizerState state_at_construction = OptimizerState::kReady;
  double limit_before_first_step = 0;
  double limit_after_first_step = 0;
  OptimizerState final_state = OptimizerState::kReady;
  double chosen = 0;
  fs::path path;
};

class SharedProfile : public ::testing::Test {
 protected:
  void TearDown() override {
    fs::remove_all(shared_);
    fs::remove_all(other_);
  }

  // One run of the job: each rank drives its own GPU, with its profile folder, for `steps` steps
  // kept in lockstep (the barrier stands for the gradient all-reduce).
  std::vector<RankOutcome> run(const std::vector<fs::path>& dirs, int steps) {
    std::shared_ptr<GpuBackend> backend = open_nvml();
    auto coordinators = make_in_process_coordinators(kRanks, 10s);
    std::barrier all_reduce(static_cast<std::ptrdiff_t>(kRanks));
    return on_every_rank([&](std::size_t rank) {
      PowerLimitOptimizerOptions options;
      options.gpus = {rank};
      options.coordinator = coordinators[rank];
      options.wait_steps = 1;
      options.warmup_steps = 2;
      options.profile_steps = 3;
      options.limit_step_w = 100;
      options.selector = make_zeus_selector(1.0);  // energy only: a limit below the maximum
      options.profile_dir = dirs[rank];
      options.job_id = "shared";
      options.batch_size = 64;
      PowerLimitOptimizer optimizer(backend, options);
      RankOutcome out;
      out.loaded = optimizer.loaded_saved_profile();
      out.state_at_construction = optimizer.state();
      out.path = optimizer.profile_path();
      out.limit_before_first_step = nvml_.limit_w(static_cast<unsigned>(rank));
      for (int step = 0; step < steps; ++step) {
        optimizer.on_step_begin();
        if (step == 0) out.limit_after_first_step = nvml_.limit_w(static_cast<unsigned>(rank));
        std::this_thread::sleep_for(2ms);  // energy to measure; the barrier keeps ranks together
        all_reduce.arrive_and_wait();
      }
      out.final_state = optimizer.state();
      out.chosen = optimizer.current_limit_w();
      return out;
    });
  }

  FakeNvmlEnvironment nvml_{FakeNvmlEnvironment::standard_config(kRanks)};
  fs::path shared_ = fs::temp_directory_path() / ("chase_shared_" + std::to_string(::getpid()));
  fs::path other_ = fs::temp_directory_path() / ("chase_other_" + std::to_string(::getpid()));
};

TEST_F(SharedProfile, RankZeroWritesItAndEveryRankReusesIt) {
  // First run: rank 1 is pointed elsewhere, so what it would write shows.
  const auto first = run({shared_, other_}, 30);
  ASSERT_EQ(first[0].final_state, OptimizerState::kDone);
  ASSERT_TRUE(fs::exists(first[0].path)) << first[0].path;
  EXPECT_FALSE(fs::exists(first[1].path)) << "only rank 0 writes the profile";
  EXPECT_EQ(first[0].path.filename(), first[1].path.filename()) << "one profile for the job";
  EXPECT_EQ(first[1].chosen, first[0].chosen) << "the ranks agree";

  // The fake's GPUs do not slow down, so what was measured is noise: the saved profile is replaced
  // by one whose zeus(η = 1) choice is known (least energy: 200 W), keeping its identity.
  const auto saved = load_limit_profile_json(first[0].path);
  save_limit_profile(
      LimitProfile({{300, 10, 3000}, {200, 12, 1000}, {100, 20, 2000}}, saved.info()),
      first[0].path);
  const double chosen = 200;

  // Second run, the shared folder for both: no profiling, the saved choice at the first step.
  const auto second = run({shared_, shared_}, 3);
  for (std::size_t rank = 0; rank < kRanks; ++rank) {
    SCOPED_TRACE(rank);
    EXPECT_TRUE(second[rank].loaded);
    EXPECT_EQ(second[rank].state_at_construction, OptimizerState::kDone);
    EXPECT_EQ(second[rank].limit_before_first_step, 300) << "nothing changes at construction";
    EXPECT_EQ(second[rank].limit_after_first_step, chosen);
  }
}

TEST_F(SharedProfile, ARankWithoutItMakesEveryRankProfileAgain) {
  run({shared_, shared_}, 30);
  const auto again = run({shared_, other_}, 1);  // rank 1's folder has no profile
  for (std::size_t rank = 0; rank < kRanks; ++rank) {
    SCOPED_TRACE(rank);
    EXPECT_FALSE(again[rank].loaded);
    EXPECT_NE(again[rank].state_at_construction, OptimizerState::kDone);
  }
}

TEST_F(SharedProfile, ARankThatCannotReadItMakesEveryRankProfileAgain) {
  const auto first = run({shared_, shared_}, 30);
  fs::create_directories(other_);
  std::ofstream(other_ / first[0].path.filename()) << "{ not a profile";
  const auto again = run({shared_, other_}, 1);
  for (std::size_t rank = 0; rank < kRanks; ++rank) {
    SCOPED_TRACE(rank);
    EXPECT_FALSE(again[rank].loaded);
    EXPECT_NE(again[rank].state_at_construction, OptimizerState::kDone);
  }
}

}  // namespace
}  // namespace chase
