#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
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
using std::chrono::seconds;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

UtcTime at(const char* text) {
  const auto time = parse_utc_time(text);
  EXPECT_TRUE(time) << text;
  return time.value_or(UtcTime{});
}

using chase::testing::TempCsv;

using chase::testing::error_message;

std::filesystem::path data_dir() {
  if (const char* dir = std::getenv("CHASE_DATA_DIR"); dir != nullptr && *dir != '\0') return dir;
  return CHASE_DEFAULT_DATA_DIR;
}

// ---------------------------------------------------------------------------------------------
// The constructor and lookups.

CarbonSeries three_hours() {
  return CarbonSeries(
      {at("2021-07-01T00:00:00Z"), at("2021-07-01T01:00:00Z"), at("2021-07-01T02:00:00Z")},
      {100, 200, 400}, hours(1), "test.csv");
}

TEST(CarbonSeries, MaxBetweenTakesThePointsStartingInTheHalfOpenRange) {
  const CarbonSeries series({at("2021-01-01T00:00:00Z"), at("2021-01-01T01:00:00Z"),
                             at("2021-01-01T02:00:00Z"), at("2021-01-01T03:00:00Z")},
                            {100, 400, 250, 300}, hours(1), "test");
  EXPECT_EQ(series.max_between(at("2021-01-01T00:00:00Z"), at("2021-01-01T04:00:00Z")), 400);
  EXPECT_EQ(series.max_between(at("2021-01-01T01:30:00Z"), at("2021-01-01T03:00:00Z")), 250)
      << "01:00 starts before, 03:00 at the end: both out";
  EXPECT_FALSE(series.max_between(at("2021-01-01T05:00:00Z"), at("2021-01-02T00:00:00Z")));
  EXPECT_FALSE(series.max_between(at("2021-01-01T02:00:00Z"), at("2021-01-01T01:00:00Z")));
  EXPECT_FALSE(CarbonSeries().max_between(at("2021-01-01T00:00:00Z"), at("2021-01-02T00:00:00Z")));
}

TEST(CarbonSeries, DefaultIsEmptyAndCoversNothing) {
  const CarbonSeries series;
  EXPECT_TRUE(series.empty());
  EXPECT_EQ(series.size(), 0u);
  EXPECT_THAT(error_message([&] { series.start(); }, ErrorCode::kInvalidArgument),
              HasSubstr("empty"));
  EXPECT_THAT(error_message([&] { series.end(); }, ErrorCode::kInvalidArgument),
              HasSubstr("empty"));
  EXPECT_THAT(error_message([&] { series.value_at(UtcTime{}); }, ErrorCode::kInvalidArgument),
              HasSubstr("empty"));
}

TEST(CarbonSeries, EmptyVectorsNeedNoResolution) {
  EXPECT_NO_THROW(CarbonSeries({}, {}, seconds(0)));
}

TEST(CarbonSeries, KeepsItsDataAndCoverage) {
  const CarbonSeries series = three_hours();
  EXPECT_EQ(series.size(), 3u);
  EXPECT_FALSE(series.empty());
  EXPECT_EQ(series.resolution(), hours(1));
  EXPECT_EQ(series.source(), "test.csv");
  EXPECT_THAT(series.values(), ElementsAre(100, 200, 400));
  EXPECT_EQ(series.start(), at("2021-07-01T00:00:00Z"));
  EXPECT_EQ(series.end(), at("2021-07-01T03:00:00Z"));
}

TEST(CarbonSeries, ValueAtFindsTheIntervalInForce) {
  const CarbonSeries series = three_hours();
  EXPECT_EQ(series.value_at(at("2021-07-01T00:00:00Z")), 100);
  EXPECT_EQ(series.value_at(at("2021-07-01T00:59:59.999Z")), 100);
  EXPECT_EQ(series.value_at(at("2021-07-01T01:00:00Z")), 200);
  EXPECT_EQ(series.value_at(at("2021-07-01T01:30:00Z")), 200);
  EXPECT_EQ(series.value_at(at("2021-07-01T02:00:00Z")), 400);
  EXPECT_EQ(series.value_at(series.end() - std::chrono::nanoseconds(1)), 400);
}

