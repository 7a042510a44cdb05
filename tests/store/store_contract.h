// Test helper: the behaviour every recurring store must show, as functions over a store URL, so the
// SQLite tests (recurring_store_test.cpp) and the PostgreSQL ones (postgres_store_test.cpp, against
// a throw-away cluster) check the same contract (chase/recurring_store.h).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "chase/batch_size_optimizer.h"
#include "chase/recurring_simulation.h"
#include "chase/recurring_store.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace chase::testing {

inline RecurringJobSpec toy_spec() {
  RecurringJobSpec spec;
  spec.batch_sizes = {16, 32, 64, 128};
  spec.default_batch_size = 32;
  spec.target_metric = 0.9;
  spec.max_epochs = 50;
  spec.max_power_w = 300;
  spec.seed = 7;
  return spec;
}

// A run's cost, made up per batch size (64 the cheapest; 16 never reaches the target).
inline double toy_cost(std::size_t batch_size) {
  return 1000.0 + std::abs(double(batch_size) - 64) * 7;
}
inline bool toy_reaches(std::size_t batch_size) { return batch_size != 16; }

inline RunOwner this_process() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return {host, static_cast<std::int64_t>(getpid())};
}

// One whole run: decide, report an epoch, end.
inline RunDecision run_once(RecurringStore& store, const std::string& job) {
  const auto decision = store.begin_run(job, toy_spec(), this_process());
  const double cost = toy_cost(decision.batch_size);
  const bool reached = toy_reaches(decision.batch_size);
  store.record_epoch(decision.run_id, 1, reached ? 0.95 : 0.1, cost);
  store.end_run(decision.run_id, {reached ? RunOutcome::kReached : RunOutcome::kFailed, 1, cost,
                                  cost / 300, cost, 0});
  return decision;
}

// The optimizer in memory, fed `observations`, as the store's decisions must equal.
inline BatchSizeOptimizer serial_optimizer(const std::string& job,
                                           const std::vector<BatchSizeObservation>& observations) {
  const auto spec = toy_spec();
  BatchSizeOptimizerOptions options;
  options.job_id = job;
  options.batch_sizes = spec.batch_sizes;
  options.default_batch_size = spec.default_batch_size;
  options.beta = spec.beta;
  options.seed = spec.seed ^ kDecisionSeedSalt;
  options.store = make_memory_batch_size_store();
  for (const auto& o : observations) options.store->append(job, o);
  return BatchSizeOptimizer(options);
}
inline std::size_t serial_decision(const std::string& job,
                                   const std::vector<BatchSizeObservation>& observations) {
  return serial_optimizer(job, observations).next_batch_size();
}

inline void check_lifecycle(const std::function<std::unique_ptr<RecurringStore>()>& open) {
  auto store = open();
  const std::string job = "lifecycle";
  EXPECT_NE(error_message([&] { store->begin_run(job, std::nullopt, this_process()); },
                          ErrorCode::kNotFound)
                .find("unknown job 'lifecycle'"),
            std::string::npos);
  const auto first = store->begin_run(job, toy_spec(), this_process());
  EXPECT_EQ(first.batch_size, 32u);  // pruning starts at the default
  EXPECT_FALSE(first.profile);
  EXPECT_TRUE(std::isinf(first.cost_limit));
  EXPECT_EQ(store->run(first.run_id).outcome, RunOutcome::kOpen);

  store->record_epoch(first.run_id, 1, 0.5, 100);
  error_message([&] { store->record_epoch(first.run_id, 1, 0.6, 200); }, ErrorCode::kAlreadyExists);
  error_message([&] { store->record_epoch(first.run_id, 2, NAN, 200); },
                ErrorCode::kInvalidArgument);
  error_message([&] { store->record_epoch(first.run_id, 2, INFINITY, 200); },
                ErrorCode::kInvalidArgument);
  store->end_run(first.run_id, {RunOutcome::kReached, 1, 10, 1, 100, 0});
  EXPECT_EQ(store->load(job).size(), 1u);
  // Ended: no more reports, no second end, nothing changed.
  EXPECT_NE(error_message([&] { store->record_epoch(first.run_id, 2, 0.7, 300); },
                          ErrorCode::kAlreadyExists)
                .find("already ended (reached)"),
            std::string::npos);
  error_message(
      [&] {
        store->end_run(first.run_id, {RunOutcome::kFailed, 1, 10, 1, 100, 0});
      },
      ErrorCode::kAlreadyExists);
  EXPECT_EQ(store->load(job).size(), 1u);
  EXPECT_EQ(store->run(first.run_id).outcome, RunOutcome::kReached);
  error_message([&] { store->record_epoch(987654, 1, 0.5, 1); }, ErrorCode::kNotFound);

  // Options are stored with the job: a different one later is refused, naming it.
  auto other = toy_spec();
  other.beta = 3;
  other.max_epochs = 7;
  const auto message = error_message([&] { store->begin_run(job, other, this_process()); },
                                     ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("beta: stored 2, given 3"), std::string::npos) << message;
  EXPECT_NE(message.find("max epochs: stored 50, given 7"), std::string::npos) << message;
  // Without options the stored ones apply.
  const auto second = store->begin_run(job, std::nullopt, this_process());
  EXPECT_EQ(second.spec.max_epochs, 50u);
  EXPECT_DOUBLE_EQ(second.cost_limit, 2 * 100.0);

  // Profiles: saved per batch size, read back exactly, handed to the next decision of that size.
  SavedProfile profile{{{250, 100, 20000}, {150, 120, 16800}}, 150, 120, 16800};
  store->save_profile(job, second.batch_size, profile);
  const auto back = store->profile(job, second.batch_size);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->points.size(), 2u);
  EXPECT_EQ(back->epoch_energy_j, 16800);
  error_message([&] { store->save_profile("nobody", 32, profile); }, ErrorCode::kNotFound);
}

