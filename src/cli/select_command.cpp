// chase select --profile FILE [--selector zeus --eta X | energy | time | slowdown --factor F]
// [--json]: the power limit a selector picks from a measured profile, and every candidate's cost.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "chase/error.h"
#include "chase/limit_profile.h"
#include "chase/selector.h"
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "cli/output_file.h"

namespace chase::cli {
namespace {

// A job allowed to run more than this many times slower is not being slowed down, it is stopped.
constexpr double kMaxSlowdownFactor = 100;

struct SelectOptions {
  std::string profile;
  std::string selector = "zeus";
  double eta = 0.5;
  double factor = 1.1;
  bool json = false;
};

std::unique_ptr<PowerLimitSelector> make_selector(const SelectOptions& options) {
  if (options.selector == "zeus") return make_zeus_selector(options.eta);
  if (options.selector == "energy") return make_energy_selector();
  if (options.selector == "time") return make_time_selector();
  return make_slowdown_selector(options.factor);
}

nlohmann::json selection_json(const LimitProfile& profile, const PowerLimitSelector& selector,
                              const Selection& selection) {
  nlohmann::json candidates = nlohmann::json::array();
  for (const auto& c : selection.candidates) {
    candidates.push_back({{"power_limit_w", c.power_limit_w},
                          {"time_s", c.time_s},
                          {"energy_j", c.energy_j},
                          {"avg_power_w", c.avg_power_w},
                          {"cost", c.cost}});
  }
  return {{"power_limit_w", selection.power_limit_w},
          {"selector", selector.describe()},
          {"gpu_count", profile.info().gpu_count},
          {"max_power_w", profile.max_power_w()},
          {"candidates", candidates}};
}

void print_selection(std::ostream& out, const std::string& source, const LimitProfile& profile,
                     const PowerLimitSelector& selector, const Selection& selection) {
  out << fmt::format("chase select: {} on {} ({} GPU{}, MaxPower {:.0f} W)\n", selector.describe(),
                     source, profile.info().gpu_count, profile.info().gpu_count == 1 ? "" : "s",
                     profile.max_power_w());
  out << fmt::format("  {:>9} {:>10} {:>12} {:>13} {:>14}\n", "limit (W)", "time (s)", "energy (J)",
                     "avg power (W)", "cost");
  for (const auto& c : selection.candidates) {
    const bool chosen = c.power_limit_w == selection.power_limit_w;
    out << fmt::format("{} {:>9.0f} {:>10.3f} {:>12.1f} {:>13.1f} {:>14.6g}\n", chosen ? "*" : " ",
                       c.power_limit_w, c.time_s, c.energy_j, c.avg_power_w, c.cost);
  }
  out << fmt::format("selected power limit: {:g} W\n", selection.power_limit_w);
}

}  // namespace

void add_select_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "select", "Pick a GPU power limit from a measured profile (chase JSON or Zeus monitor CSV)");
  auto options = std::make_shared<SelectOptions>();
  cmd->add_option("--profile", options->profile, "Profile: chase .json or Zeus monitor log .csv")
      ->required();
  cmd->add_option("--selector", options->selector, "zeus, energy, time or slowdown")
      ->check(CLI::IsMember({"zeus", "energy", "time", "slowdown"}))
      ->capture_default_str();
  auto* eta =
      cmd->add_option("--eta", options->eta, "zeus: weight of energy against time, in [0, 1]")
          ->check(fraction())
          ->capture_default_str();
  auto* factor =
      cmd->add_option("--factor", options->factor, "slowdown: largest allowed T(p) / T(max limit)")
          ->check(finite_number(1, kMaxSlowdownFactor))
          ->capture_default_str();
  cmd->add_flag("--json", options->json, "Print JSON instead of a table");
  cmd->callback([options, eta, factor, &exit_code] {
    // A parameter of another selector is a mistake worth saying, not something to ignore.
    if (eta->count() > 0 && options->selector != "zeus") {
      throw Error(ErrorCode::kInvalidArgument, "--eta applies to --selector zeus only");
    }
    if (factor->count() > 0 && options->selector != "slowdown") {
      throw Error(ErrorCode::kInvalidArgument, "--factor applies to --selector slowdown only");
    }
    auto out = OutputFile::standard_output();
    const auto profile = load_limit_profile(options->profile);
    const auto selector = make_selector(*options);
    const auto selection = selector->select(profile);
    if (options->json) {
      out.stream() << selection_json(profile, *selector, selection).dump(2) << '\n';
    } else {
      print_selection(out.stream(), options->profile, profile, *selector, selection);
    }
    out.close();
    exit_code = 0;
  });
}

}  // namespace chase::cli
