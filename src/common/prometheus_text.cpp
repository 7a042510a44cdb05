// Prometheus text exposition pieces (contract: common/prometheus_text.h).
#include "common/prometheus_text.h"

#include <fmt/format.h>

#include <cmath>

namespace chase::detail {

std::string prometheus_label_value(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string prometheus_sample_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

void prometheus_family_header(std::string& out, std::string_view name, std::string_view type,
                              std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void prometheus_sample(std::string& out, std::string_view name, std::string_view labels,
                       double value) {
  if (labels.empty()) {
    out += fmt::format("{} {}\n", name, prometheus_sample_value(value));
  } else {
    out += fmt::format("{}{{{}}} {}\n", name, labels, prometheus_sample_value(value));
  }
}

}  // namespace chase::detail
