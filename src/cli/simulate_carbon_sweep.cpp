// `chase simulate carbon --sweep`: every policy over η / slack values and many start times, the
// mean change of carbon and time against the default limit, each policy's gap to the oracle, the
// planner given Chase's own slowdown, a CSV of every run and an SVG of the carbon-vs-time frontier.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "chase/error.h"
#include "cli/simulate_carbon.h"

namespace chase::cli {
namespace {

// One policy with its parameters, run from every start.
struct SweepConfig {
  std::string label;
  PolicyKind kind = PolicyKind::kDefault;
  PolicyParameters parameters;
  CarbonSimulationOptions options;
  std::string oracle_label;  // the oracle this config's gap is measured against
  std::vector<double> slack_per_start;       // when set: the slack of each start's run
  std::vector<CarbonSimulationResult> runs;  // one per start
  double carbon_change = 0;                  // mean over starts, % vs default
  double time_change = 0;
  double gap_to_oracle = 0;  // mean (carbon − oracle carbon) / default carbon, in % points
};

std::vector<UtcTime> spread_starts(const SweepOptions& sweep) {
  if (sweep.starts == 0 || sweep.to < sweep.from) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--sweep needs at least one start and --from ({}) no later than --to "
                            "({})",
                            format_utc_time(sweep.from), format_utc_time(sweep.to)));
  }
  std::vector<UtcTime> starts;
  const auto span = sweep.to - sweep.from;
  for (std::size_t i = 0; i < sweep.starts; ++i) {
    const auto offset = sweep.starts == 1 ? UtcTime::duration{0}
                                          : span / static_cast<std::int64_t>(sweep.starts - 1) *
                                                static_cast<std::int64_t>(i);
    // Whole hours, so that each start meets the trace at a clean point of its hourly grid.
    starts.push_back(std::chrono::floor<std::chrono::hours>(sweep.from + offset));
  }
  return starts;
}

SweepConfig make_config(std::string label, const CarbonSimulationOptions& base,
                        const PolicyParameters& base_parameters, PolicyKind kind, double eta,
                        double slack) {
  SweepConfig config;
  config.label = std::move(label);
  config.kind = kind;
  config.parameters = base_parameters;
  config.parameters.eta = eta;
  config.parameters.slowdown_budget = slack;
  config.options = base;
  config.options.policy = make_policy_options(kind, config.parameters);
  return config;
}