TEST(CarbonSeries, ValueAtRejectsTimesOutsideTheCoverage) {
  const CarbonSeries series = three_hours();
  for (const UtcTime time :
       {at("2021-06-30T23:59:59Z"), at("2021-07-01T03:00:00Z"), at("2021-07-02T00:00:00Z")}) {
    const std::string message =
        error_message([&] { series.value_at(time); }, ErrorCode::kInvalidArgument);
    EXPECT_THAT(message, HasSubstr(format_utc_time(time)));
    EXPECT_THAT(message, HasSubstr("[2021-07-01T00:00:00Z, 2021-07-01T03:00:00Z)"));
    EXPECT_THAT(message, HasSubstr("test.csv"));
  }
}

TEST(CarbonSeries, GapsStayUncovered) {
  const CarbonSeries series(
      {at("2021-07-01T00:00:00Z"), at("2021-07-01T01:00:00Z"), at("2021-07-01T04:00:00Z")},
      {100, 200, 400}, hours(1));
  EXPECT_EQ(series.end(), at("2021-07-01T05:00:00Z"));
  EXPECT_EQ(series.value_at(at("2021-07-01T01:59:00Z")), 200);
  EXPECT_EQ(series.value_at(at("2021-07-01T04:00:00Z")), 400);
  const std::string message = error_message([&] { series.value_at(at("2021-07-01T03:00:00Z")); },
                                            ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, HasSubstr("2021-07-01T03:00:00Z"));
  EXPECT_THAT(message, HasSubstr("gap"));
  EXPECT_THAT(message, HasSubstr("from 2021-07-01T02:00:00Z to 2021-07-01T04:00:00Z"));
  EXPECT_THROW(series.value_at(at("2021-07-01T02:00:00Z")), Error);
}

TEST(CarbonSeries, APointHoldsUntilTheNextOneWhenThatComesSooner) {
  // Irregular data: the second point starts 30 min into the first one's hour and takes over.
  const CarbonSeries series({at("2021-07-01T00:00:00Z"), at("2021-07-01T00:30:00Z")}, {100, 200},
                            hours(1));
  EXPECT_EQ(series.value_at(at("2021-07-01T00:29:00Z")), 100);
  EXPECT_EQ(series.value_at(at("2021-07-01T00:45:00Z")), 200);
  EXPECT_EQ(series.value_at(at("2021-07-01T01:15:00Z")), 200);
  EXPECT_EQ(series.end(), at("2021-07-01T01:30:00Z"));
}

TEST(CarbonSeries, RejectsSizeMismatch) {
  const std::string message = error_message(
      [] {
        CarbonSeries({at("2021-07-01")}, {1, 2}, hours(1));
      },
      ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, AllOf(HasSubstr("1 times"), HasSubstr("2 values")));
}

TEST(CarbonSeries, RejectsTimesThatDoNotIncrease) {
  std::string message = error_message(
      [] {
        CarbonSeries(
            {at("2021-07-01T00:00:00Z"), at("2021-07-01T01:00:00Z"), at("2021-07-01T01:00:00Z")},
            {1, 2, 3}, hours(1));
      },
      ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, AllOf(HasSubstr("Time 2"), HasSubstr("2021-07-01T01:00:00Z"),
                             HasSubstr("strictly increasing")));
  message = error_message(
      [] {
        CarbonSeries({at("2021-07-01T05:00:00Z"), at("2021-07-01T04:00:00Z")}, {1, 2}, hours(1));
      },
      ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, AllOf(HasSubstr("Time 1"), HasSubstr("2021-07-01T04:00:00Z"),
                             HasSubstr("2021-07-01T05:00:00Z")));
}

TEST(CarbonSeries, RejectsNonFiniteOrNegativeValues) {
  const std::vector<UtcTime> times = {at("2021-07-01T00:00:00Z"), at("2021-07-01T01:00:00Z")};
  for (const double bad : {std::nan(""), std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity(), -0.5}) {
    const std::string message = error_message(
        [&] {
          CarbonSeries(times, {10, bad}, hours(1), "grid.csv");
        },
        ErrorCode::kInvalidArgument);
    EXPECT_THAT(message, AllOf(HasSubstr("Value 1"), HasSubstr("2021-07-01T01:00:00Z"),
                               HasSubstr("grid.csv"), HasSubstr("non-negative")));
  }
  EXPECT_NO_THROW(CarbonSeries(times, {0, 0}, hours(1)));  // zero is a valid intensity
}

TEST(CarbonSeries, RejectsANonPositiveResolution) {
  for (const seconds bad : {seconds(0), seconds(-3600)}) {
    const std::string message = error_message([&] { CarbonSeries({at("2021-07-01")}, {1}, bad); },
                                              ErrorCode::kInvalidArgument);
    EXPECT_THAT(message, HasSubstr("resolution"));
  }
}

