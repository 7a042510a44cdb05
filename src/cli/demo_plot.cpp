// The demo's SVG plot (see demo_plot.h).
#include "cli/demo_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "chase/error.h"

namespace chase::cli {
namespace {

constexpr double kWidth = 960, kLeft = 70, kRight = 150, kTop = 60;
constexpr double kPanelHeight = 190, kGap = 60;
constexpr std::array<const char*, 6> kColours = {"#555555", "#1f77b4", "#2ca02c",
                                                 "#d62728", "#9467bd", "#ff7f0e"};

// Maps a value range onto a panel's pixels.
struct Axis {
  double lo, hi, pixel_lo, pixel_hi;
  double operator()(double v) const {
    return pixel_lo + (v - lo) / (hi - lo) * (pixel_hi - pixel_lo);
  }
};

double hours_since(UtcTime start, UtcTime t) {
  return std::chrono::duration<double>(t - start).count() / 3600;
}

std::string polyline(const std::vector<std::pair<double, double>>& points, const char* colour) {
  std::string text;
  for (const auto& [x, y] : points) text += fmt::format("{:.1f},{:.1f} ", x, y);
  return fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>)", colour,
                     text) +
         "\n";
}

std::string panel_frame(double top, const Axis& x, const Axis& y, const std::string& label,
                        double hours) {
  std::string svg =
      fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>)"
                  R"(<text x="{}" y="{}" font-size="13">{}</text>)"
                  "\n",
                  kLeft, top, kWidth - kLeft - kRight, kPanelHeight, kLeft, top - 8, label);
  for (int i = 0; i <= 4; ++i) {  // value ticks
    const double v = y.lo + (y.hi - y.lo) * i / 4;
    svg += fmt::format(R"(<text x="{}" y="{:.1f}" font-size="11" text-anchor="end">{:.0f}</text>)"
                       "\n",
                       kLeft - 6, y(v) + 4, v);
  }
  for (double h = 0; h <= hours; h += 3) {  // time ticks every 3 h
    svg +=
        fmt::format(R"(<text x="{:.1f}" y="{}" font-size="11" text-anchor="middle">{:.0f} h</text>)"
                    "\n",
                    x(h), top + kPanelHeight + 15, h);
  }
  return svg;
}

}  // namespace

void write_demo_plot(std::ostream& out, const CarbonSeries& carbon, UtcTime start,
                     const std::vector<PlotPolicy>& policies) {
  double hours = 1;
  double limit_lo = 1e9, limit_hi = 0;
  for (const auto& policy : policies) {
    for (const auto& p : policy.report.periods) {
      hours = std::max(hours, hours_since(start, p.end));
      for (const double l : p.limits_w)
        limit_lo = std::min(limit_lo, l), limit_hi = std::max(limit_hi, l);
    }
  }
  hours = std::ceil(hours);
  const Axis x{0, hours, kLeft, kWidth - kRight};
  const double ci_top = kTop, limit_top = kTop + kPanelHeight + kGap;
  const double ci_hi = *std::max_element(carbon.values().begin(), carbon.values().end());
  const Axis ci{0, std::ceil(ci_hi / 100) * 100, ci_top + kPanelHeight, ci_top};
  const Axis limit{std::floor(limit_lo / 50) * 50 - 50, std::ceil(limit_hi / 50) * 50 + 50,
                   limit_top + kPanelHeight, limit_top};

  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif">)"
      "\n"
      R"(<text x="{}" y="20" font-size="15">chase demo — SIMULATED job, SYNTHETIC carbon intensity (made-up numbers)</text>)"
      "\n",
      kWidth, limit_top + kPanelHeight + 40, kLeft);
  svg += panel_frame(ci_top, x, ci, "grid carbon intensity (gCO2eq/kWh)", hours);
  svg += panel_frame(limit_top, x, limit, "GPU power limit (W) at the end of each 30-min period",
                     hours);

  std::vector<std::pair<double, double>> ci_points;
  for (std::size_t i = 0; i < carbon.size(); ++i) {
    const double h0 = hours_since(start, carbon.times()[i]);
    if (h0 > hours) break;
    const double h1 =
        std::min(hours, h0 + std::chrono::duration<double>(carbon.resolution()).count() / 3600);
    ci_points.push_back({x(h0), ci(carbon.values()[i])});
    ci_points.push_back({x(h1), ci(carbon.values()[i])});
  }
  svg += polyline(ci_points, "#333333");

  for (std::size_t k = 0; k < policies.size(); ++k) {
    const char* colour = kColours[k % kColours.size()];
    std::vector<std::pair<double, double>> points;
    for (const auto& p : policies[k].report.periods) {
      const double level = limit(p.limits_w.back());
      points.push_back({x(hours_since(start, p.start)), level});
      points.push_back({x(hours_since(start, p.end)), level});
    }
    svg += polyline(points, colour);
    svg += fmt::format(R"(<text x="{}" y="{:.1f}" font-size="13" fill="{}">{}</text>)"
                       "\n",
                       kWidth - kRight + 12, limit_top + 20 + 18.0 * static_cast<double>(k), colour,
                       policies[k].name);
  }
  svg += "</svg>\n";

  out << svg;
}

}  // namespace chase::cli