// Runs every (config, start) pair on `threads` threads; results land in config.runs.
void run_all(std::vector<SweepConfig*> configs, const CarbonJob& job,
             const std::vector<UtcTime>& starts, int threads) {
  for (auto* config : configs) config->runs.assign(starts.size(), {});
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  const std::size_t total = configs.size() * starts.size();
  auto work = [&] {
    for (std::size_t i = next++; i < total; i = next++) {
      auto& config = *configs[i / starts.size()];
      auto options = config.options;
      options.start = starts[i % starts.size()];
      if (!config.slack_per_start.empty()) {
        auto parameters = config.parameters;
        parameters.slowdown_budget = config.slack_per_start[i % starts.size()];
        options.policy = make_policy_options(config.kind, parameters);
      }
      try {
        config.runs[i % starts.size()] = simulate_carbon(job.epochs, job.carbon, options);
      } catch (...) {
        std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(work);
  work();
  for (auto& thread : pool) thread.join();
  if (failure) std::rethrow_exception(failure);
}

void summarise(SweepConfig& config, const SweepConfig& baseline) {
  double carbon = 0, time = 0;
  for (std::size_t i = 0; i < config.runs.size(); ++i) {
    carbon += config.runs[i].carbon_g / baseline.runs[i].carbon_g - 1;
    time += config.runs[i].time_s / baseline.runs[i].time_s - 1;
  }
  const auto n = static_cast<double>(config.runs.size());
  config.carbon_change = 100 * carbon / n;
  config.time_change = 100 * time / n;
}

void measure_gap(SweepConfig& config, const SweepConfig& oracle, const SweepConfig& baseline) {
  double gap = 0;
  for (std::size_t i = 0; i < config.runs.size(); ++i) {
    gap += (config.runs[i].carbon_g - oracle.runs[i].carbon_g) / baseline.runs[i].carbon_g;
  }
  config.gap_to_oracle = 100 * gap / static_cast<double>(config.runs.size());
}

void write_csv(const std::filesystem::path& path, const std::vector<SweepConfig*>& configs,
               const SweepConfig& baseline, const std::vector<UtcTime>& starts) {
  std::ofstream out(path);
  out << "start,label,policy,eta,slack,forecast,carbon_g,energy_j,time_s,carbon_change_percent,"
         "time_change_percent\n";
  for (const auto* config : configs) {
    for (std::size_t i = 0; i < starts.size(); ++i) {
      const auto& r = config->runs[i];
      const auto& d = baseline.runs[i];
      out << fmt::format("{},{},{},{},{},{},{:.3f},{:.1f},{:.1f},{:.4f},{:.4f}\n",
                         format_utc_time(starts[i]), config->label, r.policy, config->parameters.eta,
                         config->parameters.slowdown_budget, r.forecast, r.carbon_g, r.energy_j,
                         r.time_s, 100 * (r.carbon_g / d.carbon_g - 1),
                         100 * (r.time_s / d.time_s - 1));
    }
  }
  if (!out.flush()) throw Error(ErrorCode::kIo, fmt::format("cannot write {}", path.string()));
}

// The carbon-vs-time plane: every config a point, planner and oracle slack sweeps as lines.
void write_plot(const std::filesystem::path& path, const CarbonJob& job,
                const std::vector<SweepConfig*>& configs, std::size_t starts) {
  constexpr double kWidth = 1100, kHeight = 560, kLeft = 80, kRight = 330, kTop = 60, kBottom = 60;
  double x_lo = 0, x_hi = 1, y_lo = -1, y_hi = 1;
  for (const auto* c : configs) {
    x_lo = std::min(x_lo, c->time_change), x_hi = std::max(x_hi, c->time_change);
    y_lo = std::min(y_lo, c->carbon_change), y_hi = std::max(y_hi, c->carbon_change);
  }
  x_hi += 0.5, y_lo -= 1, y_hi += 1;
  auto px = [&](double v) { return kLeft + (v - x_lo) / (x_hi - x_lo) * (kWidth - kLeft - kRight); };
  auto py = [&](double v) { return kTop + (y_hi - v) / (y_hi - y_lo) * (kHeight - kTop - kBottom); };
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
    svg += fmt::format(
        R"(<text x="{:.1f}" y="{}" font-size="11" text-anchor="middle">{:.1f}</text>)"
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
    std::vector<const SweepConfig*> line;
    for (const auto* c : configs) {
      if (c->kind == policy) line.push_back(c);
    }
    std::sort(line.begin(), line.end(), [](const auto* a, const auto* b) {
      return a->parameters.slowdown_budget < b->parameters.slowdown_budget;
    });
    std::string points;
    for (const auto* c : line) points += fmt::format("{:.1f},{:.1f} ", px(c->time_change), py(c->carbon_change));
    svg += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>)"
                       "\n",
                       colours.at(policy), points);
  }
  double legend_y = kTop + 10;
  for (const auto* c : configs) {
    const char* colour = colours.at(c->kind);
    // The fixed and chase policies as rings, so the planner's and oracle's dots do not hide them.
    const bool ring = c->kind == PolicyKind::kStatic || c->kind == PolicyKind::kChase;
    svg += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="{}" fill="{}" stroke="{}" stroke-width="2"/>)"
                       R"(<text x="{}" y="{:.1f}" font-size="11" fill="{}">{} ({:+.1f} %, {:+.1f} %)</text>)"
                       "\n",
                       px(c->time_change), py(c->carbon_change), ring ? 8 : 4,
                       ring ? "none" : colour, colour, kWidth - kRight + 10, legend_y, colour,
                       c->label, c->carbon_change, c->time_change);
    legend_y += 15;
  }
  svg += "</svg>\n";
  std::ofstream out(path);
  out << svg;
  if (!out.flush()) throw Error(ErrorCode::kIo, fmt::format("cannot write {}", path.string()));
}

// Whether the planner's carbon change cuts at least as much as the policy's (a hundredth of a
// percentage point is a tie: the two then run the same limits, up to rounding).
std::string verdict(double planner_change, double policy_change) {
  if (planner_change <= policy_change + 0.01) return "cuts at least as much";
  return fmt::format("cuts {:.2f} pp LESS", planner_change - policy_change);
}

std::string label_of(const std::string& policy, const char* parameter, double value) {
  return fmt::format("{} {}={:g}", policy, parameter, value);
}

}  // namespace

