// The batch-size optimiser of recurring jobs (contract: chase/batch_size_optimizer.h).
#include "chase/batch_size_optimizer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <random>

#include "chase/error.h"

namespace chase {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();
// A run that early stopping rules out before it starts is reported as this many times the limit,
// so the bandit learns that the size is far too expensive (the Zeus artifact's choice).
constexpr double kNotStartedPenalty = 100;

class MemoryBatchSizeStore final : public BatchSizeStore {
 public:
  std::vector<BatchSizeObservation> load(const std::string& job_id) const override {
    std::lock_guard lock(mutex_);
    const auto it = jobs_.find(job_id);
    return it == jobs_.end() ? std::vector<BatchSizeObservation>{} : it->second;
  }
  void append(const std::string& job_id, const BatchSizeObservation& observation) override {
    std::lock_guard lock(mutex_);
    jobs_[job_id].push_back(observation);
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<BatchSizeObservation>> jobs_;
};

// SplitMix64: spreads (seed, decision number) over the generator's whole seed space, so
// neighbouring decisions draw unrelated numbers.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void check_options(BatchSizeOptimizerOptions& options) {
  auto& sizes = options.batch_sizes;
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  if (sizes.empty() || sizes.front() == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "the batch-size optimizer needs the job's feasible batch sizes (positive)");
  }
  if (!std::binary_search(sizes.begin(), sizes.end(), options.default_batch_size)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the default batch size {} is not one of the feasible sizes {}",
                            options.default_batch_size, fmt::join(sizes, ", ")));
  }
  if (options.explorations == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "explorations must be at least 1: an arm is sampled only once it has a reward");
  }
  if (!(options.beta >= 1)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the early-stopping factor beta must be ≥ 1 (+inf disables early "
                            "stopping), not {}",
                            options.beta));
  }
  if (!(options.prior_precision >= 0) || !std::isfinite(options.prior_precision) ||
      !std::isfinite(options.prior_mean)) {
    throw Error(ErrorCode::kInvalidArgument,
                "the prior mean must be finite and the prior precision finite and ≥ 0");
  }
  if (!options.store) options.store = make_memory_batch_size_store();
}

// The pruning stage as a state machine fed with observations in order (so it can be replayed
// from a store): which size it expects next, and the survivors once every round is over.
class PruningWalk {
 public:
  PruningWalk(std::vector<std::size_t> sizes, std::size_t default_size, std::size_t rounds)
      : sizes_(std::move(sizes)), default_(default_size), rounds_(rounds) {
    if (rounds_ == 0) {
      done_ = true;
    } else {
      start_round();
    }
  }

  bool done() const noexcept { return done_; }
  std::optional<std::size_t> expected() const {
    if (done_) return std::nullopt;
    return order_[position_];
  }
  const std::vector<std::size_t>& sizes() const noexcept { return sizes_; }

  void report(double cost, bool reached) {
    if (reached) {
      good_.push_back(order_[position_]);
      if (cost < best_cost_) {
        best_cost_ = cost;
        default_ = order_[position_];
      }
      ++position_;
    } else {
      // A failure ends this direction: from downwards on to upwards, from upwards on to the end.
      position_ = position_ < up_begin_ ? up_begin_ : order_.size();
    }
    if (position_ >= order_.size()) end_round();
  }

 private:
  void start_round() {
    // Down from the default (itself first), then up from the next larger size.
    const auto at = std::find(sizes_.begin(), sizes_.end(), default_);
    order_.assign(std::make_reverse_iterator(at + 1), sizes_.rend());
    up_begin_ = order_.size();
    order_.insert(order_.end(), at + 1, sizes_.end());
    position_ = 0;
    good_.clear();
    best_cost_ = kInfinity;
  }

  void end_round() {
    std::sort(good_.begin(), good_.end());
    sizes_ = good_;
    ++round_;
    if (round_ >= rounds_ || sizes_.empty()) {
      done_ = true;
    } else {
      start_round();
    }
  }

