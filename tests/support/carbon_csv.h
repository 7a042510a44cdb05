// Test helper: carbon-intensity CSV text for hours around the current time, for commands that read
// a series in real time ("now" must fall inside it).
#pragma once

#include <chrono>
#include <ctime>
#include <functional>
#include <optional>
#include <string>

#include "chase/time.h"

namespace chase::testing {

// "timestamp,carbon_intensity" rows for the whole hours h in [first_hour, last_hour] relative to
// the current hour; value(h) gives the intensity, or nullopt to leave that hour out (a gap).
inline std::string hourly_carbon_csv_around_now(
    int first_hour, int last_hour, const std::function<std::optional<double>(int)>& value) {
  std::string csv = "timestamp,carbon_intensity\n";
  const auto now = std::chrono::floor<std::chrono::hours>(std::chrono::system_clock::now());
  for (int h = first_hour; h <= last_hour; ++h) {
    const auto v = value(h);
    if (!v) continue;
    const auto t = std::chrono::system_clock::to_time_t(now + std::chrono::hours(h));
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    csv += std::string(text) + "," + std::to_string(*v) + "\n";
  }
  return csv;
}

// `days` days of hourly intensity from 2021-01-01 UTC: clean nights (100), dirty days (500 from 06
// to 18 h), under the header "UTC time,carbon_intensity".
inline std::string day_night_carbon_csv(int days) {
  std::string csv = "UTC time,carbon_intensity\n";
  const UtcTime start = *parse_utc_time("2021-01-01T00:00:00Z");
  for (int i = 0; i < 24 * days; ++i) {
    const int hour = i % 24;
    csv += format_utc_time(start + std::chrono::hours(i)) + "," +
           (hour >= 6 && hour < 18 ? "500" : "100") + "\n";
  }
  return csv;
}

}  // namespace chase::testing
