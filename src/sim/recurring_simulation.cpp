// A recurring job over the Zeus traces (contract: chase/recurring_simulation.h).
#include "chase/recurring_simulation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <random>

#include "chase/batch_size_optimizer.h"
#include "chase/error.h"
#include "chase/limit_profile.h"
#include "chase/selector.h"

namespace chase {
namespace {

void check_options(const RecurringOptions& options) {
  if (!(options.eta >= 0 && options.eta <= 1)) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("eta weighs energy against time and must be in [0, 1], not {}", options.eta));
  }
  if (!(options.beta >= 1)) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("beta must be ≥ 1 (+inf disables early stopping), not {}", options.beta));
  }
  if (options.max_tries == 0 || options.score_last == 0) {
    throw Error(ErrorCode::kInvalidArgument, "max_tries and score_last must be at least 1");
  }
  if (options.recurrences > kMaxRecurrences) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} recurrences is more than the {} one simulation runs (each is kept "
                            "in the result); simulate fewer",
                            options.recurrences, kMaxRecurrences));
  }
}

// What the job costs per epoch at one configuration, and its profiling epoch.
struct BatchPlan {
  double power_limit_w = 0;
  EpochCost epoch;            // at the chosen limit
  EpochCost profiling_epoch;  // the mean over every limit
  bool profiled = false;      // a run of this batch size has profiled it
};

// The replay of one recurring job: the optimizer, the per-batch power limits, the random paths.
class RecurringJob {
 public:
  RecurringJob(const ZeusTrace& trace, const RecurringOptions& options)
      : trace_(trace),
        options_(options),
        max_power_w_(trace.max_power_limit_w()),
        selector_(make_zeus_selector(options.eta)),
        optimizer_(optimizer_options(trace, options)),
        paths_random_(options.seed) {}

  Recurrence recur(std::size_t index, std::vector<RecurringRun>& history) {
    Recurrence recurrence;
    for (std::size_t tries = 0; tries < options_.max_tries; ++tries) {
      const auto run = run_once(index);
      if (!run) continue;  // never started: the optimizer learnt it, ask again
      history.push_back(*run);
      ++recurrence.runs;
      recurrence.energy_j += run->energy_j;
      recurrence.time_s += run->time_s;
      recurrence.cost += run->cost;
      if (run->reached) {
        recurrence.batch_size = run->batch_size;
        recurrence.power_limit_w = run->power_limit_w;
        return recurrence;
      }
    }
    throw Error(ErrorCode::kNotFound,
                fmt::format("{} on {}: recurrence {} did not reach the target {} in {} runs; the "
                            "target looks unreachable",
                            trace_.workload().dataset, trace_.gpu(), index + 1,
                            trace_.workload().target_metric, options_.max_tries));
  }

 private:
  static BatchSizeOptimizerOptions optimizer_options(const ZeusTrace& trace,
                                                     const RecurringOptions& options) {
    BatchSizeOptimizerOptions bso;
    bso.job_id = options.job_id.empty() ? trace.workload().dataset : options.job_id;
    bso.store = options.store;
    bso.batch_sizes = trace.batch_sizes();
    bso.default_batch_size = trace.workload().default_batch_size;
    bso.pruning_rounds = options.pruning_rounds;
    bso.explorations = options.explorations;
    bso.window = options.window;
    bso.beta = options.beta;
    // Its own stream: the paths and the decisions must not share random numbers.
    bso.seed = options.seed ^ kDecisionSeedSalt;
    return bso;
  }

  double cost(double energy_j, double time_s) const {
    return options_.eta * energy_j + (1 - options_.eta) * max_power_w_ * time_s;
  }

  // The batch size's limit as live training finds it: a profile of every limit (one epoch's time
  // and energy each), and the zeus(η) selector's choice.
  BatchPlan& plan_for(std::size_t batch_size) {
    const auto found = plans_.find(batch_size);
    if (found != plans_.end()) return found->second;
    const auto profile = epoch_profile(trace_, batch_size);
    BatchPlan plan;
    plan.power_limit_w = selector_->select(profile).power_limit_w;
    plan.epoch = *trace_.epoch(batch_size, plan.power_limit_w);
    plan.profiling_epoch = profiling_epoch(profile);
    return plans_.emplace(batch_size, plan).first->second;
  }

