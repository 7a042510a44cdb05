// chase/time.h — clocks and UTC timestamps.
//
// Contract: a Clock supplies two readings: a monotonic one, for measuring durations, and UTC wall
// time, for joining measurements with carbon-intensity series. SystemClock reads the OS clocks;
// ManualClock only moves when told to, so simulations and tests run in virtual time (the
// simulated GPUs and the EnergyMonitor accept any Clock, so a simulated hour takes microseconds).
//
// UTC timestamps are std::chrono::system_clock time points. parse_utc_time() accepts ISO 8601
// ("2021-07-01T13:00:00Z", "...+02:00", fractional seconds) and "YYYY-MM-DD HH:MM:SS" (taken as
// UTC).
//
// Command-line options take durations and times in one grammar: parse_duration(),
// parse_duration_option() and parse_time_option() (README.md, "Durations and times").
//
// Thread safety: SystemClock is stateless and safe everywhere. ManualClock's readers and advance()
// may run concurrently (the time is an atomic). The parsers are pure functions.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace chase {

using UtcTime = std::chrono::system_clock::time_point;
using Seconds = std::chrono::duration<double>;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time since an arbitrary origin, in nanoseconds.
  virtual std::chrono::nanoseconds monotonic() const noexcept = 0;
  virtual UtcTime utc_now() const noexcept = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::nanoseconds monotonic() const noexcept override {
    return std::chrono::steady_clock::now().time_since_epoch();
  }
  UtcTime utc_now() const noexcept override { return std::chrono::system_clock::now(); }
};

// A clock for virtual time: starts at utc_start, moves only through advance().
class ManualClock final : public Clock {
 public:
  explicit ManualClock(UtcTime utc_start = UtcTime{}) : utc_start_(utc_start) {}
  std::chrono::nanoseconds monotonic() const noexcept override {
    return std::chrono::nanoseconds(elapsed_ns_.load(std::memory_order_acquire));
  }
  UtcTime utc_now() const noexcept override {
    return utc_start_ + std::chrono::duration_cast<UtcTime::duration>(monotonic());
  }
  void advance(std::chrono::nanoseconds dt) noexcept {
    elapsed_ns_.fetch_add(dt.count(), std::memory_order_acq_rel);
  }
  void advance(Seconds dt) noexcept {
    advance(std::chrono::duration_cast<std::chrono::nanoseconds>(dt));
  }

 private:
  UtcTime utc_start_;
  std::atomic<std::int64_t> elapsed_ns_{0};
};

// Seconds from `from` to `to` (negative when `to` is earlier), and the time `seconds` after `time`.
inline double seconds_between(UtcTime from, UtcTime to) { return Seconds(to - from).count(); }
inline UtcTime after_seconds(UtcTime time, double seconds) {
  return time + std::chrono::duration_cast<UtcTime::duration>(Seconds(seconds));
}

// The process-wide SystemClock (never null).
const std::shared_ptr<Clock>& system_clock();

// Parses an ISO 8601 / "YYYY-MM-DD HH:MM:SS" timestamp; nullopt when malformed.
std::optional<UtcTime> parse_utc_time(std::string_view text);
// "2021-07-01T13:00:00Z" (with ".123" when the time has a fractional second).
std::string format_utc_time(UtcTime time);
// "HH:MM" or "HH:MM:SS" (00:00 to 23:59:59) as the time since midnight; nullopt when malformed.
std::optional<std::chrono::seconds> parse_time_of_day(std::string_view text);
// "HH:MM" (with ":SS" when the seconds are not 0) of a time since midnight in [0, 24 h).
std::string format_time_of_day(std::chrono::seconds since_midnight);

// Durations and times as every command's options take them (README.md, "Durations and times"),
// in words that the parsers' errors and the commands' --help share.
inline constexpr std::string_view kDurationGrammar =
    "a positive whole number with a unit s, m or min, h, d (e.g. 90s, 30m, 1h, 2d)";
inline constexpr std::string_view kTimeGrammar =
    "ISO 8601 (2021-07-01T00:00:00Z) or YYYY-MM-DD HH:MM:SS";
// `text` as a duration of kDurationGrammar, a bare number being seconds; nullopt when it is not
// one (another unit, a sign, zero, or more than 12 digits).
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// parse_duration() of the value of option `flag`; throws Error(kInvalidArgument) naming the flag,
// the text and the grammar.
std::chrono::seconds parse_duration_option(std::string_view text, std::string_view flag);
// parse_utc_time() of the value of option `flag`; throws Error(kInvalidArgument) likewise.
UtcTime parse_time_option(std::string_view text, std::string_view flag);

}  // namespace chase
