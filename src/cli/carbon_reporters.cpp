// The reporters of `chase simulate carbon` (cli/carbon_reporters.h): console table, JSON, CSV.
#include "cli/carbon_reporters.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "chase/error.h"

namespace chase::cli {
namespace {

double change_percent(double value, double reference) { return 100 * (value / reference - 1); }

// Deadline mode's costs, for the policy line.
std::string pause_details(const PauseOptions& pause) {
  std::string details;
  if (pause.mode == PauseMode::kIdle) details += fmt::format(", idle {:g} W", pause.idle_power_w);
  if (pause.resume_s > 0) details += fmt::format(", resume {:g} s", pause.resume_s);
  return details;
}

// The mean hours paused over a configuration's runs.
double mean_paused_h(const CarbonSweepConfig& config) {
  double sum = 0;
  for (const auto& run : config.runs) sum += run.paused_s;
  return config.runs.empty() ? 0 : sum / static_cast<double>(config.runs.size()) / 3600;
}

std::string describe_policy(const CarbonSimulationOptions& options,
                            const PolicyParameters& parameters,
                            const CarbonSimulationResult& result) {
  switch (kind_of(options.policy)) {
    case PolicyKind::kStatic:
      return fmt::format("{} (eta {:g})", result.policy, parameters.eta);
    case PolicyKind::kChase:
      return fmt::format("{} (eta {:g}, forecast {}, CI_max {:.1f} gCO2eq/kWh)", result.policy,
                         parameters.eta, result.forecast, result.max_carbon_intensity);
    case PolicyKind::kPlanner:
    case PolicyKind::kOracle:
      if (parameters.pause.mode != PauseMode::kNone) {
        return fmt::format("{} (slack {:g}, forecast {}, pause {}{})", result.policy,
                           parameters.slowdown_budget, result.forecast,
                           to_string(parameters.pause.mode), pause_details(parameters.pause));
      }
      return fmt::format("{} (slack {:g}, forecast {})", result.policy, parameters.slowdown_budget,
                         result.forecast);
    case PolicyKind::kDefault:
      break;
  }
  return result.policy;
}

void print_timeline(std::ostream& out, const CarbonSimulationResult& result) {
  out << fmt::format("  {:<21} {:>9} {:>9} {:>9} {:>8} {:>12} {:>10}\n", "time", "limit (W)", "CI",
                     "forecast", "epochs", "energy (J)", "carbon (g)");
  for (const auto& s : result.timeline) {
    out << fmt::format("  {:<21} {:>9} {:>9.1f} {:>9.1f} {:>8.3f} {:>12.0f} {:>10.1f}\n",
                       format_utc_time(s.start),
                       s.profiling  ? std::string("profile")
                       : s.paused   ? std::string("pause")
                       : s.resuming ? std::string("resume")
                                    : fmt::format("{:g}", s.power_limit_w),
                       s.carbon_intensity, s.forecast_intensity, s.epochs, s.energy_j, s.carbon_g);
  }
}

// "  forecast inputs: ..." when the trace lends exogenous columns to the forecaster, else nothing.
std::string forecast_inputs_line(const CarbonJob& job, const CarbonSimulationOptions& options) {
  const auto& columns = job.carbon.exogenous();
  if (columns.empty()) return {};
  return fmt::format("  forecast inputs: {} day-ahead column(s) of the trace, {}\n", columns.size(),
                     options.exogenous_publication.describe());
}

// The JSON members saying the same (none without exogenous columns).
void add_forecast_inputs(nlohmann::json& json, const CarbonJob& job,
                         const CarbonSimulationOptions& options) {
  if (job.carbon.exogenous().empty()) return;
  nlohmann::json names = nlohmann::json::array();
  for (const auto& column : job.carbon.exogenous()) names.push_back(column.name);
  const auto& publication = options.exogenous_publication;
  json["forecast_inputs"] = {{"columns", names}, {"lead_s", publication.lead.count()}};
  if (publication.daily_at) {
    json["forecast_inputs"]["lead_s"] = nullptr;
    json["forecast_inputs"]["published_daily_at"] = format_time_of_day(*publication.daily_at);
  }
}

// The name a sweep's comparison line gives a way of matching the slowdown.
const char* match_name(SlowdownMatch match) {
  return match == SlowdownMatch::kPerStart ? "per-start" : "mean";
}

}  // namespace

void ConsoleCarbonReporter::report_run(const CarbonJob& job, const CarbonRunReport& run) {
  const auto& result = run.result;
  const auto& baseline = run.baseline;
  out_ << fmt::format("chase simulate carbon: {}, {:g} epochs from {}\n", job.description,
                      run.options.epochs, format_utc_time(run.options.start));
  out_ << fmt::format("  carbon trace {}\n", job.carbon_file);
  out_ << forecast_inputs_line(job, run.options);
  out_ << fmt::format("  policy {}\n", describe_policy(run.options, run.parameters, result));
  out_ << fmt::format("  {:<10} {:>12} {:>14} {:>10}\n", "", "carbon (g)", "energy (kWh)",
                      "time (h)");
  for (const auto* r : {&baseline, &result}) {
    out_ << fmt::format("  {:<10} {:>12.1f} {:>14.3f} {:>10.2f}\n",
                        r == &baseline ? std::string("default") : r->policy, r->carbon_g,
                        r->energy_j / kJoulesPerKwh, r->time_s / 3600);
  }
  out_ << fmt::format("  vs default: carbon {:+.2f} %, energy {:+.2f} %, time {:+.2f} %\n",
                      change_percent(result.carbon_g, baseline.carbon_g),
                      change_percent(result.energy_j, baseline.energy_j),
                      change_percent(result.time_s, baseline.time_s));
  if (run.parameters.pause.mode != PauseMode::kNone) {
    out_ << fmt::format("  paused {:.2f} h, {} resume(s)\n", result.paused_s / 3600,
                        result.resumes);
  }
  out_ << fmt::format("  {} decision(s), {} timeline segment(s)\n", result.decisions.size(),
                      result.timeline.size());
  if (timeline_) print_timeline(out_, result);
}

void ConsoleCarbonReporter::report_sweep(const CarbonJob& job, const CarbonSweepResult& sweep) {
  const auto& base = sweep.options.base;
  out_ << fmt::format("chase simulate carbon --sweep: {}, {:g} epochs, {} starts from {} to {}\n",
                      job.description, base.epochs, sweep.starts.size(),
                      format_utc_time(sweep.starts.front()), format_utc_time(sweep.starts.back()));
  out_ << fmt::format("  carbon trace {}, forecast {}\n", job.carbon_file, base.forecast_model);
  out_ << forecast_inputs_line(job, base);
  const bool pausing = sweep.options.parameters.pause.mode != PauseMode::kNone;
  if (pausing) {
    out_ << fmt::format("  planner and oracle pause: {}{}\n",
                        to_string(sweep.options.parameters.pause.mode),
                        pause_details(sweep.options.parameters.pause));
  }
  out_ << fmt::format("  {:<28} {:>10} {:>10} {:>15}{}\n", "policy", "carbon %", "time %",
                      "gap to oracle", pausing ? "   paused h" : "");
  for (const auto& c : sweep.configs) {
    out_ << fmt::format("  {:<28} {:>+10.2f} {:>+10.2f} {:>15}{}\n", c.label,
                        c.carbon_change_percent, c.time_change_percent,
                        c.oracle ? fmt::format("{:+.2f} pp", c.gap_to_oracle_pp) : std::string("-"),
                        pausing ? fmt::format(" {:>10.2f}", mean_paused_h(c)) : std::string());
  }
  for (const auto& comparison : sweep.comparisons) {
    const auto& chase = sweep.configs[comparison.chase];
    const auto& planner = sweep.configs[comparison.planner];
    out_ << fmt::format("  planner at {}'s {} slowdown: carbon {:+.2f} % vs {:+.2f} % — {}\n",
                        chase.label, match_name(comparison.match), planner.carbon_change_percent,
                        chase.carbon_change_percent,
                        comparison.planner_cuts_at_least_as_much
                            ? std::string("cuts at least as much")
                            : fmt::format("cuts {:.2f} pp LESS", comparison.planner_excess_pp));
  }
}

void JsonCarbonReporter::report_run(const CarbonJob& job, const CarbonRunReport& run) {
  const auto& result = run.result;
  const auto& baseline = run.baseline;
  nlohmann::json timeline = nlohmann::json::array();
  for (const auto& s : result.timeline) {
    timeline.push_back(
        {{"time", format_utc_time(s.start)},
         {"ci", s.carbon_intensity},
         {"forecast_ci", s.forecast_intensity},
         {"power_limit_w", s.profiling ? nlohmann::json(nullptr) : nlohmann::json(s.power_limit_w)},
         {"profiling", s.profiling},
         {"paused", s.paused},
         {"resuming", s.resuming},
         {"duration_s", s.duration_s},
         {"epochs", s.epochs},
         {"energy_j", s.energy_j},
         {"carbon_g", s.carbon_g}});
  }
  nlohmann::json decisions = nlohmann::json::array();
  for (const auto& d : result.decisions) {
    decisions.push_back({{"time", format_utc_time(d.time)},
                         {"power_limit_w", d.power_limit_w},
                         {"reason", d.reason}});
  }
  nlohmann::json json{{"job", job.description},
                      {"carbon_file", job.carbon_file},
                      {"policy", result.policy},
                      {"forecast", result.forecast},
                      {"eta", run.parameters.eta},
                      {"slack", run.parameters.slowdown_budget},
                      {"start", format_utc_time(run.options.start)},
                      {"epochs", result.epochs},
                      {"carbon_g", result.carbon_g},
                      {"energy_j", result.energy_j},
                      {"time_s", result.time_s},
                      {"max_carbon_intensity", result.max_carbon_intensity},
                      {"pause", to_string(run.parameters.pause.mode)},
                      {"paused_s", result.paused_s},
                      {"resumes", result.resumes},
                      {"default",
                       {{"carbon_g", baseline.carbon_g},
                        {"energy_j", baseline.energy_j},
                        {"time_s", baseline.time_s}}},
                      {"carbon_change_percent", change_percent(result.carbon_g, baseline.carbon_g)},
                      {"slowdown_percent", change_percent(result.time_s, baseline.time_s)},
                      {"timeline", timeline},
                      {"decisions", decisions}};
  add_forecast_inputs(json, job, run.options);
  out_ << json.dump(2) << '\n';
}

void JsonCarbonReporter::report_sweep(const CarbonJob& job, const CarbonSweepResult& sweep) {
  nlohmann::json configs = nlohmann::json::array();
  for (const auto& c : sweep.configs) {
    configs.push_back({{"label", c.label},
                       {"policy", policy_label(c.options.policy)},
                       {"eta", c.parameters.eta},
                       {"slack", c.parameters.slowdown_budget},
                       {"carbon_change_percent", c.carbon_change_percent},
                       {"time_change_percent", c.time_change_percent},
                       {"paused_h", mean_paused_h(c)},
                       {"gap_to_oracle_pp",
                        c.oracle ? nlohmann::json(c.gap_to_oracle_pp) : nlohmann::json(nullptr)}});
  }
  nlohmann::json start_times = nlohmann::json::array();
  for (const auto s : sweep.starts) start_times.push_back(format_utc_time(s));
  nlohmann::json json{{"job", job.description},
                      {"carbon_file", job.carbon_file},
                      {"epochs", sweep.options.base.epochs},
                      {"forecast", sweep.options.base.forecast_model},
                      {"starts", start_times},
                      {"configs", configs}};
  add_forecast_inputs(json, job, sweep.options.base);
  out_ << json.dump(2) << '\n';
}

void CsvCarbonReporter::report_sweep(const CarbonJob&, const CarbonSweepResult& sweep) {
  auto& out = out_;
  out << "start,label,policy,eta,slack,forecast,carbon_g,energy_j,time_s,carbon_change_percent,"
         "time_change_percent,paused_s,resumes\n";
  const auto& baseline = sweep.baseline();
  for (const auto& config : sweep.configs) {
    for (std::size_t i = 0; i < sweep.starts.size(); ++i) {
      const auto& r = config.runs[i];
      const auto& d = baseline.runs[i];
      out << fmt::format("{},{},{},{},{},{},{:.3f},{:.1f},{:.1f},{:.4f},{:.4f},{:.1f},{}\n",
                         format_utc_time(sweep.starts[i]), config.label, r.policy,
                         config.parameters.eta, config.parameters.slowdown_budget, r.forecast,
                         r.carbon_g, r.energy_j, r.time_s, change_percent(r.carbon_g, d.carbon_g),
                         change_percent(r.time_s, d.time_s), r.paused_s, r.resumes);
    }
  }
}

}  // namespace chase::cli
