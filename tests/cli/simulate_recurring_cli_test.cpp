// End-to-end tests of `chase simulate recurring`: the real binary on a small hand-made Zeus trace.
// The table is pinned by a golden file (CHASE_UPDATE_GOLDEN=1 rewrites it); the JSON by its keys
// and the numbers the trace fixes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/golden.h"
#include "support/process.h"
#include "support/small_zeus_trace.h"

namespace chase {
namespace {

using testing::expect_matches_golden;
using ::testing::HasSubstr;
using testing::ProcessResult;

class SimulateRecurringCli : public testing::SmallZeusTrace {
 protected:
  ProcessResult chase(std::vector<std::string> args) const {
    args.insert(args.begin(), {CHASE_CLI_PATH, "simulate", "recurring"});
    return testing::run_process(args);
  }
  std::vector<std::string> small_trace() const {
    return {"--trace-dir", dir_.string(), "--gpu", "v100", "--workload", "imagenet"};
  }
};

TEST_F(SimulateRecurringCli, TableMatchesGolden) {
  auto args = small_trace();
  args.insert(args.end(), {"--seed", "2"});
  const auto r = chase(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_matches_golden(r.out, "simulate_recurring.txt");
}

TEST_F(SimulateRecurringCli, JsonHasTheDefaultEveryRunAndTheSummary) {
  auto args = small_trace();
  args.insert(args.end(), {"--json", "--recurrences", "20", "--eta", "0.5", "--beta", "2"});
  const auto r = chase(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["default"]["energy_j"], 240000);  // 12 epochs × 100 s × 200 W
  EXPECT_EQ(doc["default"]["time_s"], 1200);
  ASSERT_GE(doc["history"].size(), 20u);
  for (const auto& run : doc["history"]) {
    for (const char* key : {"batch_size", "power_limit_w", "energy_j", "time_s", "reached"}) {
      EXPECT_TRUE(run.contains(key)) << key;
    }
  }
  EXPECT_EQ(doc["summary"]["recurrences"], 20);
  EXPECT_EQ(doc["summary"]["scored_recurrences"], 10);
  EXPECT_TRUE(doc["summary"]["converged"].contains("batch_size"));
  EXPECT_NEAR(doc["summary"]["best_possible_energy_reduction_pct"].get<double>(), 16.0, 1e-9);
}

TEST_F(SimulateRecurringCli, JobParametersCanBeOverridden) {
  auto args = small_trace();
  // b0 = 512 (20 and 22 epochs at 250 W: 60 s, 240 W); max_epochs 25 keeps it converging.
  args.insert(args.end(), {"--json", "--default-batch-size", "512", "--max-epochs", "25"});
  auto r = chase(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["default"]["batch_size"], 512);
  EXPECT_EQ(doc["default"]["energy_j"], 21 * 60 * 240);
  EXPECT_EQ(doc["history"][0]["batch_size"], 512) << "pruning starts at the given default";

  args = small_trace();
  args.insert(args.end(), {"--json", "--target", "0.70"});
  r = chase(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["default"]["energy_j"], 30 * 100 * 200) << "the 0.70 target's one run: 30 epochs";
  for (const auto& run : doc["history"]) EXPECT_EQ(run["batch_size"], 256);

  args = small_trace();
  args.insert(args.end(), {"--target", "0.9"});
  r = chase(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no v100 data for imagenet at target 0.9"));
}

TEST_F(SimulateRecurringCli, BadInputIsAClearErrorNotACrash) {
  auto missing = small_trace();
  missing[1] = (dir_ / "nowhere").string();
  auto r = chase(missing);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("summary_train.csv not found"));

  auto unknown = small_trace();
  unknown[5] = "mnist";
  r = chase(unknown);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("unknown workload 'mnist'"));

  auto bad_eta = small_trace();
  bad_eta.insert(bad_eta.end(), {"--eta", "2"});
  r = chase(bad_eta);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--eta: '2' is not a finite number in [0, 1]"));

  // Neither --trace-dir nor CHASE_DATA_DIR: say which to give.
  r = testing::run_process({"/usr/bin/env", "-u", "CHASE_DATA_DIR", CHASE_CLI_PATH, "simulate",
                            "recurring", "--gpu", "v100", "--workload", "imagenet"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("give --trace-dir (the zeus-trace folder) or set CHASE_DATA_DIR"));

  r = chase({"--trace-dir", dir_.string(), "--gpu", "h100", "--workload", "imagenet"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("h100"));
}

// Zero used to mean "the default" for --recurrences, --max-epochs and --default-batch-size, and
// --target ≤ 0 or NaN silently took the artifact's target while inf was blamed on the trace file.
// Each is now checked where it enters, and the default is spelled by leaving the option out.
TEST_F(SimulateRecurringCli, NumericOptionsAreCheckedWhereTheyEnter) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--target", "0"}, "--target: '0' is not a finite number in (0, 1e+06]"},
      {{"--target", "-0.65"}, "--target: '-0.65' is not a finite number in (0, 1e+06]"},
      {{"--target", "nan"}, "--target: 'nan' is not a finite number"},
      {{"--target", "inf"}, "--target: 'inf' is not a finite number"},
      {{"--recurrences", "0"}, "--recurrences: '0' is not a whole number from 1 to 1000000"},
      {{"--recurrences", "-1"}, "--recurrences: '-1' is not a whole number"},
      {{"--recurrences", "1e3"}, "--recurrences: '1e3' is not a whole number"},
      {{"--max-epochs", "0"}, "--max-epochs: '0' is not a whole number from 1 to 100000"},
      {{"--default-batch-size", "0"}, "--default-batch-size: '0' is not a whole number from 1"},
      {{"--default-batch-size", "-1"}, "--default-batch-size: '-1' is not a whole number"},
      {{"--window", "0"}, "--window: '0' is not a whole number from 1"},
      {{"--explorations", "0"}, "--explorations: '0' is not a whole number from 1 to 1000"},
      {{"--beta", "0.5"}, "--beta: '0.5' is not a number ≥ 1, or inf"},
      {{"--beta", "nan"}, "--beta: 'nan' is not a number ≥ 1, or inf"},
      {{"--seed", "-1"}, "--seed: '-1' is not a whole number"},
  };
  for (const auto& [options, message] : cases) {
    auto args = small_trace();
    args.insert(args.end(), options.begin(), options.end());
    const auto r = chase(args);
    EXPECT_EQ(r.exit_code, 2) << options[1];
    EXPECT_THAT(r.err, HasSubstr(message));
  }
  // inf switches early stopping off; "010" is ten (decimal), not octal eight.
  auto args = small_trace();
  args.insert(args.end(), {"--json", "--beta", "inf", "--recurrences", "010"});
  const auto r = chase(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["summary"]["recurrences"], 10);
}

}  // namespace
}  // namespace chase
