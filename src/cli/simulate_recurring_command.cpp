// chase simulate recurring --trace-dir DIR --gpu G --workload NAME [--eta 0.5] [--beta 2]
// [--seed 1] [--recurrences N] [--json]: a recurring job over the Zeus traces, its batch size and
// power limit chosen by the optimizers live training uses (chase/recurring_simulation.h).
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "chase/error.h"
#include "chase/recurring_simulation.h"
#include "chase/recurring_store.h"
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "cli/output_file.h"
#include "cli/progress.h"

namespace chase::cli {
namespace {

struct RecurringCommandOptions {
  std::string trace_dir;
  std::string gpu;
  std::string workload;
  // Overrides of the workload's artifact defaults (left out: keep the default).
  std::optional<std::size_t> default_batch_size;
  std::optional<double> target_metric;
  std::optional<std::size_t> max_epochs;
  std::optional<std::size_t> recurrences;  // left out: 2·|B|·|P|
  std::optional<std::size_t> window;       // left out: every reward
  RecurringOptions simulation;
  std::string store;  // empty: in memory
  bool json = false;
};

nlohmann::json config_json(const TraceConfig& config) {
  return {{"batch_size", config.batch_size},
          {"power_limit_w", config.power_limit_w},
          {"energy_j", config.energy_to_accuracy_j},
          {"time_s", config.time_to_accuracy_s}};
}

nlohmann::json result_json(const ZeusTrace& trace, const RecurringOptions& options,
                           const RecurringResult& result) {
  nlohmann::json history = nlohmann::json::array();
  for (const auto& run : result.history) {
    history.push_back({{"recurrence", run.recurrence + 1},
                       {"batch_size", run.batch_size},
                       {"power_limit_w", run.power_limit_w},
                       {"epochs", run.epochs},
                       {"energy_j", run.energy_j},
                       {"time_s", run.time_s},
                       {"cost", run.cost},
                       {"reached", run.reached},
                       {"profiled", run.profiled}});
  }
  const auto& s = result.summary;
  return {{"workload", trace.workload().dataset},
          {"network", trace.workload().network},
          {"gpu", trace.gpu()},
          {"options",
           {{"eta", options.eta},
            {"beta", options.beta},
            {"seed", options.seed},
            {"pruning_rounds", options.pruning_rounds},
            {"explorations", options.explorations},
            {"window", options.window}}},
          {"default", config_json(result.default_config)},
          {"history", history},
          {"summary",
           {{"recurrences", s.recurrences},
            {"runs", s.runs},
            {"scored_recurrences", s.scored},
            {"mean_energy_j", s.mean_energy_j},
            {"mean_time_s", s.mean_time_s},
            {"energy_reduction_pct", 100 * s.energy_reduction},
            {"time_reduction_pct", 100 * s.time_reduction},
            {"converged", {{"batch_size", s.batch_size}, {"power_limit_w", s.power_limit_w}}},
            {"best_possible", config_json(s.best)},
            {"best_possible_energy_reduction_pct", 100 * s.best_energy_reduction}}}};
}

// Consecutive recurrences that converged in one run at the same configuration share a row.
void print_recurrences(std::ostream& out, const RecurringResult& result) {
  out << fmt::format("  {:>9} {:>5} {:>14} {:>12} {:>10}  {}\n", "recurrence", "runs",
                     "energy (MJ)", "time (h)", "cost (MJ)", "converged at (tried)");
  const auto& recurrences = result.recurrences;
  std::size_t run_index = 0;
  for (std::size_t i = 0; i < recurrences.size();) {
    std::size_t end = i + 1;
    const auto same = [&](const Recurrence& r) {
      return r.runs == 1 && recurrences[i].runs == 1 && r.batch_size == recurrences[i].batch_size &&
             r.power_limit_w == recurrences[i].power_limit_w;
    };
    while (end < recurrences.size() && same(recurrences[end])) ++end;
    double energy = 0, time = 0, cost = 0;
    for (std::size_t k = i; k < end; ++k) {
      energy += recurrences[k].energy_j;
      time += recurrences[k].time_s;
      cost += recurrences[k].cost;
    }
    std::string tried;
    for (std::size_t k = 0; k + 1 < recurrences[i].runs; ++k) {
      const auto& failed = result.history[run_index + k];
      tried += fmt::format("{}{}", tried.empty() ? " (" : ", ", failed.batch_size);
    }
    if (!tried.empty()) tried += " failed)";
    for (std::size_t k = i; k < end; ++k) run_index += recurrences[k].runs;
    const double n = static_cast<double>(end - i);
    const auto label = end - i == 1 ? fmt::format("{}", i + 1) : fmt::format("{}-{}", i + 1, end);
    out << fmt::format("  {:>9} {:>5} {:>14.3f} {:>12.2f} {:>10.3f}  {} @ {:g} W{}{}\n", label,
                       recurrences[i].runs, energy / n / 1e6, time / n / 3600, cost / n / 1e6,
                       recurrences[i].batch_size, recurrences[i].power_limit_w, tried,
                       end - i > 1 ? " (mean of each)" : "");
    i = end;
  }
}

// "12.3 % lower" or "4.5 % higher" for a reduction (1 − ours / default).
std::string change(double reduction) {
  return fmt::format("{:.1f} % {}", 100 * std::abs(reduction), reduction >= 0 ? "lower" : "higher");
}

void print_result(std::ostream& out, const ZeusTrace& trace, const RecurringOptions& options,
                  const RecurringResult& result) {
  const auto& s = result.summary;
  const auto& d = result.default_config;
  out << fmt::format(
      "chase simulate recurring: {} ({}) on {}, eta {:g}, beta {:g}, seed {}, {} recurrences, "
      "{} runs\n",
      trace.workload().dataset, trace.workload().network, trace.gpu(), options.eta, options.beta,
      options.seed, s.recurrences, s.runs);
  print_recurrences(out, result);
  out << fmt::format("default:   batch {} @ {:g} W: {:.3f} MJ, {:.2f} h to the target\n",
                     d.batch_size, d.power_limit_w, d.energy_to_accuracy_j / 1e6,
                     d.time_to_accuracy_s / 3600);
  out << fmt::format("last {}:   {:.3f} MJ, {:.2f} h on average: energy {}, time {}\n", s.scored,
                     s.mean_energy_j / 1e6, s.mean_time_s / 3600, change(s.energy_reduction),
                     change(s.time_reduction));
  out << fmt::format("converged: batch {} @ {:g} W\n", s.batch_size, s.power_limit_w);
  out << fmt::format("best possible: batch {} @ {:g} W: {:.3f} MJ ({:.1f} % lower)\n",
                     s.best.batch_size, s.best.power_limit_w, s.best.energy_to_accuracy_j / 1e6,
                     100 * s.best_energy_reduction);
}

// How the command shows its result: the table (the default) or JSON (--json).
class RecurringReporter {
 public:
  virtual ~RecurringReporter() = default;
  virtual void report(const ZeusTrace& trace, const RecurringOptions& options,
                      const RecurringResult& result) = 0;
};

class ConsoleRecurringReporter : public RecurringReporter {
 public:
  explicit ConsoleRecurringReporter(std::ostream& out) : out_(out) {}
  void report(const ZeusTrace& trace, const RecurringOptions& options,
              const RecurringResult& result) override {
    print_result(out_, trace, options, result);
  }

