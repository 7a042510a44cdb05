// The just-in-time profiling state machine (docs/ALGORITHMS.md §2): the exact limit changes
// for 5 η values × 4 epoch patterns through the real NVML backend over the fake NVML; exact
// measurements and choices on simulated GPUs in virtual time; saved profiles reused; limits
// restored.
#include "chase/power_limit_optimizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include "chase/error.h"
#include "chase/nvml.h"
#include "chase/simulated_gpu.h"
#include "support/fake_nvml_env.h"

namespace chase {
namespace {

namespace fs = std::filesystem;
using testing::FakeNvmlEnvironment;

// Passes every call through and records each limit change, so a test sees the exact sequence.
class RecordingGpuBackend final : public GpuBackend {
 public:
  explicit RecordingGpuBackend(std::shared_ptr<GpuBackend> inner) : inner_(std::move(inner)) {}
  std::string_view backend_name() const noexcept override { return inner_->backend_name(); }
  const std::vector<GpuInfo>& gpus() const noexcept override { return inner_->gpus(); }
  double energy_j(std::size_t gpu) override { return inner_->energy_j(gpu); }
  double power_w(std::size_t gpu) override { return inner_->power_w(gpu); }
  double power_limit_w(std::size_t gpu) override { return inner_->power_limit_w(gpu); }
  void set_power_limit_w(std::size_t gpu, double watts) override {
    if (refused_ && refused_->gpu == gpu && refused_->watts == watts) {
      throw Error(ErrorCode::kPermissionDenied, "GPU 1 refused the limit");
    }
    inner_->set_power_limit_w(gpu, watts);
    std::lock_guard lock(mutex_);
    changes_.push_back({gpu, watts});
  }

  // From now on `gpu` refuses `watts`, as a GPU whose driver rejects a value would.
  void refuse(std::size_t gpu, double watts) { refused_ = Change{gpu, watts}; }

  // One entry per change that reached every GPU in turn (the optimizer sets all GPUs together).
  std::vector<double> job_limit_changes() const {
    std::lock_guard lock(mutex_);
    const auto n = inner_->gpus().size();
    std::vector<double> limits;
    for (std::size_t i = 0; i + n <= changes_.size(); i += n) {
      for (std::size_t g = 0; g < n; ++g) {
        EXPECT_EQ(changes_[i + g].gpu, g) << "GPUs were not set together";
        EXPECT_EQ(changes_[i + g].watts, changes_[i].watts);
      }
      limits.push_back(changes_[i].watts);
    }
    EXPECT_EQ(changes_.size() % n, 0u) << "a change reached only some GPUs";
    return limits;
  }

