// Reading JSON fields with messages that name the file and the field (contract:
// common/json_fields.h).
#include "common/json_fields.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <fstream>

#include "chase/error.h"
#include "common/text.h"

namespace chase {
namespace {

constexpr std::size_t kMaxQuotedValue = 60;

// "-1", "\"four\"", "[1,2]": what the file holds, escaped and cut short.
std::string shown(const nlohmann::json& value) {
  return escape_untrusted(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                          kMaxQuotedValue);
}

std::string range_text(double min, double max) {
  const bool low = min > -std::numeric_limits<double>::max();
  const bool high = max < std::numeric_limits<double>::max();
  if (low && high) return fmt::format(" in [{:g}, {:g}]", min, max);
  if (low) return fmt::format(" ≥ {:g}", min);
  if (high) return fmt::format(" ≤ {:g}", max);
  return "";
}

}  // namespace

JsonFields::JsonFields(const nlohmann::json& object, std::string where)
    : object_(object), where_(std::move(where)) {
  if (!object_.is_object()) {
    throw Error(ErrorCode::kParse, fmt::format("{}: expected a JSON object {{...}}, found {}.",
                                               where_, shown(object_)));
  }
}

const nlohmann::json* JsonFields::find(std::string_view key) const {
  const auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonFields::has(std::string_view key) const { return find(key) != nullptr; }

void JsonFields::fail(std::string_view key, const nlohmann::json& value,
                      std::string_view expected) const {
  throw Error(ErrorCode::kParse,
              fmt::format("{}: '{}' is {}; it must be {}. Fix the field or leave it out.", where_,
                          escape_untrusted(key), shown(value), expected));
}

std::optional<double> JsonFields::number(std::string_view key, double min, double max) const {
  const auto* value = find(key);
  if (value == nullptr) return std::nullopt;
  const auto expected = fmt::format("a finite number{}", range_text(min, max));
  if (!value->is_number()) fail(key, *value, expected);
  const double number = value->get<double>();
  if (!std::isfinite(number) || number < min || number > max) fail(key, *value, expected);
  return number;
}

double JsonFields::required_number(std::string_view key, double min, double max) const {
  if (const auto value = number(key, min, max)) return *value;
  throw Error(ErrorCode::kParse, fmt::format("{}: '{}' is missing; it must be a finite number{}.",
                                             where_, escape_untrusted(key), range_text(min, max)));
}

std::optional<std::uint64_t> JsonFields::count(std::string_view key, std::uint64_t min,
                                               std::uint64_t max) const {
  const auto* value = find(key);
  if (value == nullptr) return std::nullopt;
  const auto expected = max < static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                            ? fmt::format("a whole number from {} to {}", min, max)
                            : fmt::format("a whole number ≥ {}", min);
  std::optional<std::uint64_t> whole;
  if (value->is_number_unsigned()) {
    whole = value->get<std::uint64_t>();
  } else if (value->is_number_float()) {
    // 4.0 is a whole number; -1.0, 2.5, 1e30 and NaN are not.
    const double number = value->get<double>();
    if (std::isfinite(number) && number >= 0 && number == std::floor(number) && number < 9.0e18) {
      whole = static_cast<std::uint64_t>(number);
    }
  }
  if (!whole || *whole < min || *whole > max) fail(key, *value, expected);
  return whole;
}

std::optional<std::string> JsonFields::text(std::string_view key) const {
  const auto* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) fail(key, *value, "a string in quotes");
  return value->get<std::string>();
}

std::optional<bool> JsonFields::flag(std::string_view key) const {
  const auto* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) fail(key, *value, "true or false");
  return value->get<bool>();
}

void write_json_file_atomically(const std::filesystem::path& path, const nlohmann::json& doc,
                                std::string_view what, int indent) {
  auto temporary = path;
  temporary += fmt::format(".tmp{}", ::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << doc.dump(indent) << '\n';
    if (!out.flush()) {
      throw Error(ErrorCode::kIo, fmt::format("cannot write {} {}", what, temporary.string()));
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    throw Error(ErrorCode::kIo,
                fmt::format("cannot write {} {}: {}", what, path.string(), error.message()));
  }
}

}  // namespace chase