void run_carbon_sweep(const CarbonJob& job, const CarbonSimulationOptions& base,
                      const PolicyParameters& parameters, const SweepOptions& sweep,
                      std::ostream& out) {
  const auto config_of = [&](std::string label, PolicyKind kind, double eta, double slack) {
    return make_config(std::move(label), base, parameters, kind, eta, slack);
  };
  const auto starts = spread_starts(sweep);
  // std::deque-like stability: configs are owned here and referred to by pointer.
  std::vector<std::unique_ptr<SweepConfig>> owned;
  auto add = [&](SweepConfig config) {
    owned.push_back(std::make_unique<SweepConfig>(std::move(config)));
    return owned.back().get();
  };
  SweepConfig* baseline = add(config_of("default", PolicyKind::kDefault, parameters.eta, 0));
  std::vector<SweepConfig*> static_and_chase;
  for (const double eta : sweep.etas) {
    static_and_chase.push_back(
        add(config_of(label_of("zeus", "eta", eta), PolicyKind::kStatic, eta, 0)));
  }
  for (const double eta : sweep.etas) {
    static_and_chase.push_back(
        add(config_of(label_of("chase", "eta", eta), PolicyKind::kChase, eta, 0)));
  }
  std::vector<SweepConfig*> first_round{baseline};
  first_round.insert(first_round.end(), static_and_chase.begin(), static_and_chase.end());
  for (const double slack : sweep.slacks) {
    auto* planner = add(config_of(label_of("planner", "slack", slack), PolicyKind::kPlanner,
                                  parameters.eta, slack));
    auto* oracle = add(
        config_of(label_of("oracle", "slack", slack), PolicyKind::kOracle, parameters.eta, slack));
    planner->oracle_label = oracle->oracle_label = oracle->label;
    first_round.push_back(planner);
    first_round.push_back(oracle);
  }
  run_all(first_round, job, starts, sweep.threads);
  for (auto* config : first_round) summarise(*config, *baseline);

  // The planner and the oracle given each policy's own mean slowdown as their slack ("@"), and
  // given the slowdown it incurred from each start ("="), which compares them at equal times.
  std::vector<SweepConfig*> matched;
  for (auto* config : static_and_chase) {
    const double slack = std::max(0.0, config->time_change / 100);
    auto* planner = add(config_of(fmt::format("planner @{}", config->label), PolicyKind::kPlanner,
                                  parameters.eta, slack));
    auto* oracle = add(config_of(fmt::format("oracle @{}", config->label), PolicyKind::kOracle,
                                 parameters.eta, slack));
    config->oracle_label = planner->oracle_label = oracle->oracle_label = oracle->label;
    matched.push_back(planner);
    matched.push_back(oracle);
    if (config->kind != PolicyKind::kChase) continue;
    std::vector<double> slacks;
    for (std::size_t i = 0; i < starts.size(); ++i) {
      slacks.push_back(std::max(0.0, config->runs[i].time_s / baseline->runs[i].time_s - 1));
    }
    for (const auto policy : {PolicyKind::kPlanner, PolicyKind::kOracle}) {
      auto* per_start = add(config_of(fmt::format("{} ={}", to_string(policy), config->label),
                                      policy, parameters.eta, slack));
      per_start->slack_per_start = slacks;
      matched.push_back(per_start);
    }
    // Chase's gap is to the oracle that took exactly as long from every start.
    config->oracle_label = owned[owned.size() - 2]->oracle_label = owned.back()->oracle_label =
        owned.back()->label;
  }
  run_all(matched, job, starts, sweep.threads);
  for (auto* config : matched) summarise(*config, *baseline);

  std::vector<SweepConfig*> all;
  for (auto& config : owned) all.push_back(config.get());
  std::map<std::string, const SweepConfig*> by_label;
  for (const auto* config : all) by_label[config->label] = config;
  for (auto* config : all) {
    if (!config->oracle_label.empty()) measure_gap(*config, *by_label.at(config->oracle_label), *baseline);
  }
  if (!sweep.csv.empty()) write_csv(sweep.csv, all, *baseline, starts);
  if (!sweep.plot.empty()) write_plot(sweep.plot, job, all, starts.size());

  if (sweep.json) {
    nlohmann::json configs = nlohmann::json::array();
    for (const auto* c : all) {
      configs.push_back({{"label", c->label},
                         {"policy", policy_label(c->options.policy)},
                         {"eta", c->parameters.eta},
                         {"slack", c->parameters.slowdown_budget},
                         {"carbon_change_percent", c->carbon_change},
                         {"time_change_percent", c->time_change},
                         {"gap_to_oracle_pp", c->oracle_label.empty() ? nlohmann::json(nullptr)
                                                                      : nlohmann::json(c->gap_to_oracle)}});
    }
    nlohmann::json start_times = nlohmann::json::array();
    for (const auto s : starts) start_times.push_back(format_utc_time(s));
    out << nlohmann::json{{"job", job.description},
                          {"carbon_file", job.carbon_file},
                          {"epochs", base.epochs},
                          {"forecast", base.forecast_model},
                          {"starts", start_times},
                          {"configs", configs}}
               .dump(2)
        << '\n';
    return;
  }
  out << fmt::format("chase simulate carbon --sweep: {}, {:g} epochs, {} starts from {} to {}\n",
                     job.description, base.epochs, starts.size(), format_utc_time(starts.front()),
                     format_utc_time(starts.back()));
  out << fmt::format("  carbon trace {}, forecast {}\n", job.carbon_file, base.forecast_model);
  out << fmt::format("  {:<28} {:>10} {:>10} {:>15}\n", "policy", "carbon %", "time %",
                     "gap to oracle");
  for (const auto* c : all) {
    out << fmt::format("  {:<28} {:>+10.2f} {:>+10.2f} {:>15}\n", c->label, c->carbon_change,
                       c->time_change,
                       c->oracle_label.empty() ? std::string("-")
                                               : fmt::format("{:+.2f} pp", c->gap_to_oracle));
  }
  for (const auto* c : static_and_chase) {
    if (c->kind != PolicyKind::kChase) continue;
    for (const char* how : {"@", "="}) {
      const auto* planner = by_label.at(fmt::format("planner {}{}", how, c->label));
      out << fmt::format("  planner at {}'s {} slowdown: carbon {:+.2f} % vs {:+.2f} % — {}\n",
                         c->label, *how == '@' ? "mean" : "per-start", planner->carbon_change,
                         c->carbon_change, verdict(planner->carbon_change, c->carbon_change));
    }
  }
}

}  // namespace chase::cli
