// LimitPolicy clauses the first suite leaves open: where CI_max comes from when it is not given (a
// forecast holding no past → its highest value; no data at begin() → the published 750; decide()
// without begin()), and a carbon signal whose provider throws something other than chase::Error,
// which must turn into "limit kept", never an exception out of the policy.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>
#include <stdexcept>

#include "chase/carbon_provider.h"
#include "chase/error.h"
#include "chase/limit_policy.h"

namespace chase {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

const UtcTime kStart = *parse_utc_time("2026-01-01T00:00:00Z");

// 300 W: 100 s, 20 kJ; 200 W: 120 s, 18 kJ; 100 W: 200 s, 20 kJ (one work unit).
const LimitProfile& profile() {
  static const LimitProfile kProfile({{300, 100, 20000}, {200, 120, 18000}, {100, 200, 20000}}, {});
  return kProfile;
}

JobProgress job() {
  JobProgress progress;
  progress.start = kStart;
  progress.work_total = 10;
  progress.unit = "epochs";
  return progress;
}

// A provider whose forecast holds only the future (as providers' forecasts do), and which can be
// made to throw a std::runtime_error — not a chase::Error — from every call.
class FutureOnlyProvider final : public CarbonProvider {
 public:
  std::string_view name() const noexcept override { return "future-only"; }
  CarbonPoint latest() override {
    throw_if_broken();
    return CarbonPoint{kStart, 300, 1h, false};
  }
  CarbonSeries history(UtcTime, UtcTime) override {
    throw_if_broken();
    return {};
  }
  CarbonSeries forecast(std::chrono::seconds) override {
    throw_if_broken();
    return CarbonSeries({kStart, kStart + 1h, kStart + 2h, kStart + 3h}, {300, 640, 200, 100}, 1h,
                        "future");
  }
  void set_broken(bool broken) {
    std::lock_guard lock(mutex_);
    broken_ = broken;
  }

 private:
  void throw_if_broken() {
    std::lock_guard lock(mutex_);
    if (broken_) throw std::runtime_error("future-only: the connection pool is gone");
  }
  std::mutex mutex_;
  bool broken_ = false;
};

class LimitPolicyContract : public ::testing::Test {
 protected:
  std::shared_ptr<CarbonSignal> make_signal() {
    CarbonSignalOptions options;
    options.clock = clock_;
    options.horizon = 4h;
    return std::make_shared<CarbonSignal>(provider_, options);
  }
  LimitDecision decide(LimitPolicy& policy) {
    return policy.decide({clock_->utc_now(), &profile(), 300, job()});
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(kStart);
  std::shared_ptr<FutureOnlyProvider> provider_ = std::make_shared<FutureOnlyProvider>();
};

TEST_F(LimitPolicyContract, CiMaxOfAForecastWithoutPastIsItsHighestValue) {
  auto carbon = make_signal();
  ASSERT_TRUE(carbon->refresh());
  auto policy = make_limit_policy(ChaseOptions{.eta = 0.5}, 30min, carbon);
  policy->begin(kStart);
  EXPECT_EQ(policy->enter_period(kStart), 300);
  EXPECT_THAT(decide(*policy).reason, HasSubstr("ci_max=640)"));
}

TEST_F(LimitPolicyContract, CiMaxIsChosenByDecideWhenBeginWasNotCalled) {
  auto carbon = make_signal();
  ASSERT_TRUE(carbon->refresh());
  auto policy = make_limit_policy(ChaseOptions{.eta = 0.5}, 30min, carbon);
  policy->enter_period(kStart);
  EXPECT_THAT(decide(*policy).reason, HasSubstr("ci_max=640)"));
}

TEST_F(LimitPolicyContract, CiMaxIsThePublished750WhenTheSignalHasNoDataAtBegin) {
  provider_->set_broken(true);
  auto carbon = make_signal();
  EXPECT_FALSE(carbon->refresh());
  auto policy = make_limit_policy(ChaseOptions{.eta = 0.5}, 30min, carbon);
  EXPECT_NO_THROW(policy->begin(kStart));
  // The provider comes back: the intensity is known again, CI_max stays what begin() chose.
  provider_->set_broken(false);
  ASSERT_TRUE(carbon->refresh());
  EXPECT_EQ(policy->enter_period(kStart), 300);
  EXPECT_THAT(decide(*policy).reason, HasSubstr("ci_max=750)"));
}

TEST_F(LimitPolicyContract, AGivenCiMaxIsKept) {
  auto carbon = make_signal();
  ASSERT_TRUE(carbon->refresh());
  auto policy =
      make_limit_policy(ChaseOptions{.eta = 0.5, .max_carbon_intensity = 555}, 30min, carbon);
  policy->begin(kStart);
  policy->enter_period(kStart);
  EXPECT_THAT(decide(*policy).reason, HasSubstr("ci_max=555)"));
}

// After a good refresh the provider breaks and the signal goes stale; later the signal has no
// data at all (a fresh one). Either way no policy throws, and those that need an intensity keep
// the limit.
TEST_F(LimitPolicyContract, AThrowingProviderNeverThrowsOutOfAPolicy) {
  provider_->set_broken(true);
  for (const PolicyOptions& options :
       {PolicyOptions{ChaseOptions{.eta = 0.5}}, PolicyOptions{PlannerOptions{}}}) {
    auto policy = make_limit_policy(options, 30min, make_signal());
    SCOPED_TRACE(policy_label(options));
    EXPECT_NO_THROW(policy->begin(kStart));
    std::optional<double> intensity;
    EXPECT_NO_THROW(intensity = policy->enter_period(kStart));
    EXPECT_FALSE(intensity);
    LimitDecision decision;
    EXPECT_NO_THROW(decision = decide(*policy));
    EXPECT_FALSE(decision.limit_w);
    EXPECT_THAT(decision.reason, HasSubstr("limit kept"));
  }
}

TEST_F(LimitPolicyContract, AStaleSignalStillDrivesThePolicy) {
  auto carbon = make_signal();
  ASSERT_TRUE(carbon->refresh());
  provider_->set_broken(true);
  clock_->advance(std::chrono::nanoseconds(1h));  // refresh due: it fails, the data is kept
  auto policy = make_limit_policy(ChaseOptions{.eta = 0.5}, 30min, carbon);
  EXPECT_EQ(policy->enter_period(clock_->utc_now()), 640);
  EXPECT_TRUE(carbon->status().stale);
  EXPECT_TRUE(decide(*policy).limit_w);
}

}  // namespace
}  // namespace chase