inline void check_decisions_match_memory(
    const std::function<std::unique_ptr<RecurringStore>()>& open) {
  auto store = open();
  const std::string job = "serial";
  std::vector<BatchSizeObservation> memory;
  for (int i = 0; i < 24; ++i) {
    const auto decision = run_once(*store, job);
    EXPECT_EQ(decision.batch_size, serial_decision(job, memory)) << "run " << i;
    memory.push_back({decision.batch_size, toy_cost(decision.batch_size),
                      toy_reaches(decision.batch_size), true});
  }
  const auto stored = store->load(job);
  ASSERT_EQ(stored.size(), memory.size());
  for (std::size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].batch_size, memory[i].batch_size);
    EXPECT_EQ(stored[i].cost, memory[i].cost);  // bit for bit
  }
}

// 8 runs of one job at once, each its own connection: every outcome recorded exactly once, and
// each decision is what the optimizer says after the observations committed before it.
inline void check_concurrent_runs(const std::function<std::unique_ptr<RecurringStore>()>& open,
                                  int rounds = 3) {
  const std::string job = "concurrent";
  constexpr int kRuns = 8;
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::thread> threads;
    std::vector<std::string> failures(kRuns);
    for (int t = 0; t < kRuns; ++t) {
      threads.emplace_back([&, t] {
        try {
          auto store = open();
          run_once(*store, job);
        } catch (const std::exception& e) {
          failures[t] = e.what();
        }
      });
    }
    for (auto& thread : threads) thread.join();
    for (const auto& failure : failures) EXPECT_EQ(failure, "");
  }
  auto store = open();
  const auto observations = store->load(job);
  const auto runs = store->runs(job);
  ASSERT_EQ(runs.size(), static_cast<std::size_t>(kRuns * rounds));
  ASSERT_EQ(observations.size(), runs.size());
  for (const auto& run : runs) {
    EXPECT_NE(run.outcome, RunOutcome::kOpen);
    ASSERT_LE(run.sequence, observations.size());
    const std::vector<BatchSizeObservation> before(
        observations.begin(), observations.begin() + static_cast<std::ptrdiff_t>(run.sequence));
    EXPECT_EQ(run.batch_size, serial_decision(job, before)) << "run " << run.run_id;
  }
}

// A `chase run` killed -9 with its run open: the next decision records it as killed (not as an
// observation) and goes on.
inline void check_killed_owner(const std::function<std::unique_ptr<RecurringStore>()>& open) {
  const std::string job = "killed";
  { run_once(*open(), job); }
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      auto store = open();
      const auto decision = store->begin_run(job, toy_spec(), this_process());
      store->record_epoch(decision.run_id, 1, 0.2, 50);
      const auto id = decision.run_id;
      if (write(ready[1], &id, sizeof(id)) != sizeof(id)) _exit(3);
      pause();
    } catch (...) {
      _exit(2);
    }
    _exit(0);
  }
  close(ready[1]);
  std::int64_t orphan = 0;
  ASSERT_EQ(read(ready[0], &orphan, sizeof(orphan)), static_cast<ssize_t>(sizeof(orphan)));
  close(ready[0]);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);

  auto store = open();
  EXPECT_EQ(store->run(orphan).outcome, RunOutcome::kOpen);
  const auto next = store->begin_run(job, toy_spec(), this_process());
  EXPECT_EQ(next.killed, std::vector<std::int64_t>{orphan});
  EXPECT_EQ(store->run(orphan).outcome, RunOutcome::kKilled);
  EXPECT_EQ(store->run(orphan).epochs, 1u);
  EXPECT_EQ(store->load(job).size(), 1u);  // the kill taught the optimizer nothing
  error_message(
      [&] {
        store->end_run(orphan, {RunOutcome::kReached, 1, 1, 1, 1, 0});
      },
      ErrorCode::kAlreadyExists);
  store->end_run(next.run_id, {RunOutcome::kReached, 1, 1, 1, 1, 0});
  EXPECT_EQ(store->load(job).size(), 2u);
}

