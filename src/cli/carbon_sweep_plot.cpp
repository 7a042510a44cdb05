// The SVG frontier of `chase simulate carbon --sweep --plot FILE` (cli/carbon_reporters.h): the
// carbon-vs-time plane, every configuration a point, the planner's and oracle's slack sweeps as
// lines, a legend with each configuration's mean changes.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "chase/error.h"
#include "cli/carbon_reporters.h"

namespace chase::cli {

void write_sweep_plot(std::ostream& out, const CarbonJob& job, const CarbonSweepResult& sweep) {
  const auto& configs = sweep.configs;
  const auto starts = sweep.starts.size();
  constexpr double kWidth = 1100, kHeight = 560, kLeft = 80, kRight = 330, kTop = 60, kBottom = 60;
  double x_lo = 0, x_hi = 1, y_lo = -1, y_hi = 1;
  for (const auto& c : configs) {
    x_lo = std::min(x_lo, c.time_change_percent), x_hi = std::max(x_hi, c.time_change_percent);
    y_lo = std::min(y_lo, c.carbon_change_percent), y_hi = std::max(y_hi, c.carbon_change_percent);
  }
  x_hi += 0.5, y_lo -= 1, y_hi += 1;
  auto px = [&](double v) {
    return kLeft + (v - x_lo) / (x_hi - x_lo) * (kWidth - kLeft - kRight);
  };
  auto py = [&](double v) {
    return kTop + (y_hi - v) / (y_hi - y_lo) * (kHeight - kTop - kBottom);
  };
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif">)"
      "\n"
      R"(<text x="{}" y="22" font-size="15">{} — {} (mean of {} starts)</text>)"
      "\n"
      R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>)"
      "\n"
      R"(<text x="{}" y="{}" font-size="13">time vs default (%)</text>)"
      R"svg(<text x="16" y="{}" font-size="13" transform="rotate(-90 16 {})">carbon vs default (%)</text>)svg"
      "\n",
      kWidth, kHeight, kLeft, job.description,
      std::filesystem::path(job.carbon_file).filename().string(), starts, kLeft, kTop,
      kWidth - kLeft - kRight, kHeight - kTop - kBottom, (kWidth - kRight) / 2, kHeight - 16,
      kHeight / 2, kHeight / 2);
  for (int i = 0; i <= 4; ++i) {
    const double xv = x_lo + (x_hi - x_lo) * i / 4, yv = y_lo + (y_hi - y_lo) * i / 4;
    svg +=
        fmt::format(R"(<text x="{:.1f}" y="{}" font-size="11" text-anchor="middle">{:.1f}</text>)"
                    R"(<text x="{}" y="{:.1f}" font-size="11" text-anchor="end">{:.1f}</text>)"
                    "\n",
                    px(xv), kHeight - kBottom + 16, xv, kLeft - 6, py(yv) + 4, yv);
  }
  const std::map<PolicyKind, const char*> colours{{PolicyKind::kDefault, "#555555"},
                                                  {PolicyKind::kStatic, "#ff7f0e"},
                                                  {PolicyKind::kChase, "#2ca02c"},
                                                  {PolicyKind::kPlanner, "#1f77b4"},
                                                  {PolicyKind::kOracle, "#d62728"}};
  for (const auto policy : {PolicyKind::kPlanner, PolicyKind::kOracle}) {
    std::vector<const CarbonSweepConfig*> line;
    for (const auto& c : configs) {
      if (c.kind == policy) line.push_back(&c);
    }
    std::sort(line.begin(), line.end(), [](const auto* a, const auto* b) {
      return a->parameters.slowdown_budget < b->parameters.slowdown_budget;
    });
    std::string points;
    for (const auto* c : line) {
      points +=
          fmt::format("{:.1f},{:.1f} ", px(c->time_change_percent), py(c->carbon_change_percent));
    }
    svg += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>)"
                       "\n",
                       colours.at(policy), points);
  }
  double legend_y = kTop + 10;
  for (const auto& c : configs) {
    const char* colour = colours.at(c.kind);
    // The fixed and chase policies as rings, so the planner's and oracle's dots do not hide them.
    const bool ring = c.kind == PolicyKind::kStatic || c.kind == PolicyKind::kChase;
    svg += fmt::format(
        R"(<circle cx="{:.1f}" cy="{:.1f}" r="{}" fill="{}" stroke="{}" stroke-width="2"/>)"
        R"(<text x="{}" y="{:.1f}" font-size="11" fill="{}">{} ({:+.1f} %, {:+.1f} %)</text>)"
        "\n",
        px(c.time_change_percent), py(c.carbon_change_percent), ring ? 8 : 4,
        ring ? "none" : colour, colour, kWidth - kRight + 10, legend_y, colour, c.label,
        c.carbon_change_percent, c.time_change_percent);
    legend_y += 15;
  }
  svg += "</svg>\n";
  out << svg;
}

}  // namespace chase::cli
