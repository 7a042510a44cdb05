#include "chase/time.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "support/errors.h"

namespace chase {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A UTC time built from calendar fields, independent of the parser under test.
UtcTime utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  const std::chrono::year_month_day date{std::chrono::year(y), std::chrono::month(mo),
                                         std::chrono::day(d)};
  return std::chrono::sys_days(date) + hours(h) + minutes(mi) + seconds(s);
}

TEST(SystemClock, IsSharedAndReadsTheOsClocks) {
  const auto& clock = system_clock();
  ASSERT_NE(clock, nullptr);
  EXPECT_EQ(clock.get(), system_clock().get());
  const auto before = std::chrono::system_clock::now();
  const auto now = clock->utc_now();
  EXPECT_GE(now, before);
  EXPECT_LE(now - before, seconds(5));
  const auto m1 = clock->monotonic();
  const auto m2 = clock->monotonic();
  EXPECT_LE(m1, m2);
}

TEST(SystemClock, IsTheSameObjectFromEveryThread) {
  std::vector<const Clock*> seen(4, nullptr);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&seen, i] { seen[i] = system_clock().get(); });
  }
  for (auto& thread : threads) thread.join();
  for (const Clock* clock : seen) EXPECT_EQ(clock, system_clock().get());
}

TEST(ManualClock, MovesOnlyWhenAdvanced) {
  ManualClock clock(utc(2021, 7, 1, 13));
  EXPECT_EQ(clock.utc_now(), utc(2021, 7, 1, 13));
  clock.advance(Seconds(1.5));
  clock.advance(nanoseconds(500'000'000));
  EXPECT_EQ(clock.monotonic(), seconds(2));
  EXPECT_EQ(clock.utc_now(), utc(2021, 7, 1, 13, 0, 2));
}

TEST(ParseUtcTime, AcceptsIso8601WithZ) {
  EXPECT_EQ(parse_utc_time("2021-07-01T13:00:00Z"), utc(2021, 7, 1, 13));
  EXPECT_EQ(parse_utc_time("2021-07-01T13:00:00z"), utc(2021, 7, 1, 13));
  EXPECT_EQ(parse_utc_time("1970-01-01T00:00:00Z"), UtcTime{});
}

TEST(ParseUtcTime, AcceptsSpaceSeparatorAndNoZoneAsUtc) {
  EXPECT_EQ(parse_utc_time("2020-01-01 00:00:00"), utc(2020, 1, 1));
  EXPECT_EQ(parse_utc_time("2020-12-31 23:59:59"), utc(2020, 12, 31, 23, 59, 59));
  EXPECT_EQ(parse_utc_time("2020-12-31T23:59:59"), utc(2020, 12, 31, 23, 59, 59));
}

TEST(ParseUtcTime, AcceptsMinutesWithoutSeconds) {
  EXPECT_EQ(parse_utc_time("2021-07-01T13:45"), utc(2021, 7, 1, 13, 45));
  EXPECT_EQ(parse_utc_time("2021-07-01 13:45Z"), utc(2021, 7, 1, 13, 45));
  EXPECT_EQ(parse_utc_time("2021-07-01T13:45+01:00"), utc(2021, 7, 1, 12, 45));
}

TEST(ParseUtcTime, AcceptsADateAloneAsMidnightUtc) {
  EXPECT_EQ(parse_utc_time("2021-07-01"), utc(2021, 7, 1));
  EXPECT_EQ(parse_utc_time("2024-02-29"), utc(2024, 2, 29));
}

TEST(ParseUtcTime, AppliesOffsets) {
  const UtcTime noon = utc(2021, 7, 1, 12);
  EXPECT_EQ(parse_utc_time("2021-07-01T14:00:00+02:00"), noon);
  EXPECT_EQ(parse_utc_time("2021-07-01T14:00:00+0200"), noon);
  EXPECT_EQ(parse_utc_time("2021-07-01T14:00:00+02"), noon);
  EXPECT_EQ(parse_utc_time("2021-07-01T07:00:00-05:00"), noon);
  EXPECT_EQ(parse_utc_time("2021-07-01T07:00:00-0500"), noon);
  EXPECT_EQ(parse_utc_time("2021-07-01T17:45:00+05:45"), noon);  // Nepal
  EXPECT_EQ(parse_utc_time("2021-07-01T12:00:00+00:00"), noon);
  EXPECT_EQ(parse_utc_time("2021-07-01T12:00:00-00:00"), noon);
  EXPECT_EQ(parse_utc_time("2022-10-20T06:20:00+00:00"), utc(2022, 10, 20, 6, 20));
}