 private:
  std::ostream& out_;
};

class JsonRecurringReporter : public RecurringReporter {
 public:
  explicit JsonRecurringReporter(std::ostream& out) : out_(out) {}
  void report(const ZeusTrace& trace, const RecurringOptions& options,
              const RecurringResult& result) override {
    out_ << result_json(trace, options, result).dump(2) << '\n';
  }

 private:
  std::ostream& out_;
};

std::unique_ptr<RecurringReporter> make_reporter(const RecurringCommandOptions& options,
                                                 std::ostream& out) {
  if (options.json) return std::make_unique<JsonRecurringReporter>(out);
  return std::make_unique<ConsoleRecurringReporter>(out);
}

// Ranges of the numeric options: beyond them a value is a typo, not an experiment.
// --recurrences is bounded by the library's kMaxRecurrences (chase/recurring_simulation.h).
constexpr std::uint64_t kMaxEpochs = 100000;
constexpr std::uint64_t kMaxRounds = 1000;
// Target metrics are accuracies, F1 scores or perplexities: none is above this.
constexpr double kMaxTargetMetric = 1e6;

std::string default_trace_dir() {
  const char* data = std::getenv("CHASE_DATA_DIR");
  return data != nullptr && *data != '\0' ? std::string(data) + "/zeus-trace" : "";
}

// The workload's artifact parameters with the command's overrides.
WorkloadSpec job_spec(const RecurringCommandOptions& options) {
  auto spec = zeus_workload(options.workload);
  if (options.default_batch_size) spec.default_batch_size = *options.default_batch_size;
  if (options.target_metric) spec.target_metric = *options.target_metric;
  if (options.max_epochs) spec.max_epochs = *options.max_epochs;
  return spec;
}

}  // namespace

void add_simulate_recurring_command(CLI::App& simulate, int& exit_code) {
  auto* cmd = simulate.add_subcommand(
      "recurring",
      "A recurring job over the Zeus traces: batch size and power limit learnt across runs");
  auto options = std::make_shared<RecurringCommandOptions>();
  options->trace_dir = default_trace_dir();
  cmd->add_option("--trace-dir", options->trace_dir,
                  "The zeus-trace folder (default: $CHASE_DATA_DIR/zeus-trace)");
  cmd->add_option("--gpu", options->gpu, "GPU of the trace")
      ->required()
      ->check(CLI::IsMember(zeus_trace_gpus()));
  cmd->add_option("--workload", options->workload,
                  "cifar100, imagenet, squad, librispeech, movielens-1m or sentiment140")
      ->required();
  cmd->add_option("--default-batch-size", options->default_batch_size,
                  "The job's default batch size b0 (left out: the artifact's for the workload)")
      ->transform(whole_number(1));
  cmd->add_option("--target", options->target_metric,
                  "The target metric (left out: the artifact's; it must be one the trace records)")
      ->check(positive_number(kMaxTargetMetric));
  cmd->add_option("--max-epochs", options->max_epochs,
                  "Epochs after which a run counts as failed (left out: the artifact's)")
      ->transform(whole_number(1, kMaxEpochs));
  auto& sim = options->simulation;
  cmd->add_option("--eta", sim.eta, "Weight of energy against time in the cost, in [0, 1]")
      ->check(fraction())
      ->capture_default_str();
  cmd->add_option("--beta", sim.beta,
                  "Early stopping: stop a run past beta × the cheapest one (inf: never)")
      ->check(number_or_infinity(1))
      ->capture_default_str();
  cmd->add_option("--seed", sim.seed, "Random seed (training paths and decisions)")
      ->transform(whole_number(0, kMaxSeed))
      ->capture_default_str();
  cmd->add_option("--recurrences", options->recurrences,
                  "How often the job recurs (left out: 2·|B|·|P|)")
      ->transform(whole_number(1, kMaxRecurrences));
  cmd->add_option("--pruning-rounds", sim.pruning_rounds, "Pruning rounds before sampling")
      ->transform(whole_number(0, kMaxRounds))
      ->capture_default_str();
  cmd->add_option("--explorations", sim.explorations, "Runs of each arm before sampling")
      ->transform(whole_number(1, kMaxRounds))
      ->capture_default_str();
  cmd->add_option("--window", options->window,
                  "Latest rewards per arm to learn from (left out: all)")
      ->transform(whole_number(1, kMaxRecurrences));
  cmd->add_option("--store", options->store,
                  "Keep the optimizer's observations in this store (sqlite:PATH or "
                  "postgresql://...; left out: in memory)");
  cmd->add_option("--job", options->simulation.job_id,
                  "The job's name in --store (left out: simulate/WORKLOAD/GPU)");
  cmd->add_flag("--json", options->json, "Print JSON instead of a table");
  cmd->callback([options, &exit_code] {
    if (options->trace_dir.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "give --trace-dir (the zeus-trace folder) or set CHASE_DATA_DIR");
    }
    if (!options->store.empty()) {
      if (options->simulation.job_id.empty()) {
        options->simulation.job_id = fmt::format("simulate/{}/{}", options->workload, options->gpu);
      }
      options->simulation.store = open_recurring_store(options->store);
      const auto earlier = options->simulation.store->load(options->simulation.job_id).size();
      if (earlier > 0) {
        throw Error(ErrorCode::kAlreadyExists,
                    fmt::format("job '{}' already has {} observations in {}; a simulation starts "
                                "from a fresh job: give another --job",
                                options->simulation.job_id, earlier, options->store));
      }
    }
    auto out = OutputFile::standard_output();
    const auto trace = ZeusTrace::load(options->trace_dir, options->gpu, job_spec(*options));
    // The library spells "the default" 0; the command spells it by leaving the option out.
    options->simulation.recurrences = options->recurrences.value_or(0);
    options->simulation.window = options->window.value_or(0);
    ProgressLine progress("simulate recurring");
    auto simulation = options->simulation;
    if (progress.enabled()) {
      simulation.on_recurrence = [&](std::size_t done, std::size_t total) {
        progress.update(static_cast<double>(done), static_cast<double>(total), "recurrences");
      };
    }
    const auto result = simulate_recurring(trace, simulation);
    make_reporter(*options, out.stream())->report(trace, options->simulation, result);
    out.close();
    exit_code = 0;
  });
}

}  // namespace chase::cli