TEST(CarbonSeries, RejectsAnIntervalPastTheClocksRange) {
  EXPECT_THROW(CarbonSeries({at("2262-04-10")}, {1}, hours(24 * 7)), Error);
  EXPECT_THROW(CarbonSeries({at("2021-07-01")}, {1}, hours(24 * 365 * 200)), Error);
}

// ---------------------------------------------------------------------------------------------
// Loading from CSV.

TEST(LoadCarbonCsv, LoadsASimpleFile) {
  TempCsv file(
      "time,carbon_intensity\n"
      "2021-07-01 00:00:00,100\n"
      "2021-07-01 01:00:00,200.5\n"
      "2021-07-01 02:00:00,0\n");
  const CarbonSeries series = load_carbon_csv(file.path());
  EXPECT_EQ(series.size(), 3u);
  EXPECT_EQ(series.start(), at("2021-07-01T00:00:00Z"));
  EXPECT_EQ(series.resolution(), hours(1));
  EXPECT_THAT(series.values(), ElementsAre(100, 200.5, 0));
  EXPECT_EQ(series.source(), file.name());
}

class DetectsTimeColumn : public ::testing::TestWithParam<const char*> {};

TEST_P(DetectsTimeColumn, ByItsHeaderName) {
  TempCsv file(std::string("other,") + GetParam() +
               ",ci\nx,2021-07-01T00:00Z,1\ny,2021-07-01T00:30Z,2\n");
  const CarbonSeries series = load_carbon_csv(file.path());
  EXPECT_EQ(series.start(), at("2021-07-01T00:00:00Z"));
  EXPECT_EQ(series.resolution(), minutes(30));
  EXPECT_THAT(series.values(), ElementsAre(1, 2));
}

INSTANTIATE_TEST_SUITE_P(LoadCarbonCsv, DetectsTimeColumn,
                         ::testing::Values("UTC time", "utc_time", "timestamp", "datetime", "time",
                                           "point_time", "date", "utc TIME", "TimeStamp",
                                           "  DateTime  ", "\"time\""));

class DetectsValueColumn : public ::testing::TestWithParam<const char*> {};

TEST_P(DetectsValueColumn, ByItsHeaderName) {
  TempCsv file(std::string("timestamp,other,") + GetParam() +
               "\n2021-07-01,x,10\n2021-07-02,y,20\n");
  const CarbonSeries series = load_carbon_csv(file.path());
  EXPECT_EQ(series.resolution(), hours(24));
  EXPECT_THAT(series.values(), ElementsAre(10, 20));
}

INSTANTIATE_TEST_SUITE_P(LoadCarbonCsv, DetectsValueColumn,
                         ::testing::Values("carbon_intensity", "carbon intensity",
                                           "carbonIntensity", "intensity", "hist", "value", "ci",
                                           "CARBON_INTENSITY", "CarbonIntensity", " Value "));

TEST(LoadCarbonCsv, PrefersValueColumnsInTheDocumentedOrder) {
  {
    TempCsv file("timestamp,value,hist\n2021-07-01,1,10\n2021-07-02,2,20\n", "_hist");
    EXPECT_THAT(load_carbon_csv(file.path()).values(), ElementsAre(10, 20));  // hist over value
  }
  {
    TempCsv file(
        "ci,value,intensity,carbon_intensity,time\n1,2,3,4,2021-07-01\n5,6,7,8,2021-07-02\n",
        "_all");
    EXPECT_THAT(load_carbon_csv(file.path()).values(), ElementsAre(4, 8));
  }
  {
    TempCsv file("time,ci,value\n2021-07-01,1,2\n2021-07-02,3,4\n", "_value");
    EXPECT_THAT(load_carbon_csv(file.path()).values(), ElementsAre(2, 4));  // value over ci
  }
}

TEST(LoadCarbonCsv, PrefersTimeColumnsInTheDocumentedOrder) {
  TempCsv file(
      "date,UTC time,ci\n2000-01-01,2021-07-01 00:00:00,1\n2000-01-02,2021-07-01 01:00:00,2\n");
  const CarbonSeries series = load_carbon_csv(file.path());
  EXPECT_EQ(series.start(), at("2021-07-01T00:00:00Z"));
  EXPECT_EQ(series.resolution(), hours(1));
}

