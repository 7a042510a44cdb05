// The numeric option checks of the CLI (cli/option_checks.h).
#include "cli/option_checks.h"

#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "common/text.h"

namespace chase::cli {
namespace {

std::string range_text(double min, double max, bool min_excluded) {
  const bool low = std::isfinite(min);
  const bool high = std::isfinite(max);
  if (low && high) return fmt::format(" in {}{:g}, {:g}]", min_excluded ? "(" : "[", min, max);
  if (low) return fmt::format(" {} {:g}", min_excluded ? ">" : "≥", min);
  if (high) return fmt::format(" ≤ {:g}", max);
  return "";
}

// The whole text as a double, or nullopt (trailing junk, empty text).
std::optional<double> parse_number(const std::string& text) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text.front())) != 0) {
    return std::nullopt;
  }
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return value;  // ERANGE overflow gives ±inf, refused as not finite
}

}  // namespace

CLI::Validator finite_number(double min, double max, bool min_excluded) {
  const auto expected = fmt::format("a finite number{}", range_text(min, max, min_excluded));
  return CLI::Validator(
      [min, max, min_excluded, expected](std::string& text) -> std::string {
        const auto value = parse_number(text);
        const bool ok = value && std::isfinite(*value) && *value >= min && *value <= max &&
                        !(min_excluded && *value == min);
        if (ok) return {};
        return fmt::format("'{}' is not {}", escape_untrusted(text, 40), expected);
      },
      expected);
}

CLI::Validator number_or_infinity(double min) {
  const auto expected = fmt::format("a number ≥ {:g}, or inf", min);
  return CLI::Validator(
      [min, expected](std::string& text) -> std::string {
        const auto value = parse_number(text);
        if (value && !std::isnan(*value) && *value >= min) return {};
        return fmt::format("'{}' is not {}", escape_untrusted(text, 40), expected);
      },
      expected);
}

CLI::Validator whole_number(std::uint64_t min, std::uint64_t max) {
  const auto expected = fmt::format("a whole number from {} to {}", min, max);
  return CLI::Validator(
      [min, max, expected](std::string& text) -> std::string {
        const auto refused = [&] {
          return fmt::format("'{}' is not {}", escape_untrusted(text, 40), expected);
        };
        if (text.empty() || text.size() > 20 ||
            text.find_first_not_of("0123456789") != std::string::npos) {
          return refused();
        }
        errno = 0;
        const std::uint64_t value = std::strtoull(text.c_str(), nullptr, 10);
        if (errno == ERANGE || value < min || value > max) return refused();
        text = std::to_string(value);  // plain decimal for CLI11's base-0 strtoull ("010" → 10)
        return {};
      },
      expected);
}

}  // namespace chase::cli
