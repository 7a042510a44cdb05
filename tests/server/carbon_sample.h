// The value of a chase_carbon_* sample (labelled by provider) in a /metrics exposition, for the
// carbon feed's tests.
#pragma once

#include <optional>
#include <regex>
#include <string>

namespace chase::testing {

// `text` must start with a newline (samples are matched at the start of a line).
inline std::optional<double> carbon_sample(const std::string& text, const std::string& name) {
  std::smatch match;
  if (std::regex_search(text, match,
                        std::regex("\n" + name + "\\{provider=\"[^\"]*\"\\} (\\S+)"))) {
    return std::stod(match[1]);
  }
  return std::nullopt;
}

}  // namespace chase::testing
