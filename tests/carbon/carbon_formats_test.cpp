// The public export formats load_carbon_csv() recognises without being told the columns
// (src/carbon/carbon_formats.h): Electricity Maps' CSV (direct vs LCA), WattTime's CSV, the UK
// Carbon Intensity API's and the Carbon Aware SDK's JSON; detection by header, never file name;
// named columns override it; times without an offset flagged. Fixtures: synthetic values in the
// services' real layouts, tests/carbon/fixtures/formats/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "chase/carbon.h"
#include "chase/error.h"
#include "support/errors.h"
#include "support/temp_csv.h"

namespace chase {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using ::testing::AllOf;
using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kLbsPerMwh = 0.45359237;
constexpr const char* kLcaColumn = "Carbon Intensity gCO₂eq/kWh (LCA)";
constexpr const char* kDirectColumn = "Carbon Intensity gCO₂eq/kWh (direct)";

std::filesystem::path format_fixture(const std::string& name) {
  return std::filesystem::path(CHASE_SOURCE_DIR) / "tests/carbon/fixtures/formats" / name;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string joined(const std::vector<std::string>& notes) {
  std::string text;
  for (const auto& note : notes) text += note + "\n";
  return text;
}

UtcTime at(const char* text) { return parse_utc_time(text).value(); }

TEST(CarbonFormats, ElectricityMapsExportWithDirectAndLcaUsesLcaAndSaysSo) {
  CarbonLoadReport report;
  const auto series =
      load_carbon_csv(format_fixture("electricitymaps_DE_2025_hourly.csv"), {}, &report);
  EXPECT_EQ(report.format, "electricitymaps");
  EXPECT_THAT(series.values(), ElementsAre(360.25, 361.25, 362.25, 363.25, 364.25, 365.25));
  EXPECT_EQ(series.start(), at("2025-01-01T00:00:00Z"));
  EXPECT_EQ(series.resolution(), hours(1));
  // The note names the column used and how to get the other one.
  EXPECT_THAT(joined(report.notes), AllOf(HasSubstr(kLcaColumn), HasSubstr(kDirectColumn),
                                          HasSubstr("life-cycle"), HasSubstr("--value-col")));
  // "Datetime (UTC)" says UTC: its offset-less times are not flagged.
  EXPECT_FALSE(report.local_times_suspected);
}

TEST(CarbonFormats, ElectricityMapsEstimatedFlagIsKeptPerPoint) {
  CarbonLoadReport report;
  const auto series =
      load_carbon_csv(format_fixture("electricitymaps_DE_2025_hourly.csv"), {}, &report);
  ASSERT_EQ(series.estimated().size(), series.size());
  for (std::size_t i = 0; i < series.size(); ++i) EXPECT_EQ(series.is_estimated(i), i == 4) << i;
  EXPECT_EQ(report.estimated_points, 1U);
}

TEST(CarbonFormats, ANamedValueColumnOverridesTheDetection) {
  CarbonCsvOptions options;
  options.value_column = kDirectColumn;
  CarbonLoadReport report;
  const auto series =
      load_carbon_csv(format_fixture("electricitymaps_DE_2025_hourly.csv"), options, &report);
  EXPECT_THAT(series.values(), ElementsAre(300.5, 301.5, 302.5, 303.5, 304.5, 305.5));
  EXPECT_THAT(joined(report.notes), Not(HasSubstr("life-cycle")));
  // The time column still comes from the recognised layout.
  EXPECT_EQ(series.start(), at("2025-01-01T00:00:00Z"));
}

TEST(CarbonFormats, ANamedTimeColumnOverridesTheDetectionToo) {
  chase::testing::TempCsv csv(
      "Datetime (UTC),when,Carbon Intensity gCO₂eq/kWh (LCA)\n"
      "2025-01-01 00:00:00,2025-06-01T00:00:00Z,100\n"
      "2025-01-01 01:00:00,2025-06-01T01:00:00Z,110\n");
  CarbonCsvOptions options;
  options.time_column = "when";
  const auto series = load_carbon_csv(csv.path(), options);
  EXPECT_EQ(series.start(), at("2025-06-01T00:00:00Z"));
  EXPECT_THAT(series.values(), ElementsAre(100, 110));
}

TEST(CarbonFormats, ElectricityMapsExportWithOnlyDirectSaysWhichItUsed) {
  CarbonLoadReport report;
  const auto series =
      load_carbon_csv(format_fixture("electricitymaps_FR_direct_only.csv"), {}, &report);
  EXPECT_THAT(series.values(), ElementsAre(30, 31, 32, 33));
  EXPECT_THAT(joined(report.notes), AllOf(HasSubstr(kDirectColumn), HasSubstr("direct")));
}

TEST(CarbonFormats, DetectionReadsTheHeaderNotTheFileName) {
  // The same bytes under a name that says nothing (and a misleading one) load the same.
  const std::string content = read_file(format_fixture("electricitymaps_DE_2025_hourly.csv"));
  chase::testing::TempCsv plain(content, "_data");
  chase::testing::TempCsv misleading(content, "_watttime_export");
  for (const auto* csv : {&plain, &misleading}) {
    CarbonLoadReport report;
    const auto series = load_carbon_csv(csv->path(), {}, &report);
    EXPECT_EQ(report.format, "electricitymaps");
    EXPECT_DOUBLE_EQ(series.values().front(), 360.25);
  }
  // And a generic file named like an export is read generically.
  chase::testing::TempCsv generic("time,value\n2025-01-01T00:00:00Z,5\n2025-01-01T01:00:00Z,6\n",
                                  "_electricitymaps");
  CarbonLoadReport report;
  EXPECT_THAT(load_carbon_csv(generic.path(), {}, &report).values(), ElementsAre(5, 6));
  EXPECT_EQ(report.format, "");
}

TEST(CarbonFormats, WattTimeExportIsConvertedFromItsUnitsColumn) {
  CarbonLoadReport report;
  const auto series = load_carbon_csv(format_fixture("watttime_CAISO_NORTH_moer.csv"), {}, &report);
  EXPECT_EQ(report.format, "watttime");
  EXPECT_THAT(series.values(), ElementsAre(DoubleEq(1000 * kLbsPerMwh), DoubleEq(990 * kLbsPerMwh),
                                           DoubleEq(980 * kLbsPerMwh), DoubleEq(970 * kLbsPerMwh)));
  EXPECT_EQ(series.resolution(), minutes(5));
  EXPECT_THAT(joined(report.notes), HasSubstr("marginal"));
}

TEST(CarbonFormats, WattTimeMoerExportIsReadAsLbsPerMwh) {
  CarbonLoadReport report;
  const auto series = load_carbon_csv(format_fixture("watttime_moer_timestamp.csv"), {}, &report);
  EXPECT_EQ(report.format, "watttime");
  EXPECT_THAT(series.values().front(), DoubleEq(900 * kLbsPerMwh));
  EXPECT_THAT(joined(report.notes), AllOf(HasSubstr("MOER"), HasSubstr("lbs CO2/MWh")));
}

TEST(CarbonFormats, WattTimePercentileExportIsRefused) {
  chase::testing::TempCsv csv(
      "point_time,value,signal_type,units\n"
      "2026-03-01T00:00:00+00:00,42,co2_moer,percentile\n"
      "2026-03-01T00:05:00+00:00,43,co2_moer,percentile\n");
  const auto message =
      chase::testing::error_message([&] { load_carbon_csv(csv.path()); }, ErrorCode::kParse);
  EXPECT_THAT(message, AllOf(HasSubstr("percentile"), HasSubstr(csv.name()), HasSubstr(":2")));
}

TEST(CarbonFormats, UkCarbonIntensityJsonKeepsWhichPointsAreForecasts) {
  CarbonLoadReport report;
  const auto series = load_carbon_csv(format_fixture("ukgrid_intensity_range.json"), {}, &report);
  EXPECT_EQ(report.format, "ukgrid");
  // 00:30 has only a forecast (estimated); 01:30 has neither (left out, a gap).
  EXPECT_THAT(series.values(), ElementsAre(190, 205, 207, 215));
  EXPECT_EQ(series.resolution(), minutes(30));
  EXPECT_FALSE(series.is_estimated(0));
  EXPECT_TRUE(series.is_estimated(1));
  EXPECT_FALSE(series.is_estimated(2));
  EXPECT_EQ(report.gaps, 1U);
  EXPECT_THAT(joined(report.notes), HasSubstr("1 point(s) without a value"));
}

TEST(CarbonFormats, CarbonAwareSdkJsonLoadsEmissionsAndForecasts) {
  CarbonLoadReport report;
  const auto emissions =
      load_carbon_csv(format_fixture("carbon_aware_sdk_bylocation.json"), {}, &report);
  EXPECT_EQ(report.format, "carbon-aware-sdk");
  EXPECT_THAT(emissions.values(), ElementsAre(360, 365, 370));
  EXPECT_TRUE(emissions.estimated().empty());
  const auto forecast = load_carbon_csv(format_fixture("carbon_aware_sdk_forecast.json"));
  EXPECT_EQ(forecast.size(), 12U);
  EXPECT_EQ(forecast.start(), at("2026-03-01T12:20:00Z"));
  EXPECT_TRUE(forecast.is_estimated(0));  // a forecast
}

TEST(CarbonFormats, AJsonExportHasNoColumnsToName) {
  CarbonCsvOptions options;
  options.value_column = "rating";
  const auto message = chase::testing::error_message(
      [&] { load_carbon_csv(format_fixture("carbon_aware_sdk_bylocation.json"), options); },
      ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, HasSubstr("JSON export"));
}

TEST(CarbonFormats, UnrecognisedJsonSaysWhatIsRecognised) {
  chase::testing::TempCsv json(R"({"series": [1, 2, 3]})");
  const auto message =
      chase::testing::error_message([&] { load_carbon_csv(json.path()); }, ErrorCode::kParse);
  EXPECT_THAT(message, AllOf(HasSubstr(json.name()), HasSubstr("UK Carbon Intensity API"),
                             HasSubstr("Carbon Aware SDK")));
}

TEST(CarbonFormats, OffsetLessTimesUnderAHeaderThatDoesNotSayUtcAreFlagged) {
  chase::testing::TempCsv local(
      "timestamp,carbon_intensity\n2026-03-01 00:00:00,100\n2026-03-01 01:00:00,110\n");
  CarbonLoadReport report;
  load_carbon_csv(local.path(), {}, &report);
  EXPECT_TRUE(report.local_times_suspected);
  EXPECT_EQ(report.times_without_offset, 2U);
  EXPECT_THAT(joined(report.notes),
              AllOf(HasSubstr("no UTC offset"), HasSubstr("local time"), HasSubstr("'timestamp'")));

  chase::testing::TempCsv with_offset(
      "timestamp,carbon_intensity\n2026-03-01T00:00:00Z,100\n2026-03-01T01:00:00+00:00,110\n",
      "_offset");
  CarbonLoadReport clean;
  load_carbon_csv(with_offset.path(), {}, &clean);
  EXPECT_FALSE(clean.local_times_suspected);
  EXPECT_EQ(clean.times_without_offset, 0U);
  EXPECT_TRUE(clean.notes.empty());

  chase::testing::TempCsv says_utc(
      "UTC time,carbon_intensity\n2026-03-01 00:00:00,100\n2026-03-01 01:00:00,110\n", "_utc");
  CarbonLoadReport utc;
  load_carbon_csv(says_utc.path(), {}, &utc);
  EXPECT_FALSE(utc.local_times_suspected);
}

TEST(CarbonFormats, AGenericPointTimeValueFileIsNotConverted) {
  // Without WattTime's metadata columns the unit is unknown: read as it is (g/kWh).
  chase::testing::TempCsv csv(
      "point_time,value\n2026-03-01T00:00:00Z,100\n"
      "2026-03-01T00:05:00Z,110\n");
  CarbonLoadReport report;
  EXPECT_THAT(load_carbon_csv(csv.path(), {}, &report).values(), ElementsAre(100, 110));
  EXPECT_EQ(report.format, "");
}

TEST(CarbonFormats, FillKeepsEstimatedFlagsAndFlagsFilledPoints) {
  CarbonCsvOptions options;
  options.fill = GapFill::kPrevious;
  const auto series = load_carbon_csv(format_fixture("ukgrid_intensity_range.json"), options);
  EXPECT_THAT(series.values(), ElementsAre(190, 205, 207, 207, 215));
  EXPECT_TRUE(series.is_estimated(1));  // a forecast in the file
  EXPECT_TRUE(series.is_estimated(3));  // filled
  EXPECT_FALSE(series.is_estimated(4));
}

TEST(CarbonFormats, EstimatedFlagsMustMatchTheTimes) {
  EXPECT_THROW(CarbonSeries({at("2026-03-01T00:00:00Z")}, {1.0}, hours(1), "", {}, {true, false}),
               Error);
  const CarbonSeries none({at("2026-03-01T00:00:00Z")}, {1.0}, hours(1), "", {}, {false});
  EXPECT_TRUE(none.estimated().empty());
  EXPECT_FALSE(none.is_estimated(0));
}

}  // namespace
}  // namespace chase
