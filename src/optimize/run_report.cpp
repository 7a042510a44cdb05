// The training run report as JSON and as a table (contract: chase/training.h).
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "chase/training.h"

namespace chase {
namespace {

// NaN (no carbon data) is null in JSON, not a number that is not one.
nlohmann::json number_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

nlohmann::json period_json(const PeriodReport& p) {
  nlohmann::json candidates = nlohmann::json::array();
  for (const auto& c : p.candidates) {
    candidates.push_back({{"power_limit_w", c.power_limit_w},
                          {"time_s", c.time_s},
                          {"energy_j", c.energy_j},
                          {"avg_power_w", c.avg_power_w},
                          {"cost", c.cost}});
  }
  return {{"start", format_utc_time(p.start)},
          {"end", format_utc_time(p.end)},
          {"time_s", p.time_s},
          {"steps", p.steps},
          {"energy_j", p.energy_j},
          {"carbon_intensity", number_or_null(p.carbon_intensity)},
          {"carbon_g", number_or_null(p.carbon_g)},
          {"limits_w", p.limits_w},
          {"reason", p.reason},
          {"candidates", candidates},
          {"limit_errors", p.limit_errors},
          {"paused_s", p.paused_s}};
}

// "-" where there was no carbon data.
std::string number_or_dash(double value, int decimals) {
  return std::isfinite(value) ? fmt::format("{:.{}f}", value, decimals) : "-";
}

std::string limits_text(const std::vector<double>& limits) {
  std::string text;
  for (const double limit : limits) text += (text.empty() ? "" : "→") + fmt::format("{:g}", limit);
  return text;
}

}  // namespace

std::string run_report_json(const RunReport& report) {
  nlohmann::json periods = nlohmann::json::array();
  for (const auto& p : report.periods) periods.push_back(period_json(p));
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& s : report.skipped_limits) {
    skipped.push_back({{"power_limit_w", s.power_limit_w}, {"reason", s.reason}});
  }
  const nlohmann::json doc = {{"policy", report.policy},     {"time_s", report.time_s},
                              {"steps", report.steps},       {"energy_j", report.energy_j},
                              {"carbon_g", report.carbon_g}, {"profiled", report.profiled},
                              {"skipped_limits", skipped},   {"periods", periods}};
  auto json = doc;
  json["paused_s"] = report.paused_s;
  if (report.release) {
    json["release"] = {{"resume_at", format_utc_time(report.release->resume_at)},
                       {"job_start", format_utc_time(report.release->job_start)},
                       {"steps_done", report.release->steps_done}};
  }
  return json.dump(2);
}

void print_run_report(std::ostream& out, const RunReport& report) {
  out << fmt::format("policy {}: {} steps in {:.1f} s, {:.1f} kJ, {:.2f} gCO2eq{}\n", report.policy,
                     report.steps, report.time_s, report.energy_j / 1e3, report.carbon_g,
                     report.profiled ? "" : " (saved profile reused)");
  out << fmt::format("  {:<20} {:>8} {:>7} {:>10} {:>9} {:>9}  {:<14} {}\n", "period start (UTC)",
                     "time (s)", "steps", "energy (J)", "CI g/kWh", "CO2 (g)", "limits (W)", "why");
  for (const auto& p : report.periods) {
    out << fmt::format("  {:<20} {:>8.1f} {:>7} {:>10.1f} {:>9} {:>9}  {:<14} {}\n",
                       format_utc_time(p.start), p.time_s, p.steps, p.energy_j,
                       number_or_dash(p.carbon_intensity, 1), number_or_dash(p.carbon_g, 3),
                       limits_text(p.limits_w), p.reason);
    for (const auto& error : p.limit_errors) out << "    limit change failed: " << error << '\n';
  }
  if (report.paused_s > 0) {
    out << fmt::format("  paused {:.1f} s (loop held, GPUs at their minimum limit)\n",
                       report.paused_s);
  }
  if (report.release) {
    out << fmt::format("  released after {} steps: checkpoint and exit; resume at {}\n",
                       report.release->steps_done, format_utc_time(report.release->resume_at));
  }
  for (const auto& s : report.skipped_limits) {
    out << fmt::format("  profiling skipped {:g} W: {}\n", s.power_limit_w, s.reason);
  }
}

}  // namespace chase
