// Internal: the one reader of JSON fields for files chase loads (power-limit profiles,
// simulated-GPU profiles, provider settings), so that a field of the wrong type or out of range is
// a kParse chase::Error naming the file and the field, the value found and what is expected — never
// nlohmann's "[json.exception.type_error.302]" or a negative count wrapped to 2^64 − 1.
//
// Every getter takes the field's key; a missing field (or null) is "not given": the optional
// getters return nullopt and the others throw saying it is missing. A present field must have the
// right type and lie in the range asked for.
//
// Thread safety: a JsonFields reads an object it does not own; use it while the object lives, from
// one thread at a time (like the object itself).
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace chase {

class JsonFields {
 public:
  // `where` names the object in messages: "profile.json" or "profile.json: points[2]". Throws
  // kParse when `object` is not a JSON object.
  JsonFields(const nlohmann::json& object, std::string where);

  bool has(std::string_view key) const;

  // A finite number in [min, max].
  std::optional<double> number(std::string_view key,
                               double min = -std::numeric_limits<double>::max(),
                               double max = std::numeric_limits<double>::max()) const;
  double required_number(std::string_view key, double min = -std::numeric_limits<double>::max(),
                         double max = std::numeric_limits<double>::max()) const;
  // A whole number (written without a fraction, e.g. 4 or 4.0) in [min, max]: counts, sizes.
  std::optional<std::uint64_t> count(
      std::string_view key, std::uint64_t min = 0,
      std::uint64_t max = std::numeric_limits<std::int64_t>::max()) const;
  std::optional<std::string> text(std::string_view key) const;
  std::optional<bool> flag(std::string_view key) const;

  const std::string& where() const noexcept { return where_; }

 private:
  const nlohmann::json* find(std::string_view key) const;
  [[noreturn]] void fail(std::string_view key, const nlohmann::json& value,
                         std::string_view expected) const;

  const nlohmann::json& object_;
  std::string where_;
};

// Writes `doc` to `path` atomically: into a temporary file beside it, then renamed over it, so a
// reader (another rank, the next run) never sees half a file. `indent` as nlohmann's dump (-1:
// one line). Throws kIo "cannot write <what> <file>" naming the file that failed.
void write_json_file_atomically(const std::filesystem::path& path, const nlohmann::json& doc,
                                std::string_view what, int indent = 2);

}  // namespace chase