 private:
  struct Change {
    std::size_t gpu;
    double watts;
  };
  std::shared_ptr<GpuBackend> inner_;
  std::optional<Change> refused_;
  mutable std::mutex mutex_;
  std::vector<Change> changes_;
};

// Small numbers so sequences stay readable: candidates 300, 200, 100 W; a limit takes 1 + 2 + 3
// steps (set, warm up, profile).
PowerLimitOptimizerOptions small_options(double eta) {
  PowerLimitOptimizerOptions options;
  options.wait_steps = 1;
  options.warmup_steps = 2;
  options.profile_steps = 3;
  options.limit_step_w = 100;
  options.selector = make_zeus_selector(eta);
  return options;
}

// Runs epochs of the given lengths; `each_step` runs after every on_step_begin (the "step").
template <typename StepFn>
void train(PowerLimitOptimizer& optimizer, const std::vector<int>& epoch_lengths,
           StepFn each_step) {
  for (const int steps : epoch_lengths) {
    for (int s = 0; s < steps; ++s) {
      optimizer.on_step_begin();
      each_step();
    }
    optimizer.on_epoch_end();
  }
}

struct EpochPattern {
  const char* name;
  std::vector<int> epoch_lengths;
  std::vector<double> profiling_changes;  // before the final choice
};

// Derived by hand from §2 with wait 1, warmup 2, profile 3 (step numbers from 1):
//   none:     one long epoch: 300 at step 2, 200 at 7, 100 at 12, choice at 17.
//   warmup:   the epoch ends after step 8, while 200 W warms up: back to 300, retry 200.
//   profiling: the epoch ends after step 15, while 100 W is profiled: back to 300, retry 100.
//   twice:    epochs of 9 steps: ends while profiling 200 (step 9) and 100 (step 18).
const std::vector<EpochPattern>& epoch_patterns() {
  static const std::vector<EpochPattern> patterns = {
      {"none", {40}, {300, 200, 100}},
      {"warmup", {8, 40}, {300, 200, 300, 200, 100}},
      {"profiling", {15, 40}, {300, 200, 100, 300, 100}},
      {"twice", {9, 9, 9, 9}, {300, 200, 300, 200, 100, 300, 100}},
  };
  return patterns;
}

// Zeus's choice (docs/ALGORITHMS.md §3), worked out here rather than by the product's selector:
// the least η·E + (1−η)·MaxPower·T with MaxPower = the highest limit × the GPU count; ties go to
// the higher limit.
double zeus_choice(const std::vector<LimitMeasurement>& points, double eta, std::size_t gpus) {
  double highest = 0;
  for (const auto& p : points) highest = std::max(highest, p.power_limit_w);
  const double max_power_w = highest * static_cast<double>(gpus);
  double best_limit = 0;
  double best_cost = std::numeric_limits<double>::infinity();
  for (const auto& p : points) {
    const double cost = eta * p.energy_j + (1 - eta) * max_power_w * p.time_s;
    if (cost < best_cost || (cost == best_cost && p.power_limit_w > best_limit)) {
      best_cost = cost;
      best_limit = p.power_limit_w;
    }
  }
  return best_limit;
}

// A step on the fake's GPUs: long enough for their mJ energy counters to move.
void short_step() { std::this_thread::sleep_for(std::chrono::milliseconds(1)); }

class FakeNvmlOptimizer : public ::testing::Test {
 protected:
  std::shared_ptr<RecordingGpuBackend> open() {
    return std::make_shared<RecordingGpuBackend>(open_nvml());
  }
  FakeNvmlEnvironment nvml_{FakeNvmlEnvironment::standard_config(2)};
};

TEST_F(FakeNvmlOptimizer, ExactLimitSequenceForEveryEtaAndEpochPattern) {
  for (const double eta : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    for (const auto& pattern : epoch_patterns()) {
      SCOPED_TRACE(::testing::Message() << "eta " << eta << ", epochs " << pattern.name);
      auto gpus = open();
      {
        PowerLimitOptimizer optimizer(gpus, small_options(eta));
        EXPECT_EQ(optimizer.candidate_limits(), (std::vector<double>{300, 200, 100}));
        train(optimizer, pattern.epoch_lengths, short_step);
        ASSERT_EQ(optimizer.state(), OptimizerState::kDone);
        ASSERT_TRUE(optimizer.selection().has_value());
        const double chosen = optimizer.selection()->power_limit_w;
        // The choice is the selector's verdict on what was measured (the fake's GPUs do not slow
        // down, so measured times are noise; the choice itself is pinned on simulated GPUs below).
        EXPECT_EQ(chosen, zeus_choice(optimizer.profile()->points(), eta, 2));
        auto expected = pattern.profiling_changes;
        expected.push_back(chosen);
        EXPECT_EQ(gpus->job_limit_changes(), expected);
        EXPECT_EQ(optimizer.current_limit_w(), chosen);
        EXPECT_EQ(nvml_.limit_w(0), chosen);
        EXPECT_EQ(optimizer.profile()->points().size(), 3u);
      }
      EXPECT_EQ(nvml_.limit_w(0), 300) << "the optimizer restores the limits it found";
      EXPECT_EQ(nvml_.limit_w(1), 300);
    }
  }
}

TEST_F(FakeNvmlOptimizer, EpochsTooShortToProfileAbandonAtTheMaximumLimit) {
  auto gpus = open();
  PowerLimitOptimizer optimizer(gpus, small_options(0.5));
  train(optimizer, {5, 5, 5}, [] {});  // a limit needs 6 steps of one epoch
  EXPECT_EQ(optimizer.state(), OptimizerState::kDone);
  EXPECT_FALSE(optimizer.selection().has_value());
  EXPECT_EQ(gpus->job_limit_changes(), (std::vector<double>{300, 300}));
}

TEST_F(FakeNvmlOptimizer, ALostGpuAbandonsProfilingWithoutThrowing) {
  auto gpus = open();
  PowerLimitOptimizer optimizer(gpus, small_options(0.5));
  train(optimizer, {10}, short_step);  // 300 W measured; the epoch ends profiling 200 W
  nvml_.set_lost(1, true);
  EXPECT_NO_THROW(train(optimizer, {10}, short_step));
  EXPECT_EQ(optimizer.state(), OptimizerState::kDone);
  EXPECT_EQ(nvml_.limit_w(0), 300);
}

TEST_F(FakeNvmlOptimizer, AWindowThatMeasuresNoEnergyAbandonsAtOnce) {
  auto config = FakeNvmlEnvironment::standard_config(2);
  for (auto& gpu : config["gpus"]) {
    gpu["idle_power_w"] = 0;  // GPUs drawing nothing: every window measures 0 J
    gpu["load"] = 0;
  }
  nvml_.write_config(config);
  auto gpus = open();
  PowerLimitOptimizer optimizer(gpus, small_options(0.5));
  train(optimizer, {40}, short_step);
  EXPECT_EQ(optimizer.state(), OptimizerState::kDone);
  EXPECT_FALSE(optimizer.selection().has_value());
  EXPECT_EQ(gpus->job_limit_changes(), (std::vector<double>{300, 300}));
}

TEST_F(FakeNvmlOptimizer, ASecondRunLoadsTheSavedProfileAndDoesNotProfile) {
  const auto dir = fs::temp_directory_path() / ("chase_optimizer_" + std::to_string(::getpid()));
  auto options = small_options(1.0);
  options.profile_dir = dir;
  options.job_id = "resnet50 nightly";
  options.batch_size = 256;
  double chosen = 0;
  {
    PowerLimitOptimizer first(open(), options);
    EXPECT_FALSE(first.loaded_saved_profile());
    train(first, {40}, short_step);
    chosen = first.selection()->power_limit_w;
    EXPECT_TRUE(fs::exists(first.profile_path())) << first.profile_path();
    EXPECT_THAT(first.profile_path().filename().string(),
                ::testing::StartsWith("NVIDIA_A40-x2-resnet50_nightly-b256"));
  }
  auto gpus = open();
  {
    PowerLimitOptimizer second(gpus, options);
    EXPECT_TRUE(second.loaded_saved_profile());
    EXPECT_EQ(second.state(), OptimizerState::kDone);
    EXPECT_TRUE(gpus->job_limit_changes().empty()) << "nothing changes before the first step";
    train(second, {40}, [] {});
    EXPECT_EQ(gpus->job_limit_changes(), (std::vector<double>{chosen}));
  }
  auto other_batch = options;
  other_batch.batch_size = 512;  // another key: profiles again
  PowerLimitOptimizer third(open(), other_batch);
  EXPECT_FALSE(third.loaded_saved_profile());
  fs::remove_all(dir);
}

TEST_F(FakeNvmlOptimizer, RejectsGpusWithDifferentConstraintsAndBadSteps) {
  auto config = FakeNvmlEnvironment::standard_config(2);
  config["gpus"][1]["max_limit_w"] = 250;
  nvml_.write_config(config);
  EXPECT_THROW(PowerLimitOptimizer(open(), small_options(0.5)), Error);
  nvml_.write_config(FakeNvmlEnvironment::standard_config(2));
  auto options = small_options(0.5);
  options.limit_step_w = 0;
  EXPECT_THROW(PowerLimitOptimizer(open(), options), Error);
}

TEST_F(FakeNvmlOptimizer, DefaultStepsGiveZeusCandidatesIncludingTheMinimum) {
  PowerLimitOptimizerOptions options;
  options.limit_step_w = 30;  // 300, 270, ..., 120, then the minimum 100 off the grid
  PowerLimitOptimizer optimizer(open(), options);
  EXPECT_EQ(optimizer.candidate_limits(),
            (std::vector<double>{300, 270, 240, 210, 180, 150, 120, 100}));
}

TEST_F(FakeNvmlOptimizer, ARefusedCandidateIsSkippedAndReported) {
  auto gpus = open();
  gpus->refuse(1, 200);
  PowerLimitOptimizer optimizer(gpus, small_options(1.0));
  train(optimizer, {40}, short_step);
  ASSERT_EQ(optimizer.state(), OptimizerState::kDone);
  ASSERT_EQ(optimizer.skipped_limits().size(), 1u);
  EXPECT_EQ(optimizer.skipped_limits()[0].power_limit_w, 200);
  EXPECT_THAT(optimizer.skipped_limits()[0].reason, ::testing::HasSubstr("refused"));
  ASSERT_TRUE(optimizer.profile());
  EXPECT_EQ(optimizer.profile()->points().size(), 2u) << "300 W and 100 W were measured";
  EXPECT_TRUE(optimizer.selection());
  EXPECT_EQ(nvml_.limit_w(0), nvml_.limit_w(1)) << "the GPUs never run different limits";
}

// ---- Simulated GPUs in virtual time: exact measurements and choices ----------------------------

TEST(SimulatedOptimizer, MeasuresTheProfileExactlyAndChoosesWhatTheTrueProfileGives) {
  const auto truth = synthetic_demo_profile();  // 100–300 W
  for (const double eta : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    SCOPED_TRACE(::testing::Message() << "eta " << eta);
    auto clock = std::make_shared<ManualClock>();
    auto sim = make_simulated_gpus(2, truth, clock);
    sim->set_all_busy(true);
    auto options = small_options(eta);
    options.limit_step_w = 25;
    options.clock = clock;
    PowerLimitOptimizer optimizer(sim, options);
    const double samples_per_step = 512;
    train(optimizer, {100},
          [&] { clock->advance(Seconds(samples_per_step / sim->throughput(0))); });
    ASSERT_EQ(optimizer.state(), OptimizerState::kDone);
    // What the profile should be: 3 steps at each limit, both GPUs.
    std::vector<LimitMeasurement> expected;
    for (const double limit : optimizer.candidate_limits()) {
      const double time_s = 3 * samples_per_step / truth.throughput_at(limit);
      expected.push_back({limit, time_s, 2 * truth.power_at(limit) * time_s});
    }
    const auto& measured = optimizer.profile()->points();
    ASSERT_EQ(measured.size(), expected.size());
    for (std::size_t i = 0; i < measured.size(); ++i) {
      EXPECT_EQ(measured[i].power_limit_w, expected[i].power_limit_w);
      EXPECT_NEAR(measured[i].time_s, expected[i].time_s, 1e-6 * expected[i].time_s);
      EXPECT_NEAR(measured[i].energy_j, expected[i].energy_j, 1e-6 * expected[i].energy_j);
    }
    const double want = zeus_choice(expected, eta, 2);
    EXPECT_EQ(optimizer.current_limit_w(), want);
    EXPECT_EQ(sim->power_limit_w(0), want);
  }
}

TEST(SimulatedOptimizer, AChoiceAfterProfilingFollowsTheCarbonIntensity) {
  auto clock = std::make_shared<ManualClock>();
  auto sim = make_simulated_gpus(1, synthetic_demo_profile(), clock);
  sim->set_all_busy(true);
  auto options = small_options(0.5);
  options.limit_step_w = 25;
  options.clock = clock;
  options.selector = make_chase_selector(0.5, 750);
  options.context.carbon_intensity = 300;
  PowerLimitOptimizer optimizer(sim, options);
  train(optimizer, {100}, [&] { clock->advance(Seconds(512 / sim->throughput(0))); });
  ASSERT_EQ(optimizer.state(), OptimizerState::kDone);
  // After profiling a policy chooses again and sets its choice through the same actuator.
  const auto selector = make_chase_selector(0.5, 750);
  const double clean = selector->select(*optimizer.profile(), {0.0}).power_limit_w;
  const double dirty = selector->select(*optimizer.profile(), {3000.0}).power_limit_w;
  optimizer.actuator()->apply(dirty);
  EXPECT_LT(dirty, clean) << "dirtier electricity must not raise the limit";
  EXPECT_EQ(sim->power_limit_w(0), dirty);
}

}  // namespace
}  // namespace chase