TEST(ParseUtcTime, OffsetsCrossDayMonthAndYearBoundaries) {
  EXPECT_EQ(parse_utc_time("2021-01-01T01:00:00+02:00"), utc(2020, 12, 31, 23));
  EXPECT_EQ(parse_utc_time("2020-12-31T22:00:00-03:00"), utc(2021, 1, 1, 1));
  EXPECT_EQ(parse_utc_time("2024-03-01T00:30:00+01:00"), utc(2024, 2, 29, 23, 30));
}

TEST(ParseUtcTime, KeepsFractionalSeconds) {
  EXPECT_EQ(parse_utc_time("2021-07-01T13:00:00.5Z"), utc(2021, 7, 1, 13) + milliseconds(500));
  EXPECT_EQ(parse_utc_time("2021-07-01T13:00:00.123Z"), utc(2021, 7, 1, 13) + milliseconds(123));
  EXPECT_EQ(parse_utc_time("2021-07-01 13:00:00.000001"),
            utc(2021, 7, 1, 13) + std::chrono::microseconds(1));
  EXPECT_EQ(parse_utc_time("2021-07-01T13:00:00.123456789+01:00"),
            utc(2021, 7, 1, 12) + nanoseconds(123456789));
  // Digits past the clock's nanosecond precision are accepted and dropped.
  EXPECT_EQ(parse_utc_time("2021-07-01T13:00:00.1234567899Z"),
            utc(2021, 7, 1, 13) + nanoseconds(123456789));
}

