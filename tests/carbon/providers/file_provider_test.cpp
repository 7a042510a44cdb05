// The file provider: replays a CSV around an injected clock.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "carbon/providers/provider_test_util.h"

namespace chase::testing {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FileProviderTest : public ::testing::Test {
 protected:
  std::unique_ptr<CarbonProvider> provider() {
    CarbonProviderOptions o;
    o.file = fixture_path("file", "replay.csv");
    o.clock = clock_;
    return make_carbon_provider("file", o);
  }
  void advance(std::chrono::seconds dt) { clock_->advance(std::chrono::nanoseconds(dt)); }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(fixture_now());
};

TEST_F(FileProviderTest, LatestIsTheRowInForceNow) {
  auto p = provider();
  EXPECT_EQ(p->name(), "file");
  const auto point = p->latest();
  EXPECT_EQ(point.time, at("2026-03-01T12:00:00Z"));
  EXPECT_DOUBLE_EQ(point.g_per_kwh, 240);
  EXPECT_EQ(point.resolution, minutes(30));
  advance(minutes(15));  // 12:35
  EXPECT_DOUBLE_EQ(p->latest().g_per_kwh, 250);
}

TEST_F(FileProviderTest, HistoryStopsAtNow) {
  const auto series = provider()->history(at("2026-03-01T10:00:00Z"), at("2026-03-01T14:00:00Z"));
  EXPECT_THAT(series.values(), ElementsAre(200, 210, 220, 230, 240));
}

TEST_F(FileProviderTest, ForecastIsTheFilesFuture) {
  auto p = provider();
  EXPECT_THAT(p->forecast(hours(1)).values(), ElementsAre(240, 250, 260));
  advance(hours(1));                                                   // 13:20
  EXPECT_THAT(p->forecast(hours(1)).values(), ElementsAre(260, 270));  // the file ends at 14:00
}

TEST_F(FileProviderTest, NowOutsideTheFileIsAClearError) {
  auto p = provider();
  advance(hours(5));
  const auto message = error_message([&] { p->latest(); }, ErrorCode::kUnavailable);
  EXPECT_THAT(message, HasSubstr("replay.csv"));
  EXPECT_THAT(message, HasSubstr("2026-03-01T14:00:00Z"));
  EXPECT_TRUE(p->forecast(hours(1)).empty());
}

TEST_F(FileProviderTest, MissingFileIsAClearError) {
  CarbonProviderOptions o;
  EXPECT_THAT(error_message([&] { make_carbon_provider("file", o); }, ErrorCode::kInvalidArgument),
              HasSubstr("CHASE_CARBON_FILE"));
  o.file = "/nonexistent/chase/carbon.csv";
  try {
    make_carbon_provider("file", o);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/chase/carbon.csv"));
  }
}

}  // namespace
}  // namespace chase::testing