TEST(LoadCarbonCsv, OverridesPickExactColumns) {
  TempCsv file(
      "when,forecast,actual,time\n"
      "2021-07-01T00:00Z,5,50,1999-01-01\n"
      "2021-07-01T01:00Z,6,60,1999-01-03\n");
  const CarbonSeries series = load_carbon_csv(file.path(), {"when", "actual"});
  EXPECT_EQ(series.start(), at("2021-07-01T00:00:00Z"));
  EXPECT_EQ(series.resolution(), hours(1));
  EXPECT_THAT(series.values(), ElementsAre(50, 60));
  // Only the value overridden: the time column is still detected ("time").
  const CarbonSeries detected_time = load_carbon_csv(file.path(), {"", "forecast"});
  EXPECT_EQ(detected_time.start(), at("1999-01-01"));
  EXPECT_EQ(detected_time.resolution(), hours(48));
  EXPECT_THAT(detected_time.values(), ElementsAre(5, 6));
}

TEST(LoadCarbonCsv, AnOverrideThatIsNotAColumnIsNotFound) {
  TempCsv file("time,Actual\n2021-07-01,1\n2021-07-02,2\n");
  std::string message = error_message(
      [&] {
        load_carbon_csv(file.path(), {"", "actual"});
      },
      ErrorCode::kNotFound);
  EXPECT_THAT(message, AllOf(HasSubstr(file.name()), HasSubstr("'actual'"),
                             HasSubstr("'time', 'Actual'"), HasSubstr("did you mean 'Actual'")));
  message = error_message(
      [&] {
        load_carbon_csv(file.path(), {"stamp", ""});
      },
      ErrorCode::kNotFound);
  EXPECT_THAT(message,
              AllOf(HasSubstr("'stamp'"), HasSubstr("time column"), HasSubstr("'time', 'Actual'")));
}

TEST(LoadCarbonCsv, NoRecognisableColumnTellsWhatToPass) {
  TempCsv file(",when,how_much\n0,2021-07-01,1\n1,2021-07-02,2\n");
  std::string message = error_message([&] { load_carbon_csv(file.path()); }, ErrorCode::kNotFound);
  EXPECT_THAT(message,
              AllOf(HasSubstr(file.name()), HasSubstr("time column"),
                    HasSubstr("(unnamed column 1), 'when', 'how_much'"), HasSubstr("--time-col")));
  message = error_message(
      [&] {
        load_carbon_csv(file.path(), {"when", ""});
      },
      ErrorCode::kNotFound);
  EXPECT_THAT(message,
              AllOf(HasSubstr("value column"), HasSubstr("'how_much'"), HasSubstr("--value-col")));
  EXPECT_NO_THROW(load_carbon_csv(file.path(), {"when", "how_much"}));
}

TEST(LoadCarbonCsv, TheSameColumnCannotBeTimeAndValue) {
  TempCsv file("time,ci\n2021-07-01,1\n2021-07-02,2\n");
  EXPECT_THROW(load_carbon_csv(file.path(), {"time", "time"}), Error);
}