  std::vector<std::size_t> sizes_;
  std::size_t default_;
  std::size_t rounds_;
  std::size_t round_ = 0;
  bool done_ = false;
  std::vector<std::size_t> order_;
  std::size_t up_begin_ = 0;
  std::size_t position_ = 0;
  std::vector<std::size_t> good_;
  double best_cost_ = kInfinity;
};

}  // namespace

std::shared_ptr<BatchSizeStore> make_memory_batch_size_store() {
  return std::make_shared<MemoryBatchSizeStore>();
}

class BatchSizeOptimizer::Impl {
 public:
  explicit Impl(BatchSizeOptimizerOptions options)
      : options_((check_options(options), std::move(options))),
        pruning_(options_.batch_sizes, options_.default_batch_size, options_.pruning_rounds) {
    for (const auto& observation : options_.store->load(options_.job_id)) apply(observation);
  }

  std::size_t next_batch_size() const {
    if (const auto expected = pruning_.expected()) return *expected;
    const auto& arms = pruning_.sizes();
    if (arms.empty()) {
      throw Error(ErrorCode::kNotFound,
                  fmt::format("job '{}': no batch size reached the target during pruning; the "
                              "target is probably unreachable — check it, or the feasible sizes",
                              options_.job_id));
    }
    std::mt19937_64 random(mix(options_.seed ^ mix(history_.size())));
    if (const auto unexplored = arm_to_explore(arms, random)) return *unexplored;
    return sampled_best(arms, random);
  }

  void observe(std::size_t batch_size, double cost, bool reached) {
    check_known(batch_size);
    if (!std::isfinite(cost) || cost < 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("job '{}': the cost of a run must be finite and ≥ 0, not {}",
                              options_.job_id, cost));
    }
    record({batch_size, cost, reached, true});
  }

  void observe_not_started(std::size_t batch_size) {
    check_known(batch_size);
    if (!std::isfinite(cost_limit())) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("job '{}': a run can be ruled out only by a finite cost limit, and "
                              "there is none yet",
                              options_.job_id));
    }
    record({batch_size, kNotStartedPenalty * cost_limit(), false, false});
  }

  void catch_up(const std::vector<BatchSizeObservation>& appended) {
    for (const auto& observation : appended) apply(observation);
  }

  double cost_limit() const noexcept {
    if (!std::isfinite(cheapest_recurrence_)) return kInfinity;
    return options_.beta * cheapest_recurrence_;
  }

  BatchSizeStage stage() const noexcept {
    return pruning_.done() ? BatchSizeStage::kThompsonSampling : BatchSizeStage::kPruning;
  }
  std::vector<std::size_t> candidates() const { return pruning_.sizes(); }

  std::vector<BatchSizeArm> arms() const {
    std::vector<BatchSizeArm> arms;
    if (!pruning_.done()) return arms;
    for (const auto size : pruning_.sizes()) arms.push_back(posterior(size));
    return arms;
  }

  const std::vector<BatchSizeObservation>& history() const noexcept { return history_; }
  const BatchSizeOptimizerOptions& options() const noexcept { return options_; }

 private:
  void check_known(std::size_t batch_size) const {
    const auto& sizes = options_.batch_sizes;
    if (!std::binary_search(sizes.begin(), sizes.end(), batch_size)) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("job '{}': batch size {} is not one of the feasible sizes {}",
                              options_.job_id, batch_size, fmt::join(sizes, ", ")));
    }
  }

  // Stored first, so a store that fails leaves the optimizer as it was.
  void record(const BatchSizeObservation& observation) {
    options_.store->append(options_.job_id, observation);
    apply(observation);
  }

  void apply(const BatchSizeObservation& observation) {
    history_.push_back(observation);
    if (pruning_.expected() == observation.batch_size) {
      pruning_.report(observation.cost, observation.reached);
    }
    if (observation.started) recurrence_cost_ += observation.cost;
    if (observation.reached) {
      cheapest_recurrence_ = std::min(cheapest_recurrence_, recurrence_cost_);
      recurrence_cost_ = 0;
    }
  }

  // The arm's latest rewards (−cost), oldest first, at most `window` of them when window > 0.
  std::vector<double> rewards(std::size_t batch_size) const {
    std::vector<double> rewards;
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
      if (it->batch_size != batch_size) continue;
      rewards.push_back(-it->cost);
      if (options_.window > 0 && rewards.size() == options_.window) break;
    }
    std::reverse(rewards.begin(), rewards.end());
    return rewards;
  }

  BatchSizeArm posterior(std::size_t batch_size) const {
    const auto r = rewards(batch_size);
    BatchSizeArm arm{batch_size, r.size(), options_.prior_mean, options_.prior_precision};
    if (r.empty()) return arm;
    const double n = static_cast<double>(r.size());
    double sum = 0;
    for (const double x : r) sum += x;
    const double mean = sum / n;
    double squares = 0;
    for (const double x : r) squares += (x - mean) * (x - mean);
    const double variance = squares / n;
    if (variance == 0) {  // identical rewards: the arm is exactly its mean
      arm.mean = mean;
      arm.precision = kInfinity;
      return arm;
    }
    const double reward_precision = 1 / variance;
    arm.precision = options_.prior_precision + n * reward_precision;
    arm.mean =
        (options_.prior_precision * options_.prior_mean + reward_precision * sum) / arm.precision;
    return arm;
  }

  std::optional<std::size_t> arm_to_explore(const std::vector<std::size_t>& arms,
                                            std::mt19937_64& random) const {
    auto order = arms;
    std::shuffle(order.begin(), order.end(), random);
    for (const auto size : order) {
      if (rewards(size).size() < options_.explorations) return size;
    }
    return std::nullopt;
  }

  std::size_t sampled_best(const std::vector<std::size_t>& arms, std::mt19937_64& random) const {
    std::size_t best = arms.front();
    double best_sample = -kInfinity;
    for (const auto size : arms) {
      const auto arm = posterior(size);
      double sample = arm.mean;
      if (std::isfinite(arm.precision)) {
        sample = std::normal_distribution<double>(arm.mean, 1 / std::sqrt(arm.precision))(random);
      }
      if (sample > best_sample) {
        best_sample = sample;
        best = size;
      }
    }
    return best;
  }

  BatchSizeOptimizerOptions options_;
  PruningWalk pruning_;
  std::vector<BatchSizeObservation> history_;
  double recurrence_cost_ = 0;
  double cheapest_recurrence_ = kInfinity;
};

