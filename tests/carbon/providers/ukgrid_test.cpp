// UK National Grid Carbon Intensity API against recorded responses: national and regional
// endpoints, actual-else-forecast, nulls, empty and unordered lists, wrong units.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "carbon/providers/provider_test_util.h"

namespace chase::testing {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kProvider = "ukgrid";
constexpr const char* kRange = "/intensity/2026-03-01T00:00Z/2026-03-01T04:00Z";

class UkGridTest : public ::testing::Test {
 protected:
  CarbonProviderOptions options(const std::string& location = "") {
    auto o = test_options(kProvider, server_, clock_, sleeps_);
    o.location = location;
    return o;
  }
  std::unique_ptr<CarbonProvider> provider(const std::string& location = "") {
    return make_carbon_provider(kProvider, options(location));
  }
  CarbonSeries early_morning(CarbonProvider& p) {
    return p.history(at("2026-03-01T00:00:00Z"), at("2026-03-01T04:00:00Z"));
  }

  ReplayServer server_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(fixture_now());
  SleepRecorder sleeps_;
};

TEST_F(UkGridTest, LatestNationalPrefersTheActualValue) {
  server_.route("/intensity", ok(kProvider, "intensity.json"));
  const auto point = provider()->latest();
  EXPECT_EQ(point.time, at("2026-03-01T12:00:00Z"));
  EXPECT_DOUBLE_EQ(point.g_per_kwh, 175);
  EXPECT_FALSE(point.estimated);
  EXPECT_EQ(point.resolution, minutes(30));
  EXPECT_TRUE(server_.requests()[0].headers.count("authorization") == 0);
}

TEST_F(UkGridTest, LatestWithNoValueIsUnavailable) {
  server_.route("/intensity", ok(kProvider, "intensity_null.json"));
  auto p = provider();
  EXPECT_THAT(error_message([&] { p->latest(); }, ErrorCode::kUnavailable), HasSubstr("no value"));
}

TEST_F(UkGridTest, ForecastUsesForecastValuesWhereActualIsNull) {
  const std::string path = "/intensity/2026-03-01T12:20Z/fw24h";
  server_.route(path, ok(kProvider, "fw24h.json"));
  const auto series = provider()->forecast(hours(3));
  EXPECT_EQ(server_.requests().at(0).path, path);
  EXPECT_EQ(series.start(), at("2026-03-01T12:00:00Z"));
  EXPECT_EQ(series.resolution(), minutes(30));
  // Periods 24..30 (12:00 .. 15:00): forecast 150 + 5 i.
  EXPECT_THAT(series.values(), ElementsAre(270, 275, 280, 285, 290, 295, 300));
}

TEST_F(UkGridTest, ForecastBeyondADayUsesFw48h) {
  server_.route("/intensity/2026-03-01T12:20Z/fw48h", ok(kProvider, "fw24h.json"));
  EXPECT_EQ(provider()->forecast(hours(30)).size(), 12U);
}

TEST_F(UkGridTest, HistoryReadsActualValues) {
  server_.route(kRange, ok(kProvider, "range.json"));
  const auto series = early_morning(*provider());
  EXPECT_THAT(series.values(), ElementsAre(190, 191, 192, 193, 194, 195, 196, 197));
}

TEST_F(UkGridTest, NullPeriodsAreDroppedAndAForecastFillsAMissingActual) {
  server_.route(kRange, ok(kProvider, "range_null.json"));
  auto p = provider();
  const auto series = early_morning(*p);
  EXPECT_THAT(series.values(), ElementsAre(190, 210));
  EXPECT_EQ(series.times()[1], at("2026-03-01T01:00:00Z"));
  EXPECT_EQ(p->last_notes().nulls_dropped, 1U);
}

TEST_F(UkGridTest, EmptyDataIsAnEmptySeries) {
  server_.route(kRange, ok(kProvider, "range_empty.json"));
  EXPECT_TRUE(early_morning(*provider()).empty());
}

TEST_F(UkGridTest, UnorderedAndDuplicatedPeriodsAreRepaired) {
  server_.route(kRange, ok(kProvider, "range_unordered.json"));
  auto p = provider();
  EXPECT_THAT(early_morning(*p).values(), ElementsAre(190, 198, 205));
  EXPECT_TRUE(p->last_notes().reordered);
  EXPECT_EQ(p->last_notes().duplicates_dropped, 1U);
}

TEST_F(UkGridTest, WrongUnitsAreRejected) {
  server_.route(kRange, ok(kProvider, "range_wrong_units.json"));
  auto p = provider();
  const auto message = error_message([&] { early_morning(*p); }, ErrorCode::kParse);
  EXPECT_THAT(message, HasSubstr("lbCO2/MWh"));
  EXPECT_THAT(message, HasSubstr("wrong units"));
}

TEST_F(UkGridTest, ImplausibleValuesAreReportedAsWrongUnits) {
  server_.route(kRange, ReplayResponse{200,
                                       R"({"data":[{"from":"2026-03-01T00:00Z","to":)"
                                       R"("2026-03-01T00:30Z","intensity":{"forecast":190000,)"
                                       R"("actual":null,"index":"high"}}]})",
                                       {},
                                       false});
  auto p = provider();
  EXPECT_THAT(error_message([&] { early_morning(*p); }, ErrorCode::kParse),
              HasSubstr("wrong units"));
}

TEST_F(UkGridTest, RegionalLatestByRegionId) {
  server_.route("/regional/regionid/13", ok(kProvider, "regional_regionid.json"));
  const auto point = provider("regionid:13")->latest();
  EXPECT_DOUBLE_EQ(point.g_per_kwh, 120);
  EXPECT_TRUE(point.estimated);  // regional values are forecasts
}

TEST_F(UkGridTest, RegionalLatestByPostcode) {
  server_.route("/regional/postcode/RG10", ok(kProvider, "regional_postcode.json"));
  EXPECT_DOUBLE_EQ(provider("postcode:RG10")->latest().g_per_kwh, 140);
}

TEST_F(UkGridTest, RegionalForecastReadsTheNestedData) {
  const std::string path = "/regional/intensity/2026-03-01T12:20Z/fw24h/regionid/13";
  server_.route(path, ok(kProvider, "regional_fw24h.json"));
  const auto series = provider("regionid:13")->forecast(hours(2));
  EXPECT_THAT(series.values(), ElementsAre(124, 125, 126, 127, 128));  // 12:00 .. 14:00
}

TEST_F(UkGridTest, RegionalHistoryPath) {
  server_.route("/regional/intensity/2026-03-01T12:00Z/2026-03-01T15:00Z/regionid/13",
                ok(kProvider, "regional_fw24h.json"));
  const auto series =
      provider("regionid:13")->history(at("2026-03-01T12:00:00Z"), at("2026-03-01T15:00:00Z"));
  EXPECT_EQ(series.size(), 6U);
}

TEST_F(UkGridTest, BadLocationsAreRejected) {
  for (const char* location : {"regionid:19", "regionid:0", "regionid:x", "postcode:", "london"}) {
    EXPECT_THAT(error_message([&] { provider(location); }, ErrorCode::kInvalidArgument),
                HasSubstr(location));
  }
}

}  // namespace
}  // namespace chase::testing