TEST(LoadCarbonCsv, SortsUnsortedRows) {
  TempCsv file(
      "time,ci\n"
      "2021-07-01 02:00:00,3\n"
      "2021-07-01 00:00:00,1\n"
      "2021-07-01 03:00:00,4\n"
      "2021-07-01 01:00:00,2\n");
  const CarbonSeries series = load_carbon_csv(file.path());
  EXPECT_EQ(series.start(), at("2021-07-01T00:00:00Z"));
  EXPECT_EQ(series.end(), at("2021-07-01T04:00:00Z"));
  EXPECT_THAT(series.values(), ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(series.value_at(at("2021-07-01T01:30:00Z")), 2);
}

TEST(LoadCarbonCsv, AcceptsMixedZonesAndConvertsToUtc) {
  TempCsv file(
      "timestamp,value\n"
      "2021-07-01T02:00:00+02:00,1\n"
      "2021-07-01T01:00:00Z,2\n"
      "2021-07-01 02:00:00,3\n");
  const CarbonSeries series = load_carbon_csv(file.path());
  EXPECT_EQ(series.start(), at("2021-07-01T00:00:00Z"));
  EXPECT_THAT(series.values(), ElementsAre(1, 2, 3));
}

TEST(LoadCarbonCsv, InfersTheMostFrequentSpacingAndKeepsGaps) {
  TempCsv file(
      "time,ci\n"
      "2021-07-01 00:00,1\n"
      "2021-07-01 00:30,2\n"
      "2021-07-01 01:00,3\n"
      "2021-07-01 03:00,4\n"  // a 2 h gap
      "2021-07-01 03:30,5\n");
  const CarbonSeries series = load_carbon_csv(file.path());
  EXPECT_EQ(series.resolution(), minutes(30));
  EXPECT_EQ(series.end(), at("2021-07-01T04:00:00Z"));
  EXPECT_THROW(series.value_at(at("2021-07-01T02:00:00Z")), Error);
  EXPECT_EQ(series.value_at(at("2021-07-01T01:15:00Z")), 3);
}

TEST(LoadCarbonCsv, ResolutionTiesGoToTheSmallerSpacing) {
  TempCsv file(
      "time,ci\n"
      "2021-07-01 00:00,1\n"
      "2021-07-01 02:00,2\n"    // +2 h
      "2021-07-01 03:00,3\n"    // +1 h
      "2021-07-01 05:00,4\n"    // +2 h
      "2021-07-01 06:00,5\n");  // +1 h
  EXPECT_EQ(load_carbon_csv(file.path()).resolution(), hours(1));
}

TEST(LoadCarbonCsv, ReadsCrlfBomQuotesAndBlankLines) {
  TempCsv file(
      "\xEF\xBB\xBF\"UTC time\",\"carbon_intensity\"\r\n"
      "\"2021-07-01 00:00:00\",\" 100 \"\r\n"
      "\r\n"
      "2021-07-01 01:00:00 , 200\r\n");
  const CarbonSeries series = load_carbon_csv(file.path());
  EXPECT_THAT(series.values(), ElementsAre(100, 200));
  EXPECT_EQ(series.resolution(), hours(1));
}

// The message of a kParse error from loading `content`, checked to name the file and line.
std::string load_error(const TempCsv& file, int line) {
  const std::string message =
      error_message([&] { load_carbon_csv(file.path()); }, ErrorCode::kParse);
  EXPECT_THAT(message, HasSubstr(file.name() + ":" + std::to_string(line)));
  return message;
}

TEST(LoadCarbonCsv, RejectsAnUnparsableTime) {
  TempCsv file("time,ci\n2021-07-01 00:00:00,1\n2021-07-01 25:00:00,2\n");
  EXPECT_THAT(load_error(file, 3),
              HasSubstr(file.name() + ":3, column 'time': cannot parse '2021-07-01 25:00:00' as a "
                                      "UTC time (expected ISO 8601 or YYYY-MM-DD HH:MM:SS)"));
}

TEST(LoadCarbonCsv, RejectsAnEmptyTime) {
  TempCsv file("time,ci\n2021-07-01 00:00:00,1\n\n ,2\n");
  EXPECT_THAT(load_error(file, 4), HasSubstr("column 'time': cannot parse ''"));
}

TEST(LoadCarbonCsv, RejectsANonNumericValue) {
  TempCsv file("time,carbon_intensity\n2021-07-01 00:00:00,12abc\n2021-07-01 01:00:00,1\n");
  EXPECT_THAT(load_error(file, 2),
              AllOf(HasSubstr("column 'carbon_intensity'"), HasSubstr("'12abc'")));
}

TEST(LoadCarbonCsv, RejectsAnEmptyValue) {
  TempCsv file("time,ci\n2021-07-01 00:00:00,1\n2021-07-01 01:00:00,\n");
  EXPECT_THAT(load_error(file, 3), AllOf(HasSubstr("column 'ci'"), HasSubstr("''")));
}

TEST(LoadCarbonCsv, RejectsNonFiniteValues) {
  for (const char* bad : {"nan", "NaN", "inf", "-inf", "infinity"}) {
    TempCsv file(std::string("time,ci\n2021-07-01 00:00:00,1\n2021-07-01 01:00:00,") + bad + "\n");
    EXPECT_THAT(load_error(file, 3),
                AllOf(HasSubstr("column 'ci'"), HasSubstr(std::string("'") + bad + "'"),
                      HasSubstr("finite")))
        << bad;
  }
}

TEST(LoadCarbonCsv, RejectsANegativeValue) {
  TempCsv file("time,ci\n2021-07-01 00:00:00,-4.5\n2021-07-01 01:00:00,1\n");
  EXPECT_THAT(load_error(file, 2),
              AllOf(HasSubstr("column 'ci'"), HasSubstr("'-4.5'"), HasSubstr("non-negative")));
}

TEST(LoadCarbonCsv, RejectsAShortRow) {
  TempCsv file("id,time,ci\n0,2021-07-01 00:00:00,1\n1,2021-07-01 01:00:00\n");
  EXPECT_THAT(load_error(file, 3), AllOf(HasSubstr("column 'ci'"), HasSubstr("missing")));
  TempCsv no_time("id,time,ci\n0,2021-07-01 00:00:00,1\n1\n", "_no_time");
  EXPECT_THAT(load_error(no_time, 3), AllOf(HasSubstr("column 'time'"), HasSubstr("missing")));
}

TEST(LoadCarbonCsv, RejectsDuplicateTimesNamingBothLines) {
  TempCsv file(
      "time,ci\n"
      "2021-07-01 00:00:00,1\n"
      "2021-07-01 01:00:00,2\n"
      "2021-07-01T02:00:00+01:00,3\n");  // the same instant as line 3
  const std::string message =
      error_message([&] { load_carbon_csv(file.path()); }, ErrorCode::kParse);
  EXPECT_THAT(message, AllOf(HasSubstr(file.name()), HasSubstr("lines 3 and 4"),
                             HasSubstr("2021-07-01T01:00:00Z")));
}

TEST(LoadCarbonCsv, RejectsAHeaderWithoutRows) {
  TempCsv file("time,ci\n\n\n");
  const std::string message =
      error_message([&] { load_carbon_csv(file.path()); }, ErrorCode::kParse);
  EXPECT_THAT(message, HasSubstr("'" + file.name() + "' has a header but no data rows"));
}

TEST(LoadCarbonCsv, RejectsASingleRow) {
  TempCsv file("time,ci\n2021-07-01 00:00:00,1\n");
  const std::string message =
      error_message([&] { load_carbon_csv(file.path()); }, ErrorCode::kParse);
  EXPECT_THAT(message, AllOf(HasSubstr(file.name()), HasSubstr("line 2"),
                             HasSubstr("resolution cannot be inferred from one row")));
}

TEST(LoadCarbonCsv, RejectsAnEmptyOrMissingFile) {
  TempCsv empty("");
  EXPECT_THAT(error_message([&] { load_carbon_csv(empty.path()); }, ErrorCode::kParse),
              HasSubstr(empty.name()));
  const auto missing =
      std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "_missing_carbon.csv");
  EXPECT_THAT(error_message([&] { load_carbon_csv(missing); }, ErrorCode::kIo),
              HasSubstr(missing.string()));
}