BatchSizeOptimizer::BatchSizeOptimizer(BatchSizeOptimizerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
BatchSizeOptimizer::~BatchSizeOptimizer() = default;
BatchSizeOptimizer::BatchSizeOptimizer(BatchSizeOptimizer&&) noexcept = default;
BatchSizeOptimizer& BatchSizeOptimizer::operator=(BatchSizeOptimizer&&) noexcept = default;

std::size_t BatchSizeOptimizer::next_batch_size() const { return impl_->next_batch_size(); }
void BatchSizeOptimizer::observe(std::size_t batch_size, double cost, bool reached) {
  impl_->observe(batch_size, cost, reached);
}
void BatchSizeOptimizer::observe_not_started(std::size_t batch_size) {
  impl_->observe_not_started(batch_size);
}
void BatchSizeOptimizer::catch_up(const std::vector<BatchSizeObservation>& appended) {
  impl_->catch_up(appended);
}
double BatchSizeOptimizer::cost_limit() const noexcept { return impl_->cost_limit(); }
BatchSizeStage BatchSizeOptimizer::stage() const noexcept { return impl_->stage(); }
std::vector<std::size_t> BatchSizeOptimizer::candidates() const { return impl_->candidates(); }
std::vector<BatchSizeArm> BatchSizeOptimizer::arms() const { return impl_->arms(); }
const std::vector<BatchSizeObservation>& BatchSizeOptimizer::history() const noexcept {
  return impl_->history();
}
const BatchSizeOptimizerOptions& BatchSizeOptimizer::options() const noexcept {
  return impl_->options();
}

}  // namespace chase
