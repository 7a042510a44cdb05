// The batch-size optimiser (docs/ALGORITHMS.md §5): the pruning walk, Thompson sampling, early
// stopping, determinism and rebuilding from a store.
#include "chase/batch_size_optimizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "chase/error.h"
#include "support/errors.h"

namespace chase {
namespace {

// Most misuse is an invalid argument; the message must say what is wrong.
template <typename Action>
std::string error_message(Action action, ErrorCode code = ErrorCode::kInvalidArgument) {
  return testing::error_message(action, code);
}
using ::testing::ElementsAre;
using ::testing::HasSubstr;

BatchSizeOptimizerOptions options_for(std::size_t default_size,
                                      std::vector<std::size_t> sizes = {8, 16, 32, 64, 128, 256}) {
  BatchSizeOptimizerOptions options;
  options.batch_sizes = std::move(sizes);
  options.default_batch_size = default_size;
  return options;
}

struct Step {
  std::size_t expected;
  double cost;
  bool reached;
};

// Feeds each step after checking that the optimizer asks for that batch size.
void walk(BatchSizeOptimizer& optimizer, const std::vector<Step>& steps) {
  for (const auto& step : steps) {
    ASSERT_EQ(optimizer.stage(), BatchSizeStage::kPruning);
    ASSERT_EQ(optimizer.next_batch_size(), step.expected);
    optimizer.observe(step.expected, step.cost, step.reached);
  }
}

TEST(BatchSizePruning, WalksDownThenUpAndRestartsFromTheCheapest) {
  BatchSizeOptimizer optimizer(options_for(64));
  walk(optimizer, {{64, 10, true},
                   {32, 7, true},
                   {16, 11, true},
                   {8, 30, false},  // ends the downward walk
                   {128, 14, true},
                   {256, 40, false},  // ends the round: survivors 16, 32, 64, 128
                   {32, 8, true},     // round 2 starts from the cheapest, 32
                   {16, 13, false},
                   {64, 9, true},
                   {128, 20, false}});
  EXPECT_EQ(optimizer.stage(), BatchSizeStage::kThompsonSampling);
  EXPECT_THAT(optimizer.candidates(), ElementsAre(32, 64));
}

TEST(BatchSizePruning, DefaultAtEitherEndWalksOneDirection) {
  BatchSizeOptimizer largest(options_for(256));
  walk(largest, {{256, 5, true}, {128, 6, true}, {64, 20, false}, {256, 5, true}, {128, 6, true}});
  EXPECT_EQ(largest.stage(), BatchSizeStage::kThompsonSampling);
  EXPECT_THAT(largest.candidates(), ElementsAre(128, 256));

  BatchSizeOptimizer smallest(options_for(8));
  walk(smallest, {{8, 5, true}, {16, 4, true}, {32, 9, false}, {16, 4, true}, {8, 5, true}});
  EXPECT_THAT(smallest.candidates(), ElementsAre(8, 16));
}

TEST(BatchSizePruning, RoundsAreConfigurable) {
  auto options = options_for(32, {16, 32, 64});
  options.pruning_rounds = 1;
  BatchSizeOptimizer one_round(options);
  walk(one_round, {{32, 5, true}, {16, 6, true}, {64, 4, true}});
  EXPECT_EQ(one_round.stage(), BatchSizeStage::kThompsonSampling);

  options.pruning_rounds = 0;
  BatchSizeOptimizer none(options);
  EXPECT_EQ(none.stage(), BatchSizeStage::kThompsonSampling);
  EXPECT_THAT(none.candidates(), ElementsAre(16, 32, 64));
}

TEST(BatchSizePruning, NothingReachingTheTargetIsAClearError) {
  BatchSizeOptimizer optimizer(options_for(32, {16, 32, 64}));
  walk(optimizer, {{32, 5, false}, {64, 5, false}});
  EXPECT_THAT(error_message([&] { optimizer.next_batch_size(); }, ErrorCode::kNotFound),
              HasSubstr("no batch size reached the target"));
}

TEST(BatchSizePruning, AnUnexpectedSizeIsRememberedButDoesNotAdvancePruning) {
  BatchSizeOptimizer optimizer(options_for(32, {16, 32, 64}));
  optimizer.observe(64, 3, true);  // e.g. a concurrent run at another size
  EXPECT_EQ(optimizer.next_batch_size(), 32u);
  EXPECT_EQ(optimizer.history().size(), 1u);
}

// Two arms: 16 is always far cheaper than 32.
BatchSizeOptimizer sampling_stage(BatchSizeOptimizerOptions options) {
  options.batch_sizes = {16, 32};
  options.default_batch_size = 32;
  BatchSizeOptimizer optimizer(std::move(options));
  walk(optimizer, {{32, 100, true}, {16, 10, true}, {16, 11, true}, {32, 101, true}});
  return optimizer;
}

TEST(BatchSizeThompsonSampling, ExploresEachArmThenFavoursTheCheapest) {
  auto options = options_for(32);
  options.explorations = 3;
  auto optimizer = sampling_stage(options);
  ASSERT_EQ(optimizer.stage(), BatchSizeStage::kThompsonSampling);
  // Each arm has 2 rewards; both get a third before sampling.
  std::set<std::size_t> explored;
  for (int i = 0; i < 2; ++i) {
    const auto size = optimizer.next_batch_size();
    explored.insert(size);
    optimizer.observe(size, size == 16 ? 10.5 : 100.5, true);
  }
  EXPECT_THAT(explored, ElementsAre(16, 32));
  std::map<std::size_t, int> chosen;
  for (int i = 0; i < 50; ++i) {
    const auto size = optimizer.next_batch_size();
    ++chosen[size];
    optimizer.observe(size, size == 16 ? 10 + (i % 3) : 100 + (i % 3), true);
  }
  EXPECT_GE(chosen[16], 48);
}

TEST(BatchSizeThompsonSampling, PosteriorFollowsTheConjugateUpdate) {
  auto options = options_for(32);
  options.prior_mean = -50;
  options.prior_precision = 0.5;
  const auto optimizer = sampling_stage(options);
  const auto arms = optimizer.arms();
  ASSERT_EQ(arms.size(), 2u);
  // Arm 16: rewards −10, −11: variance 0.25, τ = 4; λ = 0.5 + 2·4; μ = (0.5·−50 + 4·−21) / λ.
  EXPECT_EQ(arms[0].batch_size, 16u);
  EXPECT_EQ(arms[0].rewards, 2u);
  EXPECT_DOUBLE_EQ(arms[0].precision, 8.5);
  EXPECT_DOUBLE_EQ(arms[0].mean, (0.5 * -50 + 4 * -21) / 8.5);
}

TEST(BatchSizeThompsonSampling, IdenticalRewardsMeanCertainty) {
  auto options = options_for(32, {16, 32});
  options.pruning_rounds = 1;
  options.explorations = 1;
  BatchSizeOptimizer optimizer(options);
  walk(optimizer, {{32, 20, true}, {16, 10, true}});
  const auto arms = optimizer.arms();
  EXPECT_TRUE(std::isinf(arms[0].precision));
  EXPECT_DOUBLE_EQ(arms[0].mean, -10);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(optimizer.next_batch_size(), 16u);
}

TEST(BatchSizeThompsonSampling, WindowKeepsTheLatestRewards) {
  auto options = options_for(32);
  options.window = 1;
  options.explorations = 1;
  auto optimizer = sampling_stage(options);
  optimizer.observe(32, 5, true);  // 32 became cheap (drift): only the latest reward counts
  const auto arms = optimizer.arms();
  EXPECT_EQ(arms[1].rewards, 1u);
  EXPECT_DOUBLE_EQ(arms[1].mean, -5);
  EXPECT_EQ(optimizer.next_batch_size(), 32u);
}

// Two arms of the same mean cost, so every choice is down to the draw.
BatchSizeOptimizer close_arms(std::uint64_t seed) {
  auto options = options_for(32, {16, 32});
  options.seed = seed;
  BatchSizeOptimizer optimizer(std::move(options));
  walk(optimizer, {{32, 10, true}, {16, 11, true}, {32, 12, true}, {16, 9, true}});
  return optimizer;
}

// Feeds `n` decisions of the same costs to both and counts where their choices differ.
int differing_choices(BatchSizeOptimizer& a, BatchSizeOptimizer& b, int n) {
  int differences = 0;
  for (int i = 0; i < n; ++i) {
    const auto size = a.next_batch_size();
    EXPECT_EQ(size, a.next_batch_size()) << "no observation in between: the same answer";
    const auto other = b.next_batch_size();
    differences += size != other;
    a.observe(size, 10 + i % 3, true);
    b.observe(other, 10 + i % 3, true);
  }
  return differences;
}

TEST(BatchSizeOptimizerDeterminism, SameSeedSameChoicesAnotherSeedOthers) {
  auto a = close_arms(7);
  auto b = close_arms(7);
  EXPECT_EQ(differing_choices(a, b, 40), 0);
  auto c = close_arms(7);
  auto d = close_arms(8);
  EXPECT_GT(differing_choices(c, d, 40), 0);
}

TEST(BatchSizeOptimizerStore, ARestartedOptimizerContinuesFromTheStore) {
  auto store = make_memory_batch_size_store();
  auto options = options_for(32, {16, 32});
  options.store = store;
  options.job_id = "nightly";
  auto first = sampling_stage(options);
  first.observe(first.next_batch_size(), 12, true);
  BatchSizeOptimizer restarted(options);
  EXPECT_EQ(restarted.history().size(), first.history().size());
  EXPECT_EQ(restarted.stage(), BatchSizeStage::kThompsonSampling);
  EXPECT_EQ(restarted.next_batch_size(), first.next_batch_size());
  EXPECT_EQ(restarted.cost_limit(), first.cost_limit());
  options.job_id = "another job";
  EXPECT_TRUE(BatchSizeOptimizer(options).history().empty());
}

// A store whose writes fail (a full disk, a lost database connection).
class FailingStore final : public BatchSizeStore {
 public:
  std::vector<BatchSizeObservation> load(const std::string&) const override { return {}; }
  void append(const std::string&, const BatchSizeObservation&) override {
    throw Error(ErrorCode::kIo, "the store is read-only");
  }
};

TEST(BatchSizeOptimizerStore, AFailedWriteLeavesTheOptimizerAsItWas) {
  auto options = options_for(32, {16, 32});
  options.store = std::make_shared<FailingStore>();
  BatchSizeOptimizer optimizer(options);
  EXPECT_THAT(error_message([&] { optimizer.observe(32, 10, true); }, ErrorCode::kIo),
              HasSubstr("read-only"));
  EXPECT_TRUE(optimizer.history().empty());
  EXPECT_EQ(optimizer.next_batch_size(), 32u) << "pruning did not advance";
  EXPECT_TRUE(std::isinf(optimizer.cost_limit()));
}

TEST(BatchSizeEarlyStopping, LimitIsBetaTimesTheCheapestRecurrenceFailuresIncluded) {
  auto options = options_for(32, {16, 32, 64});
  options.beta = 3;
  BatchSizeOptimizer optimizer(options);
  EXPECT_TRUE(std::isinf(optimizer.cost_limit()));
  optimizer.observe(32, 10, true);
  EXPECT_DOUBLE_EQ(optimizer.cost_limit(), 30);
  optimizer.observe(16, 4, false);  // a failed try: the recurrence goes on
  optimizer.observe(64, 5, true);   // recurrence cost 4 + 5 = 9
  EXPECT_DOUBLE_EQ(optimizer.cost_limit(), 27);

  optimizer.observe_not_started(16);  // costs 100 × the limit, not the recurrence
  EXPECT_DOUBLE_EQ(optimizer.history().back().cost, 2700);
  EXPECT_FALSE(optimizer.history().back().started);
  optimizer.observe(32, 8, true);
  EXPECT_DOUBLE_EQ(optimizer.cost_limit(), 24);
}

TEST(BatchSizeEarlyStopping, InfiniteBetaDisablesIt) {
  auto options = options_for(32, {16, 32});
  options.beta = std::numeric_limits<double>::infinity();
  BatchSizeOptimizer optimizer(options);
  optimizer.observe(32, 10, true);
  EXPECT_TRUE(std::isinf(optimizer.cost_limit()));
  EXPECT_THAT(error_message([&] { optimizer.observe_not_started(16); }),
              HasSubstr("finite cost limit"));
}

TEST(BatchSizeOptimizerErrors, BadOptionsAndObservationsSayWhatIsWrong) {
  EXPECT_THAT(error_message([] { BatchSizeOptimizer(options_for(48)); }),
              HasSubstr("default batch size 48 is not one of the feasible sizes 8, 16"));
  EXPECT_THAT(error_message([] { BatchSizeOptimizer(options_for(0, {})); }),
              HasSubstr("feasible batch sizes"));
  auto options = options_for(32);
  options.beta = 0.5;
  EXPECT_THAT(error_message([&] { BatchSizeOptimizer{options}; }), HasSubstr("beta must be ≥ 1"));
  options = options_for(32);
  options.explorations = 0;
  EXPECT_THAT(error_message([&] { BatchSizeOptimizer{options}; }), HasSubstr("explorations"));
  options = options_for(32);
  options.prior_precision = -1;
  EXPECT_THAT(error_message([&] { BatchSizeOptimizer{options}; }), HasSubstr("prior precision"));

  BatchSizeOptimizer optimizer(options_for(32));
  EXPECT_THAT(error_message([&] { optimizer.observe(48, 1, true); }),
              HasSubstr("batch size 48 is not one of"));
  EXPECT_THAT(error_message([&] { optimizer.observe(32, std::nan(""), true); }),
              HasSubstr("finite"));
  EXPECT_TRUE(optimizer.history().empty()) << "rejected observations are not recorded";
}

}  // namespace
}  // namespace chase