// ---------------------------------------------------------------------------------------------
// The real data sets (skipped when /work/shared/data is not there).

TEST(LoadCarbonCsvRealData, LoadsTheDacfCaliforniaSeries) {
  const auto path = data_dir() / "carbon" / "dacf" / "CISO_direct_emissions.csv";
  CHASE_SKIP_UNLESS_REAL_DATA(path);
  const auto started = std::chrono::steady_clock::now();
  const CarbonSeries series = load_carbon_csv(path);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(series.size(), 17544u);
  EXPECT_EQ(series.resolution(), hours(1));
  EXPECT_EQ(series.start(), at("2020-01-01T00:00:00Z"));
  EXPECT_EQ(series.end(), at("2022-01-01T00:00:00Z"));
  EXPECT_DOUBLE_EQ(series.values().front(), 242.9);
  EXPECT_DOUBLE_EQ(series.value_at(at("2020-01-01T01:30:00Z")), 291.9);
  EXPECT_EQ(series.source(), path.string());
  // Generous even for an unoptimised, instrumented build; Release takes a few milliseconds.
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(LoadCarbonCsvRealData, LoadsTheMisoSeriesPreferringHist) {
  const auto path = data_dir() / "carbon" / "miso_mason_city_2022-10.csv";
  CHASE_SKIP_UNLESS_REAL_DATA(path);
  const CarbonSeries series = load_carbon_csv(path);
  EXPECT_EQ(series.size(), 167u);
  EXPECT_EQ(series.resolution(), minutes(30));
  EXPECT_EQ(series.start(), at("2022-10-20T06:20:00Z"));
  // Both `value` and `hist` are present: `hist` (realised) comes first in the preference order.
  EXPECT_DOUBLE_EQ(series.values().front(), 619.2291837783333);

  // The --value-col style override selects the other column.
  const CarbonSeries value = load_carbon_csv(path, {"", "value"});
  EXPECT_EQ(value.size(), 167u);
  EXPECT_DOUBLE_EQ(value.values().front(), 646.8567445847223);
  EXPECT_EQ(value.start(), series.start());
}

}  // namespace
}  // namespace chase
