// The carbon sweep experiment (chase/carbon_sweep.h): plan the first round, run it on a pool of
// threads, derive the planner and oracle at each policy's slowdown, run those, aggregate.
#include "chase/carbon_sweep.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>

#include "chase/error.h"

namespace chase {
namespace {

CarbonSweepConfig make_config(std::string label, const CarbonSweepOptions& sweep, PolicyKind kind,
                              double eta, double slack) {
  CarbonSweepConfig config;
  config.label = std::move(label);
  config.kind = kind;
  config.parameters = sweep.parameters;
  config.parameters.eta = eta;
  config.parameters.slowdown_budget = slack;
  config.options = sweep.base;
  config.options.policy = make_policy_options(kind, config.parameters);
  return config;
}

// "zeus eta=0.5", "planner slack=0.1": the policy's report name and the parameter swept.
std::string label_of(PolicyKind kind, const PolicyParameters& parameters) {
  const auto name = policy_label(make_policy_options(kind, parameters));
  if (kind == PolicyKind::kStatic || kind == PolicyKind::kChase) {
    return fmt::format("{} eta={:g}", name, parameters.eta);
  }
  return fmt::format("{} slack={:g}", name, parameters.slowdown_budget);
}

CarbonSweepConfig swept_config(const CarbonSweepOptions& sweep, PolicyKind kind, double eta,
                               double slack) {
  auto config = make_config("", sweep, kind, eta, slack);
  config.label = label_of(kind, config.parameters);
  return config;
}

std::vector<UtcTime> spread_starts(const CarbonSweepOptions& sweep) {
  if (sweep.starts == 0 || sweep.to < sweep.from) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("a carbon sweep needs at least one start (got {}) and `from` ({}) no "
                            "later than `to` ({})",
                            sweep.starts, format_utc_time(sweep.from), format_utc_time(sweep.to)));
  }
  std::vector<UtcTime> starts;
  const auto span = sweep.to - sweep.from;
  for (std::size_t i = 0; i < sweep.starts; ++i) {
    const auto offset = sweep.starts == 1 ? UtcTime::duration{0}
                                          : span / static_cast<std::int64_t>(sweep.starts - 1) *
                                                static_cast<std::int64_t>(i);
    starts.push_back(std::chrono::floor<std::chrono::hours>(sweep.from + offset));
  }
  return starts;
}

// Runs every (config, start) pair of configs[first, end) on `threads` threads.
void run_all(std::vector<CarbonSweepConfig>& configs, std::size_t first, const LimitProfile& epochs,
             const CarbonSeries& carbon, const std::vector<UtcTime>& starts, int threads) {
  for (auto i = first; i < configs.size(); ++i) configs[i].runs.assign(starts.size(), {});
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  const std::size_t total = (configs.size() - first) * starts.size();
  auto work = [&] {
    for (std::size_t i = next++; i < total; i = next++) {
      auto& config = configs[first + i / starts.size()];
      const auto s = i % starts.size();
      auto options = config.options;
      options.start = starts[s];
      if (!config.slack_per_start.empty()) {
        auto parameters = config.parameters;
        parameters.slowdown_budget = config.slack_per_start[s];
        options.policy = make_policy_options(config.kind, parameters);
      }
      try {
        config.runs[s] = simulate_carbon(epochs, carbon, options);
      } catch (...) {
        std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
    }
  };
  // More threads than simulations would only wait. A system that refuses more threads (a huge
  // --threads, a process limit) leaves the pool at the threads it got, at worst the caller's alone:
  // the sweep runs slower, it never aborts with threads left unjoined.
  const auto wanted = std::min<std::size_t>(static_cast<std::size_t>(std::max(1, threads)), total);
  std::vector<std::thread> pool;
  pool.reserve(wanted > 0 ? wanted - 1 : 0);
  for (std::size_t t = 1; t < wanted; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error& e) {
      spdlog::warn("carbon sweep: only {} of {} threads could be started ({}); running on those",
                   pool.size() + 1, wanted, e.what());
      break;
    }
  }
  work();
  for (auto& thread : pool) thread.join();
  if (failure) std::rethrow_exception(failure);
}

void summarise(CarbonSweepConfig& config, const CarbonSweepConfig& baseline) {
  double carbon = 0, time = 0;
  for (std::size_t i = 0; i < config.runs.size(); ++i) {
    carbon += config.runs[i].carbon_g / baseline.runs[i].carbon_g - 1;
    time += config.runs[i].time_s / baseline.runs[i].time_s - 1;
  }
  const auto n = static_cast<double>(config.runs.size());
  config.carbon_change_percent = 100 * carbon / n;
  config.time_change_percent = 100 * time / n;
}