TEST(ParseUtcTime, KnowsLeapYears) {
  EXPECT_TRUE(parse_utc_time("2020-02-29T00:00:00Z"));  // divisible by 4
  EXPECT_TRUE(parse_utc_time("2000-02-29T00:00:00Z"));  // divisible by 400
  EXPECT_FALSE(parse_utc_time("2021-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_utc_time("1900-02-29T00:00:00Z"));  // divisible by 100, not 400
  EXPECT_FALSE(parse_utc_time("2020-02-30"));
  EXPECT_EQ(*parse_utc_time("2020-03-01") - *parse_utc_time("2020-02-28"), days(2));
}

TEST(ParseUtcTime, ChecksDayAgainstTheMonthsLength) {
  EXPECT_TRUE(parse_utc_time("2021-01-31"));
  EXPECT_TRUE(parse_utc_time("2021-12-31"));
  EXPECT_FALSE(parse_utc_time("2021-04-31"));
  EXPECT_FALSE(parse_utc_time("2021-06-31"));
  EXPECT_FALSE(parse_utc_time("2021-09-31"));
  EXPECT_FALSE(parse_utc_time("2021-11-31"));
  EXPECT_FALSE(parse_utc_time("2021-01-32"));
}

TEST(ParseUtcTime, RejectsOutOfRangeFields) {
  for (const char* text :
       {"2021-00-01", "2021-13-01", "2021-07-00", "2021-07-01T24:00:00Z", "2021-07-01T23:60:00Z",
        "2021-07-01T23:59:60Z", "2021-07-01T12:00:00+24:00", "2021-07-01T12:00:00+01:60"}) {
    EXPECT_FALSE(parse_utc_time(text)) << text;
  }
}

TEST(ParseUtcTime, RejectsMalformedText) {
  for (const char* text : {
           "",
           " ",
           "2021",
           "2021-07",
           "2021-7-01",
           "21-07-01",
           "2021-07-1",
           "2021/07/01",
           "20210701",
           "2021-07-01T",
           "2021-07-01 ",
           " 2021-07-01",
           "2021-07-01T13",
           "2021-07-01T13:",
           "2021-07-01T1:00",
           "2021-07-01T13:0",
           "2021-07-01T13:00:",
           "2021-07-01T13:00:0",
           "2021-07-01T13:00:00.",
           "2021-07-01T13:00:00.Z",
           "2021-07-01T13:00:00,5Z",
           "2021-07-01X13:00:00",
           "2021-07-01T13:00:00ZZ",
           "2021-07-01T13:00:00Z ",
           "2021-07-01T13:00:00 Z",
           "2021-07-01T13:00:00+",
           "2021-07-01T13:00:00+1",
           "2021-07-01T13:00:00+01:",
           "2021-07-01T13:00:00+01:0",
           "2021-07-01T13:00:00+010",
           "2021-07-01T13:00:00+01:00junk",
           "2021-07-01T13:00:00 UTC",
           "2021-07-01Z",
           "2021-07-01T13:00:00.5.5Z",
           "-2021-07-01",
           "+2021-07-01",
           "2021-07-01\n",
           "abcd-ef-gh",
           "2021-07-01T13:00:00\xEF\xBB\xBF",
       }) {
    EXPECT_FALSE(parse_utc_time(text)) << "'" << text << "'";
  }
}

TEST(ParseUtcTime, RejectsTimesTheClockCannotHold) {
  // A nanosecond system_clock spans about 1677..2262; outside it a time would wrap silently.
  EXPECT_FALSE(parse_utc_time("9999-12-31T23:59:59Z"));
  EXPECT_FALSE(parse_utc_time("0001-01-01"));
  EXPECT_TRUE(parse_utc_time("2200-01-01"));
  EXPECT_TRUE(parse_utc_time("1700-01-01"));
}

TEST(ParseUtcTime, IgnoresEmbeddedNulAsJunk) {
  using namespace std::string_view_literals;
  EXPECT_FALSE(parse_utc_time("2021-07-01\0"sv));
  EXPECT_FALSE(parse_utc_time("2021-07-01T13:00:00Z\0"sv));
}

TEST(FormatUtcTime, WritesIso8601WithZ) {
  EXPECT_EQ(format_utc_time(utc(2021, 7, 1, 13)), "2021-07-01T13:00:00Z");
  EXPECT_EQ(format_utc_time(UtcTime{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_utc_time(utc(2024, 2, 29, 23, 59, 59)), "2024-02-29T23:59:59Z");
}

TEST(FormatUtcTime, AddsMillisecondsOnlyWhenNonZero) {
  EXPECT_EQ(format_utc_time(utc(2021, 7, 1, 13) + milliseconds(123)), "2021-07-01T13:00:00.123Z");
  EXPECT_EQ(format_utc_time(utc(2021, 7, 1, 13) + milliseconds(5)), "2021-07-01T13:00:00.005Z");
  EXPECT_EQ(format_utc_time(utc(2021, 7, 1, 13) + milliseconds(500)), "2021-07-01T13:00:00.500Z");
  // Below a millisecond is not shown (truncated, never rounded up into the next second).
  EXPECT_EQ(format_utc_time(utc(2021, 7, 1, 13) + std::chrono::microseconds(999)),
            "2021-07-01T13:00:00Z");
  EXPECT_EQ(format_utc_time(utc(2021, 7, 1, 13) + nanoseconds(999'999'999)),
            "2021-07-01T13:00:00.999Z");
}

TEST(FormatUtcTime, HandlesTimesBeforeTheEpoch) {
  EXPECT_EQ(format_utc_time(UtcTime{} - seconds(1)), "1969-12-31T23:59:59Z");
  EXPECT_EQ(format_utc_time(UtcTime{} - milliseconds(1)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_utc_time(utc(1900, 3, 1, 6, 30)), "1900-03-01T06:30:00Z");
}

TEST(UtcTimeRoundTrip, FormatThenParseGivesTheSameTime) {
  const std::vector<UtcTime> times = {
      UtcTime{},
      utc(2020, 1, 1),
      utc(2020, 2, 29, 12, 34, 56) + milliseconds(789),
      utc(2021, 12, 31, 23, 59, 59) + milliseconds(1),
      utc(1999, 12, 31, 23, 59, 59),
      utc(2100, 3, 1, 0, 0, 1),
      UtcTime{} - milliseconds(1),
  };
  for (const UtcTime time : times) {
    const std::string text = format_utc_time(time);
    EXPECT_EQ(parse_utc_time(text), time) << text;
  }
}

TEST(UtcTimeRoundTrip, ParseThenFormatGivesCanonicalText) {
  EXPECT_EQ(format_utc_time(*parse_utc_time("2021-07-01 15:00:00+02:00")), "2021-07-01T13:00:00Z");
  EXPECT_EQ(format_utc_time(*parse_utc_time("2021-07-01T13:00:00.120Z")),
            "2021-07-01T13:00:00.120Z");
  EXPECT_EQ(format_utc_time(*parse_utc_time("2021-07-01")), "2021-07-01T00:00:00Z");
}

TEST(UtcTimeRoundTrip, EveryDayOfALeapYear) {
  // Walks 2024 day by day: the formatter and the parser must agree on every date.
  UtcTime time = utc(2024, 1, 1, 6, 30);
  for (int day = 0; day < 366; ++day, time += days(1)) {
    const std::string text = format_utc_time(time);
    ASSERT_EQ(parse_utc_time(text), time) << text;
  }
  EXPECT_EQ(format_utc_time(time), "2025-01-01T06:30:00Z");
}

TEST(ParseDuration, TakesEveryUnitOfTheGrammar) {
  EXPECT_EQ(parse_duration("90s"), seconds(90));
  EXPECT_EQ(parse_duration("15m"), minutes(15));
  EXPECT_EQ(parse_duration("15min"), minutes(15));
  EXPECT_EQ(parse_duration("1h"), hours(1));
  EXPECT_EQ(parse_duration("2d"), days(2));
}

TEST(ParseDuration, ReadsABareNumberAsSeconds) {
  EXPECT_EQ(parse_duration("900"), seconds(900));
  EXPECT_EQ(parse_duration("1"), seconds(1));
}

TEST(ParseDuration, TakesUpToTwelveDigitsAndLeadingZeros) {
  EXPECT_EQ(parse_duration("030m"), minutes(30));
  EXPECT_EQ(parse_duration("999999999999d"), days(999'999'999'999));
  EXPECT_FALSE(parse_duration("1000000000000s"));  // 13 digits
}

TEST(ParseDuration, RejectsZero) {
  for (const char* text : {"0", "0s", "0m", "000h", "0d"}) {
    EXPECT_FALSE(parse_duration(text)) << "'" << text << "'";
  }
}

TEST(ParseDuration, RejectsTextWithoutALeadingWholeNumber) {
  for (const char* text : {"", "h", "soon", "-1h", "+1h", " 1h", "1.5h", ".5h", "1e3s"}) {
    EXPECT_FALSE(parse_duration(text)) << "'" << text << "'";
  }
}

TEST(ParseDuration, RejectsOtherUnits) {
  for (const char* text :
       {"1w", "1ms", "1H", "1D", "1 h", "1h ", "1hour", "1mins", "1sec", "1hm"}) {
    EXPECT_FALSE(parse_duration(text)) << "'" << text << "'";
  }
}

TEST(ParseDurationOption, ReturnsTheDuration) {
  EXPECT_EQ(parse_duration_option("30m", "--period"), minutes(30));
  EXPECT_EQ(parse_duration_option("1d", "--resample"), days(1));
}

TEST(ParseDurationOption, NamesTheFlagTheTextAndTheGrammar) {
  const auto message = testing::error_message([] { parse_duration_option("soon", "--period"); },
                                              ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, AllOf(HasSubstr("--period 'soon'"), HasSubstr("not a duration"),
                             HasSubstr(std::string(kDurationGrammar)),
                             HasSubstr("a bare number is seconds")));
  EXPECT_THAT(testing::error_message([] { parse_duration_option("0s", "--resample"); },
                                     ErrorCode::kInvalidArgument),
              HasSubstr("--resample '0s'"));
}

TEST(ParseTimeOption, ReturnsTheTime) {
  EXPECT_EQ(parse_time_option("2021-07-01T13:00:00Z", "--start"), utc(2021, 7, 1, 13));
  EXPECT_EQ(parse_time_option("2021-07-01 13:00:00", "--from"), utc(2021, 7, 1, 13));
}

TEST(ParseTimeOption, NamesTheFlagTheTextAndTheGrammar) {
  const auto message = testing::error_message([] { parse_time_option("tomorrow", "--start"); },
                                              ErrorCode::kInvalidArgument);
  EXPECT_THAT(message, AllOf(HasSubstr("--start 'tomorrow'"), HasSubstr("not a UTC time"),
                             HasSubstr(std::string(kTimeGrammar))));
}

}  // namespace
}  // namespace chase
