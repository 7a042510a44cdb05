// The recurring store's values as JSON (contract: store/store_json.h).
#include "store/store_json.h"

#include <fmt/format.h>

#include <cmath>

#include "chase/error.h"

namespace chase::store {
namespace {

nlohmann::json finite_or_null(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json();
}
double number_or_inf(const nlohmann::json& j) { return j.is_null() ? INFINITY : j.get<double>(); }

template <typename Parse>
auto parsed(const char* what, Parse&& parse) -> decltype(parse()) {
  try {
    return parse();
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("a malformed {}: {}", what, e.what()));
  }
}

}  // namespace

nlohmann::json to_json(const RecurringJobSpec& spec) {
  return {{"batch_sizes", spec.batch_sizes},     {"default_batch_size", spec.default_batch_size},
          {"target_metric", spec.target_metric}, {"higher_is_better", spec.higher_is_better},
          {"max_epochs", spec.max_epochs},       {"eta", spec.eta},
          {"beta", finite_or_null(spec.beta)},   {"seed", spec.seed},
          {"max_power_w", spec.max_power_w},     {"pruning_rounds", spec.pruning_rounds},
          {"explorations", spec.explorations},   {"window", spec.window}};
}

RecurringJobSpec spec_from_json(const nlohmann::json& j) {
  return parsed("job spec", [&] {
    RecurringJobSpec spec;
    spec.batch_sizes = j.at("batch_sizes").get<std::vector<std::size_t>>();
    spec.default_batch_size = j.at("default_batch_size").get<std::size_t>();
    spec.target_metric = j.at("target_metric").get<double>();
    spec.higher_is_better = j.at("higher_is_better").get<bool>();
    spec.max_epochs = j.at("max_epochs").get<std::size_t>();
    spec.eta = j.at("eta").get<double>();
    spec.beta = number_or_inf(j.at("beta"));
    spec.seed = j.at("seed").get<std::uint64_t>();
    spec.max_power_w = j.at("max_power_w").get<double>();
    spec.pruning_rounds = j.at("pruning_rounds").get<std::size_t>();
    spec.explorations = j.at("explorations").get<std::size_t>();
    spec.window = j.at("window").get<std::size_t>();
    return spec;
  });
}

nlohmann::json to_json(const SavedProfile& profile) {
  auto points = nlohmann::json::array();
  for (const auto& p : profile.points) {
    points.push_back(
        {{"power_limit_w", p.power_limit_w}, {"time_s", p.time_s}, {"energy_j", p.energy_j}});
  }
  return {{"points", points},
          {"power_limit_w", profile.power_limit_w},
          {"epoch_time_s", profile.epoch_time_s},
          {"epoch_energy_j", profile.epoch_energy_j}};
}

SavedProfile profile_from_json(const nlohmann::json& j) {
  return parsed("profile", [&] {
    SavedProfile profile;
    for (const auto& p : j.at("points")) {
      profile.points.push_back({p.at("power_limit_w").get<double>(), p.at("time_s").get<double>(),
                                p.at("energy_j").get<double>()});
    }
    profile.power_limit_w = j.at("power_limit_w").get<double>();
    profile.epoch_time_s = j.at("epoch_time_s").get<double>();
    profile.epoch_energy_j = j.at("epoch_energy_j").get<double>();
    return profile;
  });
}

nlohmann::json to_json(const RunDecision& d) {
  return {{"run_id", d.run_id},
          {"batch_size", d.batch_size},
          {"sequence", d.sequence},
          {"ruled_out", d.ruled_out},
          {"cost_limit", finite_or_null(d.cost_limit)},
          {"profile", d.profile ? to_json(*d.profile) : nlohmann::json()},
          {"spec", to_json(d.spec)},
          {"killed", d.killed}};
}

RunDecision decision_from_json(const nlohmann::json& j) {
  return parsed("decision", [&] {
    RunDecision d;
    d.run_id = j.at("run_id").get<std::int64_t>();
    d.batch_size = j.at("batch_size").get<std::size_t>();
    d.sequence = j.at("sequence").get<std::size_t>();
    d.ruled_out = j.at("ruled_out").get<std::size_t>();
    d.cost_limit = number_or_inf(j.at("cost_limit"));
    if (!j.at("profile").is_null()) d.profile = profile_from_json(j.at("profile"));
    d.spec = spec_from_json(j.at("spec"));
    d.killed = j.at("killed").get<std::vector<std::int64_t>>();
    return d;
  });
}

nlohmann::json to_json(const RunEnd& end) {
  return {{"outcome", to_string(end.outcome)},
          {"epochs", end.epochs},
          {"energy_j", end.energy_j},
          {"time_s", end.time_s},
          {"cost", end.cost},
          {"exit_code", end.exit_code}};
}

RunEnd end_from_json(const nlohmann::json& j) {
  return parsed("run end", [&] {
    return RunEnd{run_outcome_from_string(j.at("outcome").get<std::string>()),
                  j.at("epochs").get<std::size_t>(),
                  j.at("energy_j").get<double>(),
                  j.at("time_s").get<double>(),
                  j.at("cost").get<double>(),
                  j.at("exit_code").get<int>()};
  });
}

nlohmann::json to_json(const RunRecord& r) {
  return {{"run_id", r.run_id},
          {"job", r.job},
          {"batch_size", r.batch_size},
          {"sequence", r.sequence},
          {"outcome", to_string(r.outcome)},
          {"epochs", r.epochs},
          {"cost", r.cost},
          {"energy_j", r.energy_j},
          {"time_s", r.time_s},
          {"last_metric", r.last_metric ? nlohmann::json(*r.last_metric) : nlohmann::json()},
          {"host", r.owner.host},
          {"pid", r.owner.pid}};
}

RunRecord run_from_json(const nlohmann::json& j) {
  return parsed("run", [&] {
    RunRecord r;
    r.run_id = j.at("run_id").get<std::int64_t>();
    r.job = j.at("job").get<std::string>();
    r.batch_size = j.at("batch_size").get<std::size_t>();
    r.sequence = j.at("sequence").get<std::size_t>();
    r.outcome = run_outcome_from_string(j.at("outcome").get<std::string>());
    r.epochs = j.at("epochs").get<std::size_t>();
    r.cost = j.at("cost").get<double>();
    r.energy_j = j.at("energy_j").get<double>();
    r.time_s = j.at("time_s").get<double>();
    if (!j.at("last_metric").is_null()) r.last_metric = j.at("last_metric").get<double>();
    r.owner = {j.at("host").get<std::string>(), j.at("pid").get<std::int64_t>()};
    return r;
  });
}

nlohmann::json to_json(const BatchSizeObservation& o) {
  return {{"batch_size", o.batch_size},
          {"cost", o.cost},
          {"reached", o.reached},
          {"started", o.started}};
}

BatchSizeObservation observation_from_json(const nlohmann::json& j) {
  return parsed("observation", [&] {
    return BatchSizeObservation{j.at("batch_size").get<std::size_t>(), j.at("cost").get<double>(),
                                j.at("reached").get<bool>(), j.at("started").get<bool>()};
  });
}

}  // namespace chase::store
