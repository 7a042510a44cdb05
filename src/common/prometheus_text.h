// Internal: pieces of the Prometheus text exposition format (0.0.4), shared by chased's /metrics
// (src/server/metrics.cpp) and the Pushgateway reporter (src/optimize/pushgateway.cpp), so both
// escape and print samples the same way.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace chase::detail {

// A label value with backslash, double quote and line feed escaped (the format's rule).
std::string prometheus_label_value(std::string_view text);

// A sample value: shortest round-trip decimal, or NaN, +Inf, -Inf.
std::string prometheus_sample_value(double value);

// Appends "# HELP name help\n# TYPE name type\n" to `out`.
void prometheus_family_header(std::string& out, std::string_view name, std::string_view type,
                              std::string_view help);

// Appends one sample line "name{labels} value\n" (no braces when `labels` is empty).
void prometheus_sample(std::string& out, std::string_view name, std::string_view labels,
                       double value);

}  // namespace chase::detail