// Processes writing as fast as they can, killed -9 at arbitrary points: every observation is
// whole, their sequence has no gap, and the store still takes runs.
inline void check_kill_during_writes(const std::function<std::unique_ptr<RecurringStore>()>& open) {
  const std::string job = "crash";
  { open()->begin_run(job, toy_spec(), this_process()); }  // registers the job
  for (int round = 0; round < 4; ++round) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        auto store = open();
        for (;;) run_once(*store, job);
      } catch (...) {
        _exit(2);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + 40 * round));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status)) << "the writer stopped on its own";
  }
  auto store = open();
  const auto observations = store->load(job);
  EXPECT_GT(observations.size(), 0u);
  std::size_t ended = 0;
  for (const auto& run : store->runs(job)) {
    if (run.outcome == RunOutcome::kReached || run.outcome == RunOutcome::kFailed) ++ended;
  }
  EXPECT_EQ(ended, observations.size());  // each ended run is one observation, and vice versa
  run_once(*store, job);
  EXPECT_EQ(store->load(job).size(), observations.size() + 1);
}

// Runs SQL on the store's database behind chase's back: a hand edit, a test's trigger.
using RawSql = std::function<void(const std::string&)>;

// A store object that lives across decisions (as each connection of `chase serve` does, caching
// the job's optimizer) while another connection and other processes write the same job: each of
// its decisions is the one the in-memory optimizer makes from the history committed before it.
inline void check_long_lived_store_catches_up(
    const std::function<std::unique_ptr<RecurringStore>()>& open) {
  const std::string job = "catch-up";
  auto deciding = open();
  auto other = open();
  for (int i = 0; i < 30; ++i) {
    for (int k = 0; k < i % 3; ++k) run_once(*other, job);  // 0, 1 or 2 runs between two of ours
    if (i % 10 == 5) {                                      // and another process's
      const pid_t child = fork();
      ASSERT_GE(child, 0);
      if (child == 0) {
        try {
          run_once(*open(), job);
        } catch (...) {
          _exit(2);
        }
        _exit(0);
      }
      int status = 0;
      waitpid(child, &status, 0);
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the other process failed";
    }
    const auto before = deciding->load(job);
    const auto decision = run_once(*deciding, job);
    EXPECT_EQ(decision.sequence, before.size()) << "decision " << i;
    EXPECT_EQ(decision.batch_size, serial_decision(job, before)) << "decision " << i;
  }
}

// A decision that fails after the optimizer learnt something in its transaction (here: a size
// ruled out, then the run's row refused by a trigger) teaches a long-lived store nothing: the
// next decision is the one the committed history gives. `refuse_runs` / `allow_runs` are the
// backend's SQL to add and drop a trigger that refuses every new run.
inline void check_failed_decision_teaches_nothing(
    const std::function<std::unique_ptr<RecurringStore>()>& open, const RawSql& sql,
    const std::string& refuse_runs, const std::string& allow_runs) {
  auto store = open();
  const std::string job = "failed";
  // One cheap recurrence (cost 100): the limit is 200; pruning next expects 16, whose saved epoch
  // costs 2000, so a decision rules it out (an observation) before choosing.
  const auto first = store->begin_run(job, toy_spec(), this_process());
  store->end_run(first.run_id, {RunOutcome::kReached, 1, 1, 1, 100, 0});
  store->save_profile(job, 16, {{{300, 10, 1000}}, 300, 10, 1000});
  sql(refuse_runs);
  EXPECT_THROW(store->begin_run(job, std::nullopt, this_process()), Error);
  EXPECT_EQ(store->load(job).size(), 1u);  // the ruled-out observation was rolled back
  EXPECT_EQ(store->runs(job).size(), 1u);
  sql(allow_runs);
  const auto next = store->begin_run(job, std::nullopt, this_process());
  EXPECT_EQ(next.ruled_out, 1u);
  EXPECT_EQ(next.sequence, 2u);
  const auto observations = store->load(job);
  ASSERT_EQ(observations.size(), 2u);
  EXPECT_FALSE(observations[1].started);
  EXPECT_EQ(next.batch_size, serial_decision(job, observations));
}

// History edited by hand under a long-lived store — its last two observations changed, one in the
// middle removed, all of them removed: each next decision is the one the edited history gives.
inline void check_edited_history_rebuilds(
    const std::function<std::unique_ptr<RecurringStore>()>& open, const RawSql& sql) {
  auto store = open();
  const std::string job = "edited";
  for (int i = 0; i < 6; ++i) run_once(*store, job);
  const auto decide_from_stored = [&](const char* after) {
    const auto before = store->load(job);
    const auto decision = run_once(*store, job);
    const auto serial = serial_optimizer(job, before);
    EXPECT_EQ(decision.batch_size, serial.next_batch_size()) << "after " << after;
    EXPECT_EQ(decision.cost_limit, serial.cost_limit()) << "after " << after;
    EXPECT_EQ(decision.sequence, before.size()) << "after " << after;
  };
  sql("UPDATE observations SET cost = cost / 10 WHERE job = 'edited' AND "
      "seq >= (SELECT MAX(seq) - 1 FROM observations WHERE job = 'edited')");
  decide_from_stored("the last two observations were edited");
  sql("DELETE FROM observations WHERE job = 'edited' AND seq = 1");
  decide_from_stored("an observation in the middle was removed");
  sql("DELETE FROM observations WHERE job = 'edited'");
  decide_from_stored("every observation was removed");
}

}  // namespace chase::testing
