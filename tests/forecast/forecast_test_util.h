// Test helpers shared by the auto-forecaster and rolling-backtest tests: synthetic regular series.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "chase/carbon.h"
#include "chase/error.h"
#include "support/errors.h"

namespace chase::test_util {

inline UtcTime at(const char* text) {
  const auto time = parse_utc_time(text);
  EXPECT_TRUE(time) << text;
  return time.value_or(UtcTime{});
}

// An hourly series of `n` points from `start`; value(i, hour_of_day, rng) gives each value.
template <typename F>
CarbonSeries hourly(std::size_t n, F value, const char* start = "2021-01-01T00:00:00Z",
                    std::vector<ExogenousColumn> exogenous = {}) {
  std::vector<UtcTime> times;
  std::vector<double> values;
  std::mt19937_64 rng(7);
  const UtcTime origin = at(start);
  for (std::size_t i = 0; i < n; ++i) {
    const UtcTime t = origin + std::chrono::hours(static_cast<long>(i));
    const auto second = std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
    times.push_back(t);
    values.push_back(value(i, static_cast<double>((second % 86400) / 3600), rng));
  }
  return CarbonSeries(std::move(times), std::move(values), std::chrono::hours(1), "synthetic",
                      std::move(exogenous));
}

// A random walk (strictly positive): persistence is the best predictor there is.
inline CarbonSeries random_walk(std::size_t n) {
  double level = 400;
  return hourly(n, [&](std::size_t, double, std::mt19937_64& rng) {
    level += std::normal_distribution<double>(0, 8)(rng);
    level = std::max(level, 50.0);
    return level;
  });
}

// A strong daily cycle with a little noise.
inline CarbonSeries daily_pattern(std::size_t n, double noise = 5) {
  return hourly(n, [&](std::size_t, double hour, std::mt19937_64& rng) {
    return 300 + 150 * std::sin(2 * std::numbers::pi * hour / 24) +
           std::normal_distribution<double>(0, noise)(rng);
  });
}

using chase::testing::error_message;

inline std::filesystem::path data_dir() {
  if (const char* dir = std::getenv("CHASE_DATA_DIR"); dir != nullptr && *dir != '\0') return dir;
  return CHASE_DEFAULT_DATA_DIR;
}

}  // namespace chase::test_util
