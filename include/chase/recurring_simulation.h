// chase/recurring_simulation.h — a recurring training job replayed over the Zeus traces, its batch
// size chosen by the BatchSizeOptimizer and its power limit by the Zeus selector
// (docs/ALGORITHMS.md §5–§6, the Zeus artifact's semantics).
//
// Contract: simulate_recurring(trace, options) recurs the trace's workload N times (default
// 2·|B|·|P|: batch sizes × power limits). Each recurrence runs the job until one run reaches the
// target: the optimizer names the batch size; its first run profiles the power limits (one epoch
// at the mean epoch time and energy over all limits) and the zeus(η) selector picks the limit from
// a LimitProfile of the batch size's epochs — the same selector live training uses. A run samples
// one training path (a recorded `run` of that batch size, uniformly) and lasts the path's target
// epoch, or stops early at the last whole epoch whose cost stays within the optimizer's cost limit
// (β × the cheapest recurrence) or at max_epochs; it reached the target only if the path's target
// epoch is within that bound. A run that could not complete one epoch under the limit never starts
// (observe_not_started) and is retried. Cost = η·E + (1−η)·MaxPower·T, MaxPower the trace's
// highest limit. A recurrence's energy and time are the sums over its runs.
// Scoring: the default is the trace's default configuration (default batch size at the highest
// limit, ETA/TTA as ZeusTrace::default_config); the summary's reduction is 1 − (mean energy of the
// last `score_last` recurrences) / default ETA.
// Deterministic for a seed: the training paths are drawn from the seed, the optimizer's decisions
// from it too (its own stream). Errors: bad options (η outside [0, 1], β < 1, max_tries or
// score_last 0) throw kInvalidArgument; a trace whose default configuration has no ETA throws
// kNotFound (ZeusTrace::default_config); a recurrence that does not reach the target in
// `max_tries` runs throws kNotFound naming it.
//
// Thread safety: pure function over an immutable trace; runs may proceed in parallel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chase/batch_size_optimizer.h"
#include "chase/zeus_trace.h"

namespace chase {

struct RecurringOptions {
  double eta = 0.5;
  double beta = 2;
  std::uint64_t seed = 1;
  std::size_t recurrences = 0;  // 0: 2·|B|·|P|
  std::size_t pruning_rounds = 2;
  std::size_t explorations = 2;
  std::size_t window = 0;
  std::size_t max_tries = 20;  // runs per recurrence before the target counts as unreachable
  std::size_t score_last = 10;
  // Where the optimizer keeps its observations (null: in memory), under `job_id` (empty: the
  // workload's dataset name); a store that already holds the job's history continues from it.
  std::shared_ptr<BatchSizeStore> store;
  std::string job_id;
  // Called after each recurrence with (done, total), e.g. for a progress line; may be empty.
  std::function<void(std::size_t, std::size_t)> on_recurrence;
};

// The most recurrences one simulation runs: every recurrence is kept in the result, so the count
// bounds its memory (and its run time). More throws kInvalidArgument.
inline constexpr std::size_t kMaxRecurrences = 1'000'000;

struct RecurringRun {
  std::size_t recurrence = 0;  // 0-based
  std::size_t batch_size = 0;
  double power_limit_w = 0;
  double epochs = 0;  // epochs run (the profiling epoch included)
  double energy_j = 0;
  double time_s = 0;
  double cost = 0;
  bool reached = false;
  bool profiled = false;  // this run profiled the batch size's power limits
};

struct Recurrence {
  std::size_t runs = 0;
  double energy_j = 0;
  double time_s = 0;
  double cost = 0;
  std::size_t batch_size = 0;  // of the run that reached the target
  double power_limit_w = 0;
};

struct RecurringSummary {
  std::size_t recurrences = 0;
  std::size_t runs = 0;
  std::size_t scored = 0;    // recurrences the mean is taken over
  double mean_energy_j = 0;  // of the scored recurrences
  double mean_time_s = 0;
  double energy_reduction = 0;  // 1 − mean_energy_j / default ETA
  double time_reduction = 0;    // 1 − mean_time_s / default TTA
  std::size_t batch_size = 0;   // the configuration the last recurrence converged with
  double power_limit_w = 0;
  TraceConfig best;  // energy-optimal configuration of the trace (best possible)
  double best_energy_reduction = 0;
};

struct RecurringResult {
  TraceConfig default_config;
  std::vector<RecurringRun> history;  // every run that started, in order
  std::vector<Recurrence> recurrences;
  RecurringSummary summary;
};

RecurringResult simulate_recurring(const ZeusTrace& trace, const RecurringOptions& options = {});

// The optimizer's decisions use seed ^ kDecisionSeedSalt, their own stream apart from the training
// paths'; a live job (chase/recurring_store.h) uses the same, so a job and its simulation agree.
inline constexpr std::uint64_t kDecisionSeedSalt = 0x5eed0fba7c4512e5ULL;

// The artifact's default number of recurrences for a trace: 2·|B|·|P|.
std::size_t default_recurrences(const ZeusTrace& trace);

}  // namespace chase
