// Coordinators, and data-parallel profiling: one optimizer per rank (thread), each driving its own
// GPU of the fake NVML, combining windows and agreeing on the choice.
#include "chase/coordinator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <barrier>
#include <future>
#include <thread>

#include "chase/error.h"
#include "chase/nvml.h"
#include "chase/power_limit_optimizer.h"
#include "support/fake_nvml_env.h"

namespace chase {
namespace {

using testing::FakeNvmlEnvironment;
using namespace std::chrono_literals;

// Runs fn(rank) on one thread per rank and returns the results in rank order.
template <typename Fn>
auto on_every_rank(std::size_t ranks, Fn fn) {
  std::vector<std::future<decltype(fn(std::size_t{0}))>> futures;
  for (std::size_t rank = 0; rank < ranks; ++rank) {
    futures.push_back(std::async(std::launch::async, fn, rank));
  }
  std::vector<decltype(fn(std::size_t{0}))> results;
  for (auto& f : futures) results.push_back(f.get());
  return results;
}

TEST(Coordinator, SingleProcessReturnsItsInput) {
  auto single = make_single_process_coordinator();
  EXPECT_EQ(single->size(), 1u);
  const auto w = single->combine({2.5, 100, false});
  EXPECT_EQ(w.time_s, 2.5);
  EXPECT_EQ(w.energy_j, 100);
  EXPECT_EQ(single->agree(175), 175);
}

TEST(Coordinator, CombineTakesTheSlowestTimeAndTheTotalEnergyOnEveryRank) {
  auto ranks = make_in_process_coordinators(4);
  const auto results = on_every_rank(4, [&](std::size_t r) {
    return ranks[r]->combine(
        {1.0 + static_cast<double>(r), 10.0 * static_cast<double>(r + 1), r == 2});
  });
  for (const auto& w : results) {
    EXPECT_EQ(w.time_s, 4.0);
    EXPECT_EQ(w.energy_j, 100.0);
    EXPECT_TRUE(w.failed) << "one failed rank fails the job's window";
  }
}

TEST(Coordinator, AgreeGivesRankZerosValueAndCollectivesRepeat) {
  auto ranks = make_in_process_coordinators(3);
  const auto results = on_every_rank(3, [&](std::size_t r) {
    std::vector<double> agreed;
    for (int round = 0; round < 50; ++round) {
      agreed.push_back(ranks[r]->agree(100.0 * round + static_cast<double>(r)));
    }
    return agreed;
  });
  for (const auto& agreed : results) {
    for (int round = 0; round < 50; ++round) EXPECT_EQ(agreed[round], 100.0 * round);
  }
}

TEST(Coordinator, ARankThatNeverComesBreaksTheGroupWithAClearError) {
  auto ranks = make_in_process_coordinators(2, 100ms);
  try {
    ranks[0]->agree(1);
    FAIL() << "rank 1 never came";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_THAT(e.what(), ::testing::HasSubstr("agree of 2 ranks did not complete within 100 ms"));
  }
  EXPECT_THROW(ranks[1]->agree(1), Error) << "the group stays broken";
  EXPECT_THROW(make_in_process_coordinators(0), Error);
}

// ---- Data-parallel profiling over the fake NVML -------------------------------------------------

PowerLimitOptimizerOptions rank_options(std::size_t rank,
                                        std::shared_ptr<Coordinator> coordinator) {
  PowerLimitOptimizerOptions options;
  options.gpus = {rank};
  options.coordinator = std::move(coordinator);
  options.wait_steps = 1;
  options.warmup_steps = 2;
  options.profile_steps = 3;
  options.limit_step_w = 100;
  options.selector = make_zeus_selector(0.5);
  return options;
}

TEST(DataParallelProfiling, RanksCombineWindowsAndRunTheSameLimit) {
  FakeNvmlEnvironment nvml(FakeNvmlEnvironment::standard_config(4));
  std::shared_ptr<GpuBackend> backend = open_nvml();
  nvml.set_load(3, 0.9);  // one busier GPU: the job's energy is the sum, not rank 0's
  auto coordinators = make_in_process_coordinators(4, 10s);
  struct Outcome {
    OptimizerState state;
    double chosen;
    std::vector<LimitMeasurement> profile;
    std::size_t gpu_count;
  };
  // Data-parallel ranks run in lockstep (the gradient all-reduce ends every step on all of them):
  // the barrier stands for it, so the ranks' windows cover the same span of time.
  std::barrier all_reduce(4);
  const auto outcomes = on_every_rank(4, [&](std::size_t rank) {
    PowerLimitOptimizer optimizer(backend, rank_options(rank, coordinators[rank]));
    // Steps of 20 ms: each rank opens and closes its window on its own thread, so on a loaded
    // machine the four windows drift apart by a few ms (the job's time is the longest of them);
    // 5 ms steps made that drift 15 % of a window.
    for (int step = 0; step < 30; ++step) {
      optimizer.on_step_begin();
      std::this_thread::sleep_for(20ms);
      all_reduce.arrive_and_wait();
    }
    return Outcome{optimizer.state(), optimizer.current_limit_w(), optimizer.profile()->points(),
                   optimizer.profile()->info().gpu_count};
  });
  for (std::size_t rank = 0; rank < 4; ++rank) {
    SCOPED_TRACE(rank);
    EXPECT_EQ(outcomes[rank].state, OptimizerState::kDone);
    EXPECT_EQ(outcomes[rank].chosen, outcomes[0].chosen);
    EXPECT_EQ(outcomes[rank].gpu_count, 4u);
    ASSERT_EQ(outcomes[rank].profile.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(outcomes[rank].profile[i].energy_j, outcomes[0].profile[i].energy_j);
      EXPECT_EQ(outcomes[rank].profile[i].time_s, outcomes[0].profile[i].time_s);
    }
  }
  // At 300 W: GPUs 0-2 draw 155 W, GPU 3 draws 30 + 0.9 × 250 = 255 W; the window's energy is all
  // four (≈ 720 W × time), far above any single GPU's (at most 255 W, twice that is the floor).
  // Drifting windows only lower the figure (the energy of each window over the longest one's time).
  const auto& at_300 = outcomes[0].profile[0];
  EXPECT_LE(at_300.energy_j / at_300.time_s, 1.1 * 720);
  EXPECT_GE(at_300.energy_j / at_300.time_s, 2 * 255);
  for (unsigned gpu = 0; gpu < 4; ++gpu) EXPECT_EQ(nvml.limit_w(gpu), 300) << "restored";
}

TEST(DataParallelProfiling, OneRanksLostGpuStopsProfilingOnEveryRank) {
  FakeNvmlEnvironment nvml(FakeNvmlEnvironment::standard_config(2));
  std::shared_ptr<GpuBackend> backend = open_nvml();
  auto coordinators = make_in_process_coordinators(2, 10s);
  const auto outcomes = on_every_rank(2, [&](std::size_t rank) {
    PowerLimitOptimizer optimizer(backend, rank_options(rank, coordinators[rank]));
    for (int step = 0; step < 30; ++step) {
      if (step == 5 && rank == 1) nvml.set_lost(1, true);  // while 300 W is being profiled
      optimizer.on_step_begin();
      std::this_thread::sleep_for(1ms);
    }
    return std::make_pair(optimizer.state(), optimizer.selection().has_value());
  });
  for (const auto& [state, chose] : outcomes) {
    EXPECT_EQ(state, OptimizerState::kDone);
    EXPECT_FALSE(chose) << "profiling was abandoned on every rank";
  }
  nvml.set_lost(1, false);
}

}  // namespace
}  // namespace chase
