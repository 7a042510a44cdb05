// The in-process coordinator under contention: many ranks, many rounds, each round's inputs
// different, every rank checking the result against what the round's inputs imply (a result leaking
// between rounds fails); and a collective that one rank never reaches, with several ranks waiting.
// Built into the ThreadSanitizer pass too (make test-tsan): it includes only the coordinator.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "chase/coordinator.h"
#include "chase/error.h"

namespace chase {
namespace {

using ::testing::HasSubstr;

// Rank r's window in round k: its time and energy are unique to (k, r).
Coordinator::Window window_of(std::size_t round, std::size_t rank) {
  return {static_cast<double>(round * 100 + rank), static_cast<double>(round * 1000 + rank * 10),
          round % 7 == 3 && rank == 1};
}

TEST(CoordinatorConcurrency, EveryRoundGivesEveryRankThatRoundsResult) {
  constexpr std::size_t kRanks = 6;
  constexpr std::size_t kRounds = 300;
  auto ranks = make_in_process_coordinators(kRanks);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (std::size_t r = 0; r < kRanks; ++r) {
    threads.emplace_back([&, r] {
      for (std::size_t k = 0; k < kRounds; ++k) {
        const auto job = ranks[r]->combine(window_of(k, r));
        // Derived from the inputs, not from the coordinator: slowest time, summed energy.
        const double slowest = static_cast<double>(k * 100 + (kRanks - 1));
        double energy = 0;
        for (std::size_t q = 0; q < kRanks; ++q) energy += window_of(k, q).energy_j;
        if (job.time_s != slowest || job.energy_j != energy || job.failed != (k % 7 == 3)) ++wrong;
        // Every rank proposes its own value; rank 0's wins.
        const double agreed = ranks[r]->agree(static_cast<double>(k * 10 + r));
        if (agreed != static_cast<double>(k * 10)) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(CoordinatorConcurrency, SeveralRanksWaitingForOneThatNeverComesAllFail) {
  constexpr std::size_t kRanks = 4;
  auto ranks = make_in_process_coordinators(kRanks, std::chrono::milliseconds(200));
  std::vector<std::string> errors(kRanks - 1);
  std::vector<std::thread> waiting;
  for (std::size_t r = 0; r + 1 < kRanks; ++r) {
    waiting.emplace_back([&, r] {
      try {
        ranks[r]->combine({1.0, 1.0, false});
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kUnavailable) errors[r] = e.what();
      }
    });
  }
  for (auto& t : waiting) t.join();
  for (std::size_t r = 0; r + 1 < kRanks; ++r) {
    EXPECT_THAT(errors[r], HasSubstr("combine of 4 ranks did not complete within 200 ms")) << r;
  }
  // The group is unusable afterwards, for the late rank and the others alike, in either collective.
  for (std::size_t r = 0; r < kRanks; ++r) {
    EXPECT_THROW(ranks[r]->agree(1.0), Error) << r;
  }
  EXPECT_THROW(ranks[kRanks - 1]->combine({1.0, 1.0, false}), Error);
}

}  // namespace
}  // namespace chase
