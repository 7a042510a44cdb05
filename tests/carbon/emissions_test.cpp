#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "chase/carbon.h"
#include "chase/error.h"
#include "support/errors.h"

namespace chase {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr double kOneKwh = 3.6e6;  // J

UtcTime at(const char* text) {
  const auto time = parse_utc_time(text);
  EXPECT_TRUE(time) << text;
  return time.value_or(UtcTime{});
}

using chase::testing::error_message;

// Hourly from 2021-07-01T00:00Z: 100, 200, 400 gCO2eq/kWh; covers [00:00, 03:00).
CarbonSeries hourly() {
  return CarbonSeries(
      {at("2021-07-01T00:00:00Z"), at("2021-07-01T01:00:00Z"), at("2021-07-01T02:00:00Z")},
      {100, 200, 400}, hours(1), "grid.csv");
}

// As hourly() but with 02:00 missing: a gap over [02:00, 03:00); covers [00:00, 04:00).
CarbonSeries hourly_with_gap() {
  return CarbonSeries(
      {at("2021-07-01T00:00:00Z"), at("2021-07-01T01:00:00Z"), at("2021-07-01T03:00:00Z")},
      {100, 200, 400}, hours(1), "gappy.csv");
}

TEST(EmissionsConstant, IsEnergyInKwhTimesIntensity) {
  EXPECT_DOUBLE_EQ(emissions_g(kOneKwh, 100), 100);
  EXPECT_DOUBLE_EQ(emissions_g(1000, 360), 0.1);  // 1 kJ at 360 g/kWh
  EXPECT_DOUBLE_EQ(emissions_g(7.2e6, 242.9), 485.8);
  EXPECT_EQ(emissions_g(0, 500), 0);
  EXPECT_EQ(emissions_g(kOneKwh, 0), 0);
  EXPECT_DOUBLE_EQ(emissions_g(-kOneKwh, 100), -100);  // linear; the sign is the caller's
  EXPECT_EQ(kJoulesPerKwh, kOneKwh);
}

TEST(EmissionsConstant, RejectsBadIntensityOrEnergy) {
  const double nan = std::nan("");
  const double inf = std::numeric_limits<double>::infinity();
  for (const double intensity : {nan, inf, -1.0}) {
    EXPECT_THAT(
        error_message([&] { emissions_g(kOneKwh, intensity); }, ErrorCode::kInvalidArgument),
        HasSubstr("intensity"));
  }
  for (const double energy : {nan, inf, -inf}) {
    EXPECT_THAT(error_message([&] { emissions_g(energy, 100); }, ErrorCode::kInvalidArgument),
                HasSubstr("energy"));
    EXPECT_THROW(
        emissions_g(energy, at("2021-07-01T00:00:00Z"), at("2021-07-01T01:00:00Z"), hourly()),
        Error);
  }
}

TEST(EmissionsOverSeries, ConstantIntensityMatchesTheConstantFormula) {
  const CarbonSeries flat(
      {at("2021-07-01T00:00:00Z"), at("2021-07-01T01:00:00Z"), at("2021-07-01T02:00:00Z")},
      {250, 250, 250}, hours(1));
  EXPECT_DOUBLE_EQ(emissions_g(5e6, at("2021-07-01T00:10:00Z"), at("2021-07-01T02:50:00Z"), flat),
                   emissions_g(5e6, 250));
}

TEST(EmissionsOverSeries, WindowInsideOneInterval) {
  EXPECT_DOUBLE_EQ(
      emissions_g(kOneKwh, at("2021-07-01T01:15:00Z"), at("2021-07-01T01:45:00Z"), hourly()), 200);
}

TEST(EmissionsOverSeries, WindowAcrossTwoIntervals) {
  // [00:30, 01:30): half at 100, half at 200 → 150 g per kWh.
  EXPECT_DOUBLE_EQ(
      emissions_g(kOneKwh, at("2021-07-01T00:30:00Z"), at("2021-07-01T01:30:00Z"), hourly()), 150);
  // [00:45, 01:15) with 2 kWh: 1 kWh at 100 + 1 kWh at 200 = 300 g.
  EXPECT_DOUBLE_EQ(
      emissions_g(2 * kOneKwh, at("2021-07-01T00:45:00Z"), at("2021-07-01T01:15:00Z"), hourly()),
      300);
  // [00:40, 01:10), an uneven split: 20 min at 100 and 10 min at 200 of a 30 min window.
  EXPECT_DOUBLE_EQ(
      emissions_g(3 * kOneKwh, at("2021-07-01T00:40:00Z"), at("2021-07-01T01:10:00Z"), hourly()),
      2 * 100 + 1 * 200);
}

TEST(EmissionsOverSeries, WindowAcrossThreeIntervals) {
  // [00:30, 02:15) = 105 min: 30 min at 100, 60 min at 200, 15 min at 400.
  // 7 kWh spread evenly: 2 kWh·100 + 4 kWh·200 + 1 kWh·400 = 1400 g.
  EXPECT_DOUBLE_EQ(
      emissions_g(7 * kOneKwh, at("2021-07-01T00:30:00Z"), at("2021-07-01T02:15:00Z"), hourly()),
      1400);
}

TEST(EmissionsOverSeries, WindowOnExactBoundaries) {
  const CarbonSeries series = hourly();
  EXPECT_DOUBLE_EQ(
      emissions_g(kOneKwh, at("2021-07-01T01:00:00Z"), at("2021-07-01T02:00:00Z"), series), 200);
  // The whole series: one kWh per hour at 100, 200 and 400.
  EXPECT_DOUBLE_EQ(emissions_g(3 * kOneKwh, series.start(), series.end(), series), 700);
  EXPECT_DOUBLE_EQ(
      emissions_g(2 * kOneKwh, at("2021-07-01T00:00:00Z"), at("2021-07-01T02:00:00Z"), series),
      300);
}

TEST(EmissionsOverSeries, SubSecondSplits) {
  // A 1 s window straddling 01:00 by half a second each side.
  EXPECT_DOUBLE_EQ(
      emissions_g(kOneKwh, at("2021-07-01T00:59:59.5Z"), at("2021-07-01T01:00:00.5Z"), hourly()),
      150);
}

TEST(EmissionsOverSeries, ZeroLengthWindowUsesTheIntensityInForce) {
  const CarbonSeries series = hourly();
  const UtcTime one = at("2021-07-01T01:00:00Z");
  EXPECT_DOUBLE_EQ(emissions_g(kOneKwh, one, one, series), 200);
  const UtcTime just_before = one - milliseconds(1);
  EXPECT_DOUBLE_EQ(emissions_g(kOneKwh, just_before, just_before, series), 100);
  EXPECT_EQ(emissions_g(0, one, one, series), 0);
  // The end of the series is not covered, even for an empty window.
  EXPECT_THROW(emissions_g(kOneKwh, series.end(), series.end(), series), Error);
}

TEST(EmissionsOverSeries, RejectsAWindowThatEndsBeforeItStarts) {
  const std::string message = error_message(
      [] {
        emissions_g(kOneKwh, at("2021-07-01T02:00:00Z"), at("2021-07-01T01:00:00Z"), hourly());
      },
      ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, AllOf(HasSubstr("2021-07-01T02:00:00Z"), HasSubstr("2021-07-01T01:00:00Z")));
}

TEST(EmissionsOverSeries, RejectsWindowsOutsideTheCoverage) {
  const CarbonSeries series = hourly();
  const std::string coverage = "[2021-07-01T00:00:00Z, 2021-07-01T03:00:00Z)";
  // Starting before the series.
  std::string message = error_message(
      [&] { emissions_g(kOneKwh, at("2021-06-30T23:30:00Z"), at("2021-07-01T00:30:00Z"), series); },
      ErrorCode::kInvalidArgument);
  EXPECT_THAT(message,
              AllOf(HasSubstr("2021-06-30T23:30:00Z"), HasSubstr(coverage), HasSubstr("grid.csv")));
  // Running past its end: the first uncovered time is the series' end.
  message = error_message(
      [&] {
        emissions_g(kOneKwh, at("2021-07-01T02:30:00Z"), at("2021-07-01T03:00:00.001Z"), series);
      },
      ErrorCode::kInvalidArgument);
  EXPECT_THAT(message,
              AllOf(HasSubstr("no intensity for 2021-07-01T03:00:00Z"), HasSubstr(coverage)));
  // Entirely after it.
  EXPECT_THROW(emissions_g(kOneKwh, at("2021-07-02T00:00:00Z"), at("2021-07-02T01:00:00Z"), series),
               Error);
  // Ending exactly at the end is fine.
  EXPECT_DOUBLE_EQ(
      emissions_g(kOneKwh, at("2021-07-01T02:30:00Z"), at("2021-07-01T03:00:00Z"), series), 400);
}

TEST(EmissionsOverSeries, RejectsAWindowOverAGap) {
  const CarbonSeries series = hourly_with_gap();
  const std::string message = error_message(
      [&] { emissions_g(kOneKwh, at("2021-07-01T01:30:00Z"), at("2021-07-01T03:30:00Z"), series); },
      ErrorCode::kInvalidArgument);
  EXPECT_THAT(message,
              AllOf(HasSubstr("gap from 2021-07-01T02:00:00Z to 2021-07-01T03:00:00Z"),
                    HasSubstr("no intensity for 2021-07-01T02:00:00Z"), HasSubstr("gappy.csv")));
  // A window starting inside the gap names that time.
  EXPECT_THAT(error_message(
                  [&] {
                    emissions_g(kOneKwh, at("2021-07-01T02:10:00Z"), at("2021-07-01T03:10:00Z"),
                                series);
                  },
                  ErrorCode::kInvalidArgument),
              HasSubstr("no intensity for 2021-07-01T02:10:00Z"));
  // Windows up to the gap, or after it, are fine.
  EXPECT_DOUBLE_EQ(
      emissions_g(kOneKwh, at("2021-07-01T01:30:00Z"), at("2021-07-01T02:00:00Z"), series), 200);
  EXPECT_DOUBLE_EQ(
      emissions_g(kOneKwh, at("2021-07-01T03:00:00Z"), at("2021-07-01T04:00:00Z"), series), 400);
}

TEST(EmissionsOverSeries, RejectsAnEmptySeries) {
  EXPECT_THAT(error_message(
                  [] {
                    emissions_g(kOneKwh, at("2021-07-01T00:00:00Z"), at("2021-07-01T01:00:00Z"),
                                CarbonSeries());
                  },
                  ErrorCode::kInvalidArgument),
              HasSubstr("empty"));
}

TEST(EmissionsOverSeries, HalfHourlySeriesAndLongWindows) {
  // 48 half-hours alternating 100 and 300: any whole-hour window averages 200.
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (int i = 0; i < 48; ++i) {
    times.push_back(at("2022-10-20T00:00:00Z") + minutes(30 * i));
    values.push_back(i % 2 == 0 ? 100 : 300);
  }
  const CarbonSeries series(times, values, minutes(30));
  EXPECT_DOUBLE_EQ(emissions_g(24 * kOneKwh, series.start(), series.end(), series), 24 * 200);
  EXPECT_DOUBLE_EQ(
      emissions_g(kOneKwh, at("2022-10-20T05:15:00Z"), at("2022-10-20T06:15:00Z"), series), 200);
  EXPECT_DOUBLE_EQ(
      emissions_g(kOneKwh, at("2022-10-20T05:00:00Z"), at("2022-10-20T05:30:00Z"), series), 100);
}

}  // namespace
}  // namespace chase