double gap_pp(const CarbonSweepConfig& config, const CarbonSweepConfig& oracle,
              const CarbonSweepConfig& baseline) {
  double gap = 0;
  for (std::size_t i = 0; i < config.runs.size(); ++i) {
    gap += (config.runs[i].carbon_g - oracle.runs[i].carbon_g) / baseline.runs[i].carbon_g;
  }
  return 100 * gap / static_cast<double>(config.runs.size());
}

// The planner or oracle given the slowdown of configs[of]: its mean, or each start's.
CarbonSweepConfig matched_config(const CarbonSweepOptions& sweep,
                                 const std::vector<CarbonSweepConfig>& configs, std::size_t of,
                                 PolicyKind kind, SlowdownMatch match) {
  const auto& source = configs[of];
  const auto& baseline = configs.front();
  const double slack = std::max(0.0, source.time_change_percent / 100);
  // Matched to a policy that never pauses: limits only (a slack that small leaves no room to).
  auto limits_only = sweep;
  limits_only.parameters.pause = PauseOptions{};
  auto config = make_config(fmt::format("{} {}{}", to_string(kind),
                                        match == SlowdownMatch::kMean ? "@" : "=", source.label),
                            limits_only, kind, sweep.parameters.eta, slack);
  config.match = match;
  config.slowdown_of = of;
  if (match == SlowdownMatch::kPerStart) {
    for (std::size_t i = 0; i < source.runs.size(); ++i) {
      config.slack_per_start.push_back(
          std::max(0.0, source.runs[i].time_s / baseline.runs[i].time_s - 1));
    }
  }
  return config;
}

}  // namespace

CarbonSweepPlan plan_carbon_sweep(const CarbonSweepOptions& options) {
  CarbonSweepPlan plan;
  plan.options = options;
  plan.starts = spread_starts(options);
  auto& configs = plan.configs;
  const double eta = options.parameters.eta;
  configs.push_back(make_config(std::string(to_string(PolicyKind::kDefault)), options,
                                PolicyKind::kDefault, eta, 0));
  for (const auto kind : {PolicyKind::kStatic, PolicyKind::kChase}) {
    for (const double e : options.etas) configs.push_back(swept_config(options, kind, e, 0));
  }
  for (const double slack : options.slacks) {
    configs.push_back(swept_config(options, PolicyKind::kPlanner, eta, slack));
    configs.push_back(swept_config(options, PolicyKind::kOracle, eta, slack));
    const auto oracle = configs.size() - 1;
    configs[oracle - 1].oracle = configs[oracle].oracle = oracle;
  }
  for (auto& config : configs) config.options.start = plan.starts.front();
  return plan;
}

CarbonSweepResult run_carbon_sweep(const CarbonSweepPlan& plan, const LimitProfile& epochs,
                                   const CarbonSeries& carbon) {
  CarbonSweepResult result{plan.options, plan.starts, plan.configs, {}};
  auto& configs = result.configs;
  const auto threads = plan.options.threads;
  run_all(configs, 0, epochs, carbon, result.starts, threads);
  for (auto& config : configs) summarise(config, configs.front());

  // The planner and the oracle given each zeus and chase policy's own mean slowdown as their slack
  // ("@"), and given the slowdown chase incurred from each start ("="), which compares them at
  // equal times.
  const auto first_round = configs.size();
  for (std::size_t of = 0; of < first_round; ++of) {
    const auto kind = configs[of].kind;
    if (kind != PolicyKind::kStatic && kind != PolicyKind::kChase) continue;
    for (const auto match : {SlowdownMatch::kMean, SlowdownMatch::kPerStart}) {
      if (match == SlowdownMatch::kPerStart && kind != PolicyKind::kChase) continue;
      configs.push_back(matched_config(plan.options, configs, of, PolicyKind::kPlanner, match));
      configs.push_back(matched_config(plan.options, configs, of, PolicyKind::kOracle, match));
      const auto oracle = configs.size() - 1;
      configs[oracle - 1].oracle = configs[oracle].oracle = oracle;
      // zeus's gap is to the oracle at its mean slowdown, chase's to the one that took exactly as
      // long from every start.
      configs[of].oracle = oracle;
      if (kind == PolicyKind::kChase) {
        result.comparisons.push_back({of, oracle - 1, match, 0, false});
      }
    }
  }
  run_all(configs, first_round, epochs, carbon, result.starts, threads);
  for (auto i = first_round; i < configs.size(); ++i) summarise(configs[i], configs.front());

  for (auto& config : configs) {
    if (config.oracle) {
      config.gap_to_oracle_pp = gap_pp(config, configs[*config.oracle], configs.front());
    }
  }
  for (auto& comparison : result.comparisons) {
    const double planner = configs[comparison.planner].carbon_change_percent;
    const double chase = configs[comparison.chase].carbon_change_percent;
    comparison.planner_excess_pp = planner - chase;
    comparison.planner_cuts_at_least_as_much = planner <= chase + 0.01;
  }
  return result;
}

}  // namespace chase
