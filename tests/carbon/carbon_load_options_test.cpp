// The loader's options (chase/carbon.h): exogenous columns, duplicates, gaps and their report,
// fill, resampling, regular(), and errors naming file, line and column.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "chase/carbon.h"
#include "chase/error.h"
#include "support/errors.h"
#include "support/real_data.h"
#include "support/temp_csv.h"

namespace chase {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using ::testing::AllOf;
using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

UtcTime at(const char* text) {
  const auto time = parse_utc_time(text);
  EXPECT_TRUE(time) << text;
  return time.value_or(UtcTime{});
}

using chase::testing::TempCsv;

using chase::testing::error_message;

// DACF-like: an unnamed index, realised generation (coal) and two day-ahead forecast columns.
constexpr const char* kDacfLike =
    ",UTC time,carbon_intensity,coal,forecast_avg_wind_speed_wMean,avg_solar_production_forecast\n"
    "0,2021-01-01 00:00:00,100,5,3.5,10\n"
    "1,2021-01-01 01:00:00,110,6,3.0,20\n"
    "2,2021-01-01 02:00:00,120,7,2.5,30\n";

TEST(LoadCarbonCsvExogenous, NotKeptUnlessAsked) {
  TempCsv file(kDacfLike);
  CarbonLoadReport report;
  const CarbonSeries series = load_carbon_csv(file.path(), {}, &report);
  EXPECT_TRUE(series.exogenous().empty());
  EXPECT_TRUE(report.exogenous_columns.empty());
}

TEST(LoadCarbonCsvExogenous, KeepsOnlyForecastColumnsNeverRealisedGeneration) {
  TempCsv file(kDacfLike);
  CarbonCsvOptions options;
  options.exogenous = true;
  CarbonLoadReport report;
  const CarbonSeries series = load_carbon_csv(file.path(), options, &report);
  ASSERT_EQ(series.exogenous().size(), 2u);
  EXPECT_EQ(series.exogenous()[0].name, "forecast_avg_wind_speed_wMean");
  EXPECT_THAT(series.exogenous()[0].values, ElementsAre(3.5, 3.0, 2.5));
  EXPECT_EQ(series.exogenous()[1].name, "avg_solar_production_forecast");
  EXPECT_THAT(series.exogenous()[1].values, ElementsAre(10, 20, 30));
  EXPECT_THAT(report.exogenous_columns,
              ElementsAre("forecast_avg_wind_speed_wMean", "avg_solar_production_forecast"));
}

TEST(LoadCarbonCsvExogenous, ExplicitColumnsAreKeptExactly) {
  TempCsv file(kDacfLike);
  CarbonCsvOptions options;
  options.exogenous_columns = {"avg_solar_production_forecast"};
  const CarbonSeries series = load_carbon_csv(file.path(), options);
  ASSERT_EQ(series.exogenous().size(), 1u);
  EXPECT_EQ(series.exogenous()[0].name, "avg_solar_production_forecast");

  options.exogenous_columns = {"nope"};
  const std::string message =
      error_message([&] { load_carbon_csv(file.path(), options); }, ErrorCode::kNotFound);
  EXPECT_THAT(message, AllOf(HasSubstr(file.name()), HasSubstr("'nope'")));
  options.exogenous_columns = {"carbon_intensity"};
  EXPECT_THROW(load_carbon_csv(file.path(), options), Error);
}

TEST(LoadCarbonCsvExogenous, NonNumericCellNamesFileLineAndColumn) {
  TempCsv file(
      "time,value,wind_forecast\n"
      "2021-01-01T00:00:00Z,100,1\n"
      "2021-01-01T01:00:00Z,100,windy\n");
  CarbonCsvOptions options;
  options.exogenous = true;
  const std::string message =
      error_message([&] { load_carbon_csv(file.path(), options); }, ErrorCode::kParse);
  EXPECT_THAT(message, AllOf(HasSubstr(file.name() + ":3"), HasSubstr("wind_forecast"),
                             HasSubstr("'windy'")));
}

TEST(LoadCarbonCsvDuplicates, AreAnErrorByDefaultNamingBothLines) {
  TempCsv file(
      "time,value\n2021-01-01T00:00:00Z,1\n2021-01-01T01:00:00Z,2\n2021-01-01T01:00:00Z,3\n");
  const std::string message =
      error_message([&] { load_carbon_csv(file.path()); }, ErrorCode::kParse);
  EXPECT_THAT(message, AllOf(HasSubstr("lines 3 and 4"), HasSubstr("--duplicates")));
}

TEST(LoadCarbonCsvDuplicates, KeepFirstOrLastInFileOrderAndReport) {
  // Unsorted on purpose: file order decides first/last, not time order.
  TempCsv file(
      "time,value\n2021-01-01T01:00:00Z,3\n2021-01-01T00:00:00Z,1\n2021-01-01T01:00:00Z,4\n"
      "2021-01-01T02:00:00Z,5\n");
  CarbonCsvOptions options;
  options.duplicates = DuplicateTimes::kKeepFirst;
  CarbonLoadReport report;
  EXPECT_THAT(load_carbon_csv(file.path(), options, &report).values(), ElementsAre(1, 3, 5));
  EXPECT_EQ(report.duplicates, 1u);
  EXPECT_FALSE(report.sorted);
  ASSERT_EQ(report.duplicate_examples.size(), 1u);
  EXPECT_THAT(report.duplicate_examples[0], HasSubstr("lines 2 and 4"));
  options.duplicates = DuplicateTimes::kKeepLast;
  EXPECT_THAT(load_carbon_csv(file.path(), options).values(), ElementsAre(1, 4, 5));
}

constexpr const char* kWithGaps =
    "time,value\n"
    "2021-01-01T00:00:00Z,10\n"
    "2021-01-01T01:00:00Z,20\n"
    "2021-01-01T04:00:00Z,50\n"  // 02:00 and 03:00 missing
    "2021-01-01T05:00:00Z,60\n"
    "2021-01-01T07:00:00Z,80\n";  // 06:00 missing

TEST(LoadCarbonCsvGaps, AreReportedWithLinesAndLeftUncoveredByDefault) {
  TempCsv file(kWithGaps);
  CarbonLoadReport report;
  const CarbonSeries series = load_carbon_csv(file.path(), {}, &report);
  EXPECT_EQ(series.size(), 5u);
  EXPECT_FALSE(series.regular());
  EXPECT_EQ(report.rows, 5u);
  EXPECT_EQ(report.gaps, 2u);
  EXPECT_EQ(report.missing_points, 3u);
  EXPECT_EQ(report.filled_points, 0u);
  EXPECT_EQ(report.source_resolution, hours(1));
  ASSERT_EQ(report.gap_examples.size(), 2u);
  EXPECT_THAT(report.gap_examples[0],
              AllOf(HasSubstr("2 point(s)"), HasSubstr("line 3"), HasSubstr("line 4")));
}

TEST(LoadCarbonCsvGaps, FillPreviousCarriesTheLastValue) {
  TempCsv file(kWithGaps);
  CarbonCsvOptions options;
  options.fill = GapFill::kPrevious;
  CarbonLoadReport report;
  const CarbonSeries series = load_carbon_csv(file.path(), options, &report);
  EXPECT_TRUE(series.regular());
  EXPECT_THAT(series.values(), ElementsAre(10, 20, 20, 20, 50, 60, 60, 80));
  EXPECT_EQ(report.filled_points, 3u);
  EXPECT_EQ(series.times().back(), at("2021-01-01T07:00:00Z"));
}

TEST(LoadCarbonCsvGaps, FillLinearInterpolatesInTime) {
  TempCsv file(kWithGaps);
  CarbonCsvOptions options;
  options.fill = GapFill::kLinear;
  CarbonLoadReport report;
  const CarbonSeries series = load_carbon_csv(file.path(), options, &report);
  EXPECT_TRUE(series.regular());
  EXPECT_THAT(series.values(),
              ElementsAre(10, 20, DoubleEq(30), DoubleEq(40), 50, 60, DoubleEq(70), 80));
  EXPECT_EQ(report.filled_points, 3u);
}

TEST(LoadCarbonCsvGaps, ExogenousColumnsAreFilledTheSameWay) {
  TempCsv file(
      "time,value,load_forecast\n"
      "2021-01-01T00:00:00Z,10,1\n"
      "2021-01-01T02:00:00Z,30,3\n"
      "2021-01-01T03:00:00Z,40,4\n");
  CarbonCsvOptions options;
  options.fill = GapFill::kLinear;
  options.exogenous = true;
  const CarbonSeries series = load_carbon_csv(file.path(), options);
  ASSERT_EQ(series.exogenous().size(), 1u);
  EXPECT_THAT(series.values(), ElementsAre(10, DoubleEq(20), 30, 40));
  EXPECT_THAT(series.exogenous()[0].values, ElementsAre(1, DoubleEq(2), 3, 4));
}

TEST(LoadCarbonCsvResample, DownsamplingTakesTheMeanOfEachPeriod) {
  TempCsv file(
      "time,value,x_forecast\n"
      "2021-01-01T00:00:00Z,10,1\n"
      "2021-01-01T00:30:00Z,20,3\n"
      "2021-01-01T01:00:00Z,30,5\n"
      "2021-01-01T01:30:00Z,50,7\n");
  CarbonCsvOptions options;
  options.resample = hours(1);
  options.exogenous = true;
  const CarbonSeries series = load_carbon_csv(file.path(), options);
  EXPECT_EQ(series.resolution(), hours(1));
  EXPECT_THAT(series.times(), ElementsAre(at("2021-01-01T00:00:00Z"), at("2021-01-01T01:00:00Z")));
  EXPECT_THAT(series.values(), ElementsAre(15, 40));
  EXPECT_THAT(series.exogenous()[0].values, ElementsAre(2, 6));
}

TEST(LoadCarbonCsvResample, PeriodsAreAlignedToTheEpochAndEmptyOnesAreGaps) {
  TempCsv file(
      "time,value\n"
      "2021-01-01T00:15:00Z,10\n"
      "2021-01-01T00:30:00Z,20\n"
      "2021-01-01T00:45:00Z,30\n"
      "2021-01-01T03:00:00Z,40\n");
  CarbonCsvOptions options;
  options.resample = hours(1);
  CarbonSeries series = load_carbon_csv(file.path(), options);
  EXPECT_THAT(series.times(), ElementsAre(at("2021-01-01T00:00:00Z"), at("2021-01-01T03:00:00Z")));
  EXPECT_THAT(series.values(), ElementsAre(20, 40));
  options.fill = GapFill::kPrevious;
  series = load_carbon_csv(file.path(), options);
  EXPECT_TRUE(series.regular());
  EXPECT_THAT(series.values(), ElementsAre(20, 20, 20, 40));
}

TEST(LoadCarbonCsvResample, UpsamplingRepeatsTheValueInForce) {
  TempCsv file("time,value\n2021-01-01T00:00:00Z,10\n2021-01-01T01:00:00Z,20\n");
  CarbonCsvOptions options;
  options.resample = minutes(30);
  const CarbonSeries series = load_carbon_csv(file.path(), options);
  EXPECT_EQ(series.resolution(), minutes(30));
  EXPECT_THAT(series.values(), ElementsAre(10, 10, 20, 20));
  EXPECT_EQ(series.end(), at("2021-01-01T02:00:00Z"));
}

TEST(LoadCarbonCsvErrors, NameFileLineAndColumn) {
  {
    TempCsv file("time,value\n2021-01-01T00:00:00Z,10\n2021-01-01T01:00:00Z,-3\n");
    EXPECT_THAT(error_message([&] { load_carbon_csv(file.path()); }, ErrorCode::kParse),
                AllOf(HasSubstr(file.name() + ":3"), HasSubstr("'value'")));
  }
  {
    TempCsv file("time,value\n2021-01-01T00:00:00Z,abc\n");
    EXPECT_THAT(error_message([&] { load_carbon_csv(file.path()); }, ErrorCode::kParse),
                AllOf(HasSubstr(file.name() + ":2"), HasSubstr("'abc'")));
  }
  {
    TempCsv file("");
    EXPECT_THAT(error_message([&] { load_carbon_csv(file.path()); }, ErrorCode::kParse),
                HasSubstr(file.name()));
  }
}

// Found by fuzz/carbon_csv_fuzz.cpp: a far-off year made fill allocate a point per second for
// centuries (a hang, then out of memory), and a grid ending near the clock's last representable
// time (2262-04-11) overflowed its nanosecond count (undefined behaviour).
TEST(LoadCarbonCsvGaps, AFarOffYearIsRefusedNotFilledForCenturies) {
  TempCsv file("time,ci\n2000-01-01T00:00:00Z,1\n2000-01-01T00:00:01Z,1\n2200-01-01T00:00:00Z,2\n");
  CarbonCsvOptions options;
  options.fill = GapFill::kPrevious;
  const std::string message =
      error_message([&] { load_carbon_csv(file.path(), options); }, ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, AllOf(HasSubstr(file.name()), HasSubstr("2200-01-01T00:00:00Z"),
                             HasSubstr("more than the 5000000"), HasSubstr("check the years")));
  options.fill = GapFill::kNone;  // without fill the gap is only reported
  EXPECT_EQ(load_carbon_csv(file.path(), options).size(), 3u);
}

TEST(LoadCarbonCsvResample, AGridEndingAtTheClocksLimitIsRefused) {
  TempCsv file("time,ci\n2262-04-11T22:00:00Z,1\n2262-04-11T23:00:00Z,1\n");
  CarbonCsvOptions options;
  options.resample = std::chrono::minutes(30);
  EXPECT_THAT(
      error_message([&] { load_carbon_csv(file.path(), options); }, ErrorCode::kInvalidArgument),
      AllOf(HasSubstr(file.name()), HasSubstr("2262-04-11T23:00:00Z"),
            HasSubstr("ends too close to the latest time")));
  options.resample = std::chrono::seconds(0);
  options.fill = GapFill::kLinear;
  EXPECT_THROW(load_carbon_csv(file.path(), options), Error);
}

TEST(LoadCarbonCsvResample, APeriodOverAHundredYearsIsRefused) {
  TempCsv file("time,ci\n2021-07-01T00:00:00Z,1\n2021-07-01T01:00:00Z,2\n");
  CarbonCsvOptions options;
  options.resample = std::chrono::years(100) + std::chrono::seconds(1);
  EXPECT_THAT(
      error_message([&] { load_carbon_csv(file.path(), options); }, ErrorCode::kInvalidArgument),
      HasSubstr("at most 100 years"));
}

TEST(CarbonSeriesExogenous, ConstructorChecksSizesFinitenessAndNames) {
  const std::vector<UtcTime> times = {at("2021-01-01T00:00:00Z"), at("2021-01-01T01:00:00Z")};
  EXPECT_NO_THROW(CarbonSeries(times, {1, 2}, hours(1), "", {{"a", {1, 2}}, {"b", {-1, 0}}}));
  EXPECT_THROW(CarbonSeries(times, {1, 2}, hours(1), "", {{"a", {1}}}), Error);
  EXPECT_THROW(CarbonSeries(times, {1, 2}, hours(1), "", {{"a", {1, std::nan("")}}}), Error);
  EXPECT_THROW(CarbonSeries(times, {1, 2}, hours(1), "", {{"a", {1, 2}}, {"a", {1, 2}}}), Error);
}

TEST(CarbonSeriesRegular, DetectsGaps) {
  EXPECT_TRUE(CarbonSeries().regular());
  EXPECT_TRUE(
      CarbonSeries({at("2021-01-01T00:00:00Z"), at("2021-01-01T01:00:00Z")}, {1, 2}, hours(1))
          .regular());
  EXPECT_FALSE(
      CarbonSeries({at("2021-01-01T00:00:00Z"), at("2021-01-01T02:00:00Z")}, {1, 2}, hours(1))
          .regular());
}

TEST(CarbonParsers, FillAndDuplicateNames) {
  EXPECT_EQ(parse_gap_fill("linear"), GapFill::kLinear);
  EXPECT_EQ(parse_gap_fill("previous"), GapFill::kPrevious);
  EXPECT_EQ(parse_gap_fill("none"), GapFill::kNone);
  EXPECT_FALSE(parse_gap_fill("cubic"));
  EXPECT_EQ(parse_duplicate_times("last"), DuplicateTimes::kKeepLast);
  EXPECT_FALSE(parse_duplicate_times("any"));
}

TEST(LoadCarbonCsvRealData, DacfExogenousExcludesRealisedGeneration) {
  const char* env = std::getenv("CHASE_DATA_DIR");
  const std::filesystem::path dir = env != nullptr && *env != '\0' ? env : CHASE_DEFAULT_DATA_DIR;
  const auto path = dir / "carbon/dacf/ISNE_direct_emissions.csv";
  CHASE_SKIP_UNLESS_REAL_DATA(path);
  CarbonCsvOptions options;
  options.exogenous = true;
  CarbonLoadReport report;
  const CarbonSeries series = load_carbon_csv(path, options, &report);
  EXPECT_EQ(series.size(), 17544u);
  EXPECT_TRUE(series.regular());
  EXPECT_EQ(report.gaps, 0u);
  ASSERT_FALSE(series.exogenous().empty());
  for (const auto& column : series.exogenous()) {
    EXPECT_THAT(column.name, HasSubstr("forecast"));
    EXPECT_NE(column.name, "coal");
  }
}

}  // namespace
}  // namespace chase
