// Selectors on hand-made profiles (every formula of docs/ALGORITHMS.md §3, ties, bad inputs) and,
// when ../shared/data is present, `chase select` on every real Zeus profiling log.
#include "chase/selector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "chase/error.h"
#include "support/process.h"
#include "support/real_data.h"

namespace chase {
namespace {

namespace fs = std::filesystem;

// Three limits with a clear trade-off: 300 W fastest, 200 W least energy, 100 W slow and costly.
LimitProfile trade_off_profile(std::size_t gpus = 1) {
  LimitProfileInfo info;
  info.gpu_count = gpus;
  return LimitProfile({{200, 11, 1500}, {300, 10, 2000}, {100, 20, 1800}}, info);
}

std::vector<double> limits_of(const Selection& selection) {
  std::vector<double> limits;
  for (const auto& c : selection.candidates) limits.push_back(c.power_limit_w);
  return limits;
}

TEST(Selector, CandidatesFollowTheProfileFromTheHighestLimitDown) {
  const auto selection = make_energy_selector()->select(trade_off_profile());
  EXPECT_EQ(limits_of(selection), (std::vector<double>{300, 200, 100}));
  EXPECT_DOUBLE_EQ(selection.candidates[1].avg_power_w, 1500.0 / 11);
}

TEST(Selector, EnergyAndTimePickTheirMinimum) {
  EXPECT_EQ(make_energy_selector()->select(trade_off_profile()).power_limit_w, 200);
  EXPECT_EQ(make_time_selector()->select(trade_off_profile()).power_limit_w, 300);
}

TEST(Selector, ZeusCostWeighsEnergyAgainstMaxPowerTimesTime) {
  // MaxPower = 300 W. η = 0.5: 300 W → 0.5·2000 + 0.5·300·10 = 2500; 200 W → 750 + 1650 = 2400.
  const auto selection = make_zeus_selector(0.5)->select(trade_off_profile());
  EXPECT_DOUBLE_EQ(selection.candidates[0].cost, 2500);
  EXPECT_DOUBLE_EQ(selection.candidates[1].cost, 2400);
  EXPECT_EQ(selection.power_limit_w, 200);
  EXPECT_EQ(make_zeus_selector(0)->select(trade_off_profile()).power_limit_w, 300);
  EXPECT_EQ(make_zeus_selector(1)->select(trade_off_profile()).power_limit_w, 200);
}

TEST(Selector, MaxPowerCountsEveryGpu) {
  // With 4 GPUs MaxPower = 1200 W: time weighs four times more and 300 W wins at η = 0.5
  // (0.5·2000 + 0.5·1200·10 = 7000 against 750 + 6600 = 7350).
  EXPECT_EQ(make_zeus_selector(0.5)->select(trade_off_profile(4)).power_limit_w, 300);
}

TEST(Selector, TiesGoToTheHigherLimit) {
  const LimitProfile flat({{300, 10, 1000}, {250, 10, 1000}, {200, 10, 1000}}, {});
  EXPECT_EQ(make_energy_selector()->select(flat).power_limit_w, 300);
  EXPECT_EQ(make_time_selector()->select(flat).power_limit_w, 300);
  EXPECT_EQ(make_zeus_selector(0.3)->select(flat).power_limit_w, 300);
}

TEST(Selector, SlowdownTakesTheLowestLimitWithinTheFactor) {
  const auto profile = trade_off_profile();  // T: 300 W 10 s, 200 W 11 s, 100 W 20 s
  EXPECT_EQ(make_slowdown_selector(1.0)->select(profile).power_limit_w, 300);
  EXPECT_EQ(make_slowdown_selector(1.1)->select(profile).power_limit_w, 200);  // 11 ≤ 11: inclusive
  EXPECT_EQ(make_slowdown_selector(1.09)->select(profile).power_limit_w, 300);
  EXPECT_EQ(make_slowdown_selector(2.0)->select(profile).power_limit_w, 100);
  EXPECT_DOUBLE_EQ(make_slowdown_selector(2.0)->select(profile).candidates[2].cost, 2.0);
}

TEST(Selector, SlowdownIgnoresAFasterLimitBelowASlowerOne) {
  // Noisy profiles are not monotonic: the lowest limit that fits wins even past a slower one.
  const LimitProfile noisy({{300, 10, 3000}, {250, 12, 2500}, {200, 10.5, 2000}}, {});
  EXPECT_EQ(make_slowdown_selector(1.1)->select(noisy).power_limit_w, 200);
}

TEST(Selector, ChaseCostFollowsTheCarbonIntensity) {
  // cost = [η·P·CI + (1−η)·MaxPower·CImax]·T. At η = 0.5, CImax = 750, MaxPower = 300 W:
  //   clean (CI = 0): only time counts → 300 W; dirty (CI = 3000): power counts more → 200 W.
  const auto chase = make_chase_selector(0.5, 750);
  const auto profile = trade_off_profile();
  EXPECT_EQ(chase->select(profile, {0.0}).power_limit_w, 300);
  const auto dirty = chase->select(profile, {3000.0});
  EXPECT_EQ(dirty.power_limit_w, 200);
  EXPECT_DOUBLE_EQ(dirty.candidates[1].cost, (0.5 * (1500.0 / 11) * 3000 + 0.5 * 300 * 750) * 11);
  EXPECT_THROW(chase->select(profile), Error);  // no intensity given
}

TEST(Selector, BadParametersAreClearErrors) {
  EXPECT_THROW(make_zeus_selector(-0.1), Error);
  EXPECT_THROW(make_zeus_selector(1.5), Error);
  EXPECT_THROW(make_zeus_selector(std::nan("")), Error);
  EXPECT_THROW(make_slowdown_selector(0.9), Error);
  EXPECT_THROW(make_slowdown_selector(std::nan("")), Error);
  EXPECT_THROW(make_chase_selector(0.5, 0), Error);
  try {
    make_slowdown_selector(0.5);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(e.what(), ::testing::HasSubstr("0.5"));
  }
}

// ---- `chase select` on the real Zeus profiling logs
// ----------------------------------------------

fs::path zeus_profiles_dir() {
  const char* env = std::getenv("CHASE_DATA_DIR");
  return fs::path(env ? env : CHASE_DEFAULT_DATA_DIR) / "zeus-profiles";
}

struct Expected {
  std::vector<int> zeus;      // η = 0, 0.25, 0.5, 0.75, 1
  std::vector<int> slowdown;  // f = 1.05, 1.1, 1.2
  int energy;
  int time;
};

// Computed independently of chase, with a few lines of Python over the same files (parse the CSV,
// sum gpuN_energy, MaxPower = max limit × GPU count, apply §3's formulas, ties → higher limit).
const std::map<std::string, Expected>& expected_selections() {
  static const std::map<std::string, Expected> expected = {
      {"A40+bert-base-uncased+gpu0.csv", {{275, 275, 275, 200, 200}, {275, 250, 200}, 200, 275}},
      {"A40+resnet18+gpu0,1,2,3.csv", {{275, 275, 300, 300, 100}, {275, 125, 100}, 100, 275}},
      {"A40+resnet18+gpu0.csv", {{175, 175, 175, 175, 175}, {175, 175, 150}, 175, 175}},
      {"A40+resnet50+gpu0,1,2,3.csv", {{150, 150, 150, 100, 100}, {100, 100, 100}, 100, 150}},
      {"A40+resnet50+gpu0.csv", {{300, 225, 200, 200, 175}, {200, 200, 175}, 175, 300}},
      {"A40+shufflenetv2+gpu0.csv", {{300, 300, 150, 150, 150}, {200, 150, 150}, 150, 300}},
      {"V100+bert-base-uncased+gpu0.csv", {{250, 250, 200, 150, 125}, {250, 200, 200}, 125, 250}},
      {"V100+resnet18+gpu0,1.csv", {{250, 100, 100, 100, 100}, {100, 100, 100}, 100, 250}},
      {"V100+resnet18+gpu0.csv", {{250, 150, 150, 150, 125}, {150, 150, 125}, 125, 250}},
      {"V100+resnet50+gpu0,1.csv", {{250, 250, 175, 150, 125}, {225, 175, 150}, 125, 250}},
      {"V100+resnet50+gpu0.csv", {{250, 250, 175, 175, 150}, {225, 200, 175}, 150, 250}},
      {"V100+shufflenetv2+gpu0.csv", {{200, 200, 100, 100, 100}, {150, 125, 100}, 100, 200}},
  };
  return expected;
}

double selected_limit(const fs::path& profile, std::vector<std::string> selector_args) {
  std::vector<std::string> args = {CHASE_CLI_PATH, "select", "--json", "--profile",
                                   profile.string()};
  args.insert(args.end(), selector_args.begin(), selector_args.end());
  const auto r = testing::run_process(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return -1;
  return nlohmann::json::parse(r.out)["power_limit_w"].get<double>();
}

TEST(SelectRealProfiles, EveryZeusLogGivesTheLimitsOfTheFormulas) {
  const auto dir = zeus_profiles_dir();
  CHASE_SKIP_UNLESS_REAL_DATA(dir);
  const std::vector<std::string> etas = {"0", "0.25", "0.5", "0.75", "1"};
  const std::vector<std::string> factors = {"1.05", "1.1", "1.2"};
  for (const auto& [file, expected] : expected_selections()) {
    SCOPED_TRACE(file);
    const auto path = dir / file;
    ASSERT_TRUE(fs::exists(path));
    for (std::size_t i = 0; i < etas.size(); ++i) {
      EXPECT_EQ(selected_limit(path, {"--selector", "zeus", "--eta", etas[i]}), expected.zeus[i])
          << "eta " << etas[i];
    }
    for (std::size_t i = 0; i < factors.size(); ++i) {
      EXPECT_EQ(selected_limit(path, {"--selector", "slowdown", "--factor", factors[i]}),
                expected.slowdown[i])
          << "factor " << factors[i];
    }
    EXPECT_EQ(selected_limit(path, {"--selector", "energy"}), expected.energy);
    EXPECT_EQ(selected_limit(path, {"--selector", "time"}), expected.time);
  }
}

}  // namespace
}  // namespace chase
