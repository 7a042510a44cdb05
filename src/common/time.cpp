#include "chase/time.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "chase/error.h"

namespace chase {

namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// A cursor over the text being parsed. Every reader either consumes exactly what it asked for or
// returns nullopt/false, so the caller can bail out on the first mismatch.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool at_end() const noexcept { return pos_ == text_.size(); }
  char peek() const noexcept { return at_end() ? '\0' : text_[pos_]; }

  // Consumes `c` when it is next.
  bool accept(char c) noexcept {
    if (at_end() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  // Consumes exactly `count` ASCII digits and returns their value.
  std::optional<int> digits(int count) noexcept {
    int value = 0;
    for (int i = 0; i < count; ++i) {
      if (!is_digit(peek())) return std::nullopt;
      value = value * 10 + (text_[pos_++] - '0');
    }
    return value;
  }

  // Consumes a run of one or more digits as a fraction of a second. Digits past nanosecond
  // precision are checked but dropped: the clock cannot hold them.
  std::optional<nanoseconds> fraction() noexcept {
    std::int64_t ns = 0;
    int count = 0;
    for (; is_digit(peek()); ++pos_, ++count) {
      if (count < 9) ns = ns * 10 + (text_[pos_] - '0');
    }
    if (count == 0) return std::nullopt;
    for (int i = count; i < 9; ++i) ns *= 10;
    return nanoseconds(ns);
  }

 private:
  static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// 12 digits of days (under 9e16 s) still fit a count of seconds; more could overflow it.
constexpr std::size_t kMaxDurationDigits = 12;

// "YYYY-MM-DD", validated against the calendar (month lengths, leap years).
std::optional<std::chrono::sys_days> parse_date(Cursor& in) {
  const auto year = in.digits(4);
  if (!year || !in.accept('-')) return std::nullopt;
  const auto month = in.digits(2);
  if (!month || !in.accept('-')) return std::nullopt;
  const auto day = in.digits(2);
  if (!day) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year(*year),
                                         std::chrono::month(static_cast<unsigned>(*month)),
                                         std::chrono::day(static_cast<unsigned>(*day))};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days(date);
}

// "HH:MM[:SS[.fff...]]" as the time since midnight; no leap second, no "24:00".
std::optional<nanoseconds> parse_time_of_day(Cursor& in) {
  const auto hour = in.digits(2);
  if (!hour || *hour > 23 || !in.accept(':')) return std::nullopt;
  const auto minute = in.digits(2);
  if (!minute || *minute > 59) return std::nullopt;
  nanoseconds time = hours(*hour) + minutes(*minute);
  if (!in.accept(':')) return time;
  const auto second = in.digits(2);
  if (!second || *second > 59) return std::nullopt;
  time += seconds(*second);
  if (!in.accept('.')) return time;
  const auto fraction = in.fraction();
  if (!fraction) return std::nullopt;
  return time + *fraction;
}

// The zone suffix as the offset from UTC: nothing or "Z" (UTC), "+hh:mm", "+hhmm", "+hh", or the
// same with '-'. RFC 3339 allows a lowercase 'z', so it is accepted too.
std::optional<minutes> parse_zone(Cursor& in) {
  if (in.at_end()) return minutes(0);
  if (in.accept('Z') || in.accept('z')) return minutes(0);
  int sign = 0;
  if (in.accept('+')) {
    sign = 1;
  } else if (in.accept('-')) {
    sign = -1;
  } else {
    return std::nullopt;
  }
  const auto hour = in.digits(2);
  if (!hour || *hour > 23) return std::nullopt;
  int minute = 0;
  if (!in.at_end()) {
    in.accept(':');  // optional: "+hh:mm" and "+hhmm" are both ISO 8601
    const auto parsed = in.digits(2);
    if (!parsed || *parsed > 59) return std::nullopt;
    minute = *parsed;
  }
  return sign * (hours(*hour) + minutes(minute));
}

// Converts a UTC instant given as whole seconds plus a sub-second part to a UtcTime, or nullopt
// when the clock cannot represent it (with nanosecond ticks, before 1677 or after 2262): a silently
// wrapped time would be garbage.
std::optional<UtcTime> to_utc_time(seconds whole, nanoseconds sub_second) {
  using Tick = UtcTime::duration;
  const auto lowest = std::chrono::ceil<seconds>(Tick::min()) + seconds(1);
  const auto highest = std::chrono::floor<seconds>(Tick::max()) - seconds(1);
  if (whole < lowest || whole > highest) return std::nullopt;
  return UtcTime(std::chrono::duration_cast<Tick>(whole) +
                 std::chrono::duration_cast<Tick>(sub_second));
}

}  // namespace

const std::shared_ptr<Clock>& system_clock() {
  // A function-local static: initialised once, thread-safely, on first use.
  static const std::shared_ptr<Clock> clock = std::make_shared<SystemClock>();
  return clock;
}

std::optional<std::chrono::seconds> parse_time_of_day(std::string_view text) {
  Cursor in(text);
  const auto hour = in.digits(2);
  if (!hour || *hour > 23 || !in.accept(':')) return std::nullopt;
  const auto minute = in.digits(2);
  if (!minute || *minute > 59) return std::nullopt;
  int second = 0;
  if (in.accept(':')) {
    const auto parsed = in.digits(2);
    if (!parsed || *parsed > 59) return std::nullopt;
    second = *parsed;
  }
  if (!in.at_end()) return std::nullopt;
  return std::chrono::seconds(*hour * 3600 + *minute * 60 + second);
}

std::string format_time_of_day(std::chrono::seconds since_midnight) {
  const auto total = since_midnight.count();
  const auto seconds = total % 60;
  return seconds == 0 ? fmt::format("{:02}:{:02}", total / 3600, total / 60 % 60)
                      : fmt::format("{:02}:{:02}:{:02}", total / 3600, total / 60 % 60, seconds);
}

std::optional<UtcTime> parse_utc_time(std::string_view text) {
  Cursor in(text);
  const auto date = parse_date(in);
  if (!date) return std::nullopt;
  if (in.at_end()) return to_utc_time(date->time_since_epoch(), nanoseconds(0));  // date alone

  if (!in.accept('T') && !in.accept('t') && !in.accept(' ')) return std::nullopt;
  const auto time_of_day = parse_time_of_day(in);
  if (!time_of_day) return std::nullopt;
  const auto offset = parse_zone(in);
  if (!offset || !in.at_end()) return std::nullopt;

  // Local time = UTC + offset, so UTC = local time - offset.
  const auto whole = std::chrono::floor<seconds>(*time_of_day);
  const seconds utc_seconds = date->time_since_epoch() + whole - *offset;
  return to_utc_time(utc_seconds, *time_of_day - whole);
}

std::string format_utc_time(UtcTime time) {
  // floor, not truncation, so that times before 1970 land on the right day and millisecond.
  const auto ms = std::chrono::floor<milliseconds>(time);
  const auto day = std::chrono::floor<days>(ms);
  const std::chrono::year_month_day date{day};
  const std::chrono::hh_mm_ss<milliseconds> clock_time{ms - day};
  std::string text = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                                 static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                                 static_cast<unsigned>(date.day()), clock_time.hours().count(),
                                 clock_time.minutes().count(), clock_time.seconds().count());
  if (clock_time.subseconds().count() != 0) {
    text += fmt::format(".{:03}", clock_time.subseconds().count());
  }
  text += 'Z';
  return text;
}

std::optional<seconds> parse_duration(std::string_view text) {
  const std::size_t digits = std::min(text.find_first_not_of("0123456789"), text.size());
  if (digits == 0 || digits > kMaxDurationDigits) return std::nullopt;
  std::int64_t number = 0;
  for (const char c : text.substr(0, digits)) number = number * 10 + (c - '0');
  if (number == 0) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  if (unit.empty() || unit == "s") return seconds(number);
  if (unit == "m" || unit == "min") return minutes(number);
  if (unit == "h") return hours(number);
  if (unit == "d") return days(number);
  return std::nullopt;
}

seconds parse_duration_option(std::string_view text, std::string_view flag) {
  const auto duration = parse_duration(text);
  if (!duration) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} '{}' is not a duration: give {}; a bare number is seconds.", flag,
                            text, kDurationGrammar));
  }
  return *duration;
}

UtcTime parse_time_option(std::string_view text, std::string_view flag) {
  const auto time = parse_utc_time(text);
  if (!time) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} '{}' is not a UTC time; use {}.", flag, text, kTimeGrammar));
  }
  return *time;
}

}  // namespace chase