  // The most whole epochs a run may take: max_epochs, or fewer under the cost limit.
  double epoch_bound(const EpochCost& epoch) const {
    const auto max_epochs = static_cast<double>(trace_.workload().max_epochs);
    const double limit = optimizer_.cost_limit();
    if (!std::isfinite(limit)) return max_epochs;
    return std::min(std::floor(limit / cost(epoch.energy_j(), epoch.time_s)), max_epochs);
  }

  std::optional<RecurringRun> run_once(std::size_t index) {
    const auto batch_size = optimizer_.next_batch_size();
    auto& plan = plan_for(batch_size);
    const auto& paths = trace_.paths(batch_size);
    const auto path =
        paths[std::uniform_int_distribution<std::size_t>(0, paths.size() - 1)(paths_random_)];
    const double bound = epoch_bound(plan.epoch);
    if (bound < 1) {
      optimizer_.observe_not_started(batch_size);
      return std::nullopt;
    }
    RecurringRun run;
    run.recurrence = index;
    run.batch_size = batch_size;
    run.power_limit_w = plan.power_limit_w;
    run.reached = path && *path <= bound;
    run.epochs = run.reached ? *path : bound;
    run.profiled = !plan.profiled;
    plan.profiled = true;
    const double at_limit_epochs = run.profiled ? run.epochs - 1 : run.epochs;
    run.energy_j = at_limit_epochs * plan.epoch.energy_j() +
                   (run.profiled ? plan.profiling_epoch.energy_j() : 0);
    run.time_s =
        at_limit_epochs * plan.epoch.time_s + (run.profiled ? plan.profiling_epoch.time_s : 0);
    run.cost = cost(run.energy_j, run.time_s);
    optimizer_.observe(batch_size, run.cost, run.reached);
    return run;
  }

  const ZeusTrace& trace_;
  RecurringOptions options_;
  double max_power_w_;
  std::unique_ptr<PowerLimitSelector> selector_;
  BatchSizeOptimizer optimizer_;
  std::mt19937_64 paths_random_;
  std::map<std::size_t, BatchPlan> plans_;
};

RecurringSummary summarize(const ZeusTrace& trace, const RecurringResult& result,
                           const RecurringOptions& options) {
  RecurringSummary summary;
  summary.recurrences = result.recurrences.size();
  summary.runs = result.history.size();
  summary.scored = std::min(options.score_last, result.recurrences.size());
  for (auto it = result.recurrences.end() - static_cast<std::ptrdiff_t>(summary.scored);
       it != result.recurrences.end(); ++it) {
    summary.mean_energy_j += it->energy_j;
    summary.mean_time_s += it->time_s;
  }
  summary.mean_energy_j /= static_cast<double>(summary.scored);
  summary.mean_time_s /= static_cast<double>(summary.scored);
  const auto& fallback = result.default_config;
  summary.energy_reduction = 1 - summary.mean_energy_j / fallback.energy_to_accuracy_j;
  summary.time_reduction = 1 - summary.mean_time_s / fallback.time_to_accuracy_s;
  summary.batch_size = result.recurrences.back().batch_size;
  summary.power_limit_w = result.recurrences.back().power_limit_w;
  summary.best = trace.best_config();
  summary.best_energy_reduction =
      1 - summary.best.energy_to_accuracy_j / fallback.energy_to_accuracy_j;
  return summary;
}

}  // namespace

std::size_t default_recurrences(const ZeusTrace& trace) {
  return 2 * trace.batch_sizes().size() * trace.power_limits().size();
}

RecurringResult simulate_recurring(const ZeusTrace& trace, const RecurringOptions& options) {
  check_options(options);
  RecurringResult result;
  result.default_config = trace.default_config();
  const auto recurrences =
      options.recurrences > 0 ? options.recurrences : default_recurrences(trace);
  RecurringJob job(trace, options);
  for (std::size_t i = 0; i < recurrences; ++i) {
    result.recurrences.push_back(job.recur(i, result.history));
    if (options.on_recurrence) options.on_recurrence(i + 1, recurrences);
  }
  result.summary = summarize(trace, result, options);
  return result;
}

}  // namespace chase
