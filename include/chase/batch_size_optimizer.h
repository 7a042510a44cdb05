// chase/batch_size_optimizer.h — the batch size of a recurring training job (Zeus' method,
// docs/ALGORITHMS.md §5): pruning rounds, then Gaussian Thompson sampling, with
// early stopping of runs that cost too much.
//
// Contract: a job recurs; before each run the caller asks next_batch_size(), runs the job (the
// first run of a batch size also profiles its power limits, §2) and reports the run's cost — η·E +
// (1−η)·MaxPower·T of the whole run, to the target or until it was stopped — with observe().
//   Pruning (`pruning_rounds`, default 2): each round walks down from the round's default batch
//     size (itself first), then up from the next larger one; a size that fails to reach the
//     target ends that direction. The sizes that reached it survive into the next round, whose
//     default is the cheapest of them (the first round's is the job's default).
//   Thompson sampling over the survivors: reward = −cost; each arm's rewards (the latest `window`
//     of them when window > 0, every one otherwise, pruning included) give the reward precision
//     τ = 1/variance (infinite when all are equal: the arm's sample is then its mean) and the
//     posterior λ = λ0 + n·τ, μ = (λ0·μ0 + τ·Σr)/λ. An arm with fewer than `explorations` rewards
//     is explored first (arms in random order); otherwise one sample per arm from N(μ, 1/λ),
//     largest wins.
//   Early stopping: cost_limit() = β × the cheapest recurrence so far (a recurrence: the runs up to
//     and including one that reached the target, failed tries included); a run must stop before
//     its cost passes it. A run that could not even start under the limit is reported with
//     observe_not_started(): it counts as a failure with a penalty cost of 100 × the limit, and
//     not towards the recurrence's cost.
// The optimizer is pure logic over a BatchSizeStore: every observation is appended there and the
// state is rebuilt from it at construction, so a service can host the optimizer and restart. The
// randomness of each decision is drawn from (seed, number of observations so far): the same seed
// and history give the same batch size, and asking twice without observing gives the same answer.
// An observation for a batch size other than the one pruning expects (a concurrent run) is kept in
// the history (its reward counts for Thompson sampling) but does not advance pruning.
// A long-lived optimizer whose store is also written by others (other processes, other
// connections) need not be rebuilt: catch_up() feeds it the observations appended since it loaded
// or last caught up, and it then decides exactly as one constructed from the whole store would
// (the recurring store caches its optimizers so, docs/RECURRING.md).
// Bad options (no batch sizes, a default that is not one of them, β < 1, a negative window...)
// throw kInvalidArgument; observing an unknown batch size or a non-finite cost throws
// kInvalidArgument; next_batch_size() throws kNotFound when pruning left no batch size that reached
// the target (the target is probably unreachable).
//
// Thread safety: not thread-safe; one caller at a time. A store may be shared by optimizers of
// different jobs if its implementation is thread-safe (the in-memory one is).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chase {

struct BatchSizeObservation {
  std::size_t batch_size = 0;
  double cost = 0;       // η·E + (1−η)·MaxPower·T of the run
  bool reached = false;  // reached the target metric
  bool started = true;   // false: the cost limit ruled the run out before its first epoch
};

// Where a job's observations live (one interface per external system; a SQLite store can follow).
class BatchSizeStore {
 public:
  virtual ~BatchSizeStore() = default;
  // In the order appended; empty for a job never seen.
  virtual std::vector<BatchSizeObservation> load(const std::string& job_id) const = 0;
  virtual void append(const std::string& job_id, const BatchSizeObservation& observation) = 0;
};

// Thread-safe, in memory, lost at exit.
std::shared_ptr<BatchSizeStore> make_memory_batch_size_store();

struct BatchSizeOptimizerOptions {
  std::string job_id = "job";
  std::vector<std::size_t> batch_sizes;  // the feasible batch sizes
  std::size_t default_batch_size = 0;    // b0, one of batch_sizes
  std::size_t pruning_rounds = 2;
  std::size_t explorations = 2;  // rewards each arm gets before sampling starts (≥ 1)
  std::size_t window = 0;        // latest rewards per arm kept; 0: all
  double prior_mean = 0;         // μ0
  double prior_precision = 0;    // λ0 ≥ 0
  double beta = 2;               // early stopping; +inf disables it
  std::uint64_t seed = 1;
  std::shared_ptr<BatchSizeStore> store;  // null: a fresh in-memory store
};

enum class BatchSizeStage { kPruning, kThompsonSampling };

// One arm's posterior, for reports.
struct BatchSizeArm {
  std::size_t batch_size = 0;
  std::size_t rewards = 0;
  double mean = 0;       // μ (reward = −cost)
  double precision = 0;  // λ; +inf when every reward is the same
};

class BatchSizeOptimizer {
 public:
  explicit BatchSizeOptimizer(BatchSizeOptimizerOptions options);
  ~BatchSizeOptimizer();
  BatchSizeOptimizer(BatchSizeOptimizer&&) noexcept;
  BatchSizeOptimizer& operator=(BatchSizeOptimizer&&) noexcept;

  std::size_t next_batch_size() const;
  void observe(std::size_t batch_size, double cost, bool reached);
  void observe_not_started(std::size_t batch_size);
  // The observations others appended to the store after the ones this optimizer holds, oldest
  // first; they are applied as construction applies loaded ones and are not appended again. The
  // caller vouches that they follow this optimizer's history in the store (else its decisions are
  // those of a history the store does not hold; rebuild it instead).
  void catch_up(const std::vector<BatchSizeObservation>& appended);

  // β × the cheapest recurrence's cost; +inf before any recurrence reached the target.
  double cost_limit() const noexcept;
  BatchSizeStage stage() const noexcept;
  // The sizes still in play: the current pruning round's set, or the sampling arms.
  std::vector<std::size_t> candidates() const;
  // The sampling arms' posteriors (empty while pruning).
  std::vector<BatchSizeArm> arms() const;
  const std::vector<BatchSizeObservation>& history() const noexcept;
  const BatchSizeOptimizerOptions& options() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chase
