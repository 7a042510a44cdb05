// Internal (CLI): the checks every numeric option goes through, so that each command rejects the
// same bad values with the same kind of message — the option, the value and the accepted range:
//   --intensity: 'nan' is not a finite number in [0, 3000]
// A value outside the range is an error, never silently replaced: "use the default" is spelled by
// leaving the option out (such options are std::optional and say so in their help).
//
// CLI11 runs a validator on the text before converting it, and lets it rewrite the text: the
// whole-number check hands CLI11 plain decimal digits, so "010" is ten (not octal eight) and "-1"
// is refused before strtoull could wrap it to 18446744073709551615.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <limits>
#include <string>

namespace chase::cli {

inline constexpr double kNoBound = std::numeric_limits<double>::infinity();
inline constexpr std::uint64_t kMaxSeed = std::numeric_limits<std::uint64_t>::max();

// A finite number in [min, max] (a bound of ±kNoBound is open); with `min_excluded`, the value must
// also be above `min` (for "positive").
CLI::Validator finite_number(double min, double max, bool min_excluded = false);
// Shorthands.
inline CLI::Validator positive_number(double max = kNoBound) {
  return finite_number(0, max, /*min_excluded=*/true);
}
inline CLI::Validator non_negative_number(double max = kNoBound) { return finite_number(0, max); }
inline CLI::Validator fraction() { return finite_number(0, 1); }  // η and friends, in [0, 1]

// A number ≥ min, finite or "inf" (for a bound that infinity switches off, like β's early stop).
CLI::Validator number_or_infinity(double min);

// A whole number in [min, max], written in decimal digits ("1e3", "2.5", "-1", "0x10" refused).
// It rewrites the text CLI11 converts, so attach it with ->transform(), not ->check() (CLI11 runs a
// check on a copy).
CLI::Validator whole_number(std::uint64_t min,
                            std::uint64_t max = std::numeric_limits<std::uint32_t>::max());

}  // namespace chase::cli
