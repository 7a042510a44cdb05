// What every recurring store shares (contract: chase/recurring_store.h): the job options' checks
// and comparison, the outcome names, the epoch rule, and opening a store by URL.
#include "chase/recurring_store.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "chase/error.h"
#include "store/http_store.h"
#include "store/sql.h"

namespace chase {

void check_job_spec(const RecurringJobSpec& spec) {
  const auto fail = [](const std::string& what) {
    throw Error(ErrorCode::kInvalidArgument, "job options: " + what);
  };
  if (spec.batch_sizes.empty() ||
      std::find(spec.batch_sizes.begin(), spec.batch_sizes.end(), 0) != spec.batch_sizes.end()) {
    fail("--batch-sizes needs one or more positive batch sizes");
  }
  if (std::find(spec.batch_sizes.begin(), spec.batch_sizes.end(), spec.default_batch_size) ==
      spec.batch_sizes.end()) {
    fail(fmt::format("the default batch size {} is not one of --batch-sizes {}",
                     spec.default_batch_size, fmt::join(spec.batch_sizes, ",")));
  }
  if (!std::isfinite(spec.target_metric)) fail("the target metric must be a finite number");
  if (spec.max_epochs == 0) fail("--max-epochs must be at least 1");
  if (!(spec.eta >= 0 && spec.eta <= 1))
    fail(fmt::format("eta must be in [0, 1], not {}", spec.eta));
  if (!(spec.beta >= 1))
    fail(fmt::format("beta must be ≥ 1 (inf: no early stopping), not {}", spec.beta));
  if (!(spec.max_power_w > 0) || !std::isfinite(spec.max_power_w)) {
    fail("the cost's MaxPower (--max-power) must be a positive number of watts");
  }
  if (spec.explorations == 0) fail("--explorations must be at least 1");
}

std::string job_spec_differences(const RecurringJobSpec& stored, const RecurringJobSpec& given) {
  std::vector<std::string> differences;
  const auto compare = [&](const char* name, const auto& a, const auto& b) {
    if (a != b) differences.push_back(fmt::format("{}: stored {}, given {}", name, a, b));
  };
  auto stored_sizes = stored.batch_sizes, given_sizes = given.batch_sizes;
  std::sort(stored_sizes.begin(), stored_sizes.end());
  std::sort(given_sizes.begin(), given_sizes.end());
  if (stored_sizes != given_sizes) {
    differences.push_back(fmt::format("batch sizes: stored {}, given {}",
                                      fmt::join(stored_sizes, ","), fmt::join(given_sizes, ",")));
  }
  compare("default batch size", stored.default_batch_size, given.default_batch_size);
  compare("target", stored.target_metric, given.target_metric);
  compare("higher is better", stored.higher_is_better, given.higher_is_better);
  compare("max epochs", stored.max_epochs, given.max_epochs);
  compare("eta", stored.eta, given.eta);
  compare("beta", stored.beta, given.beta);
  compare("seed", stored.seed, given.seed);
  compare("max power (W)", stored.max_power_w, given.max_power_w);
  compare("pruning rounds", stored.pruning_rounds, given.pruning_rounds);
  compare("explorations", stored.explorations, given.explorations);
  compare("window", stored.window, given.window);
  return fmt::format("{}", fmt::join(differences, "; "));
}

const char* to_string(RunOutcome outcome) noexcept {
  switch (outcome) {
    case RunOutcome::kOpen:
      return "open";
    case RunOutcome::kReached:
      return "reached";
    case RunOutcome::kStoppedEarly:
      return "stopped_early";
    case RunOutcome::kFailed:
      return "failed";
    case RunOutcome::kKilled:
      return "killed";
  }
  return "unknown";
}

RunOutcome run_outcome_from_string(const std::string& text) {
  for (const auto outcome : {RunOutcome::kOpen, RunOutcome::kReached, RunOutcome::kStoppedEarly,
                             RunOutcome::kFailed, RunOutcome::kKilled}) {
    if (text == to_string(outcome)) return outcome;
  }
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("'{}' is not a run outcome (open, reached, stopped_early, failed, "
                          "killed)",
                          text));
}

double recurring_cost(const RecurringJobSpec& spec, double energy_j, double time_s) noexcept {
  return spec.eta * energy_j + (1 - spec.eta) * spec.max_power_w * time_s;
}

EpochVerdict judge_epoch(const RecurringJobSpec& spec, const RunDecision& decision,
                         std::size_t epoch, double metric, double cost) {
  const bool reached =
      spec.higher_is_better ? metric >= spec.target_metric : metric <= spec.target_metric;
  if (reached) {
    return {true, RunOutcome::kReached,
            fmt::format("the metric {:g} reached the target {:g}", metric, spec.target_metric)};
  }
  if (epoch >= spec.max_epochs) {
    return {true, RunOutcome::kFailed,
            fmt::format("{} epochs (--max-epochs) without reaching the target", spec.max_epochs)};
  }
  if (std::isfinite(decision.cost_limit) && epoch > 0) {
    const double epoch_cost =
        decision.profile
            ? recurring_cost(spec, decision.profile->epoch_energy_j, decision.profile->epoch_time_s)
            : cost / static_cast<double>(epoch);
    if (epoch_cost > 0 &&
        static_cast<double>(epoch) >= std::floor(decision.cost_limit / epoch_cost)) {
      return {true, RunOutcome::kStoppedEarly,
              fmt::format("another epoch would pass the cost limit {:g} (β × the cheapest "
                          "recurrence)",
                          decision.cost_limit)};
    }
  }
  return {false, RunOutcome::kOpen, "go on"};
}

bool have_postgresql_store() noexcept {
#ifdef CHASE_HAVE_POSTGRESQL
  return true;
#else
  return false;
#endif
}

std::unique_ptr<RecurringStore> open_recurring_store(const std::string& url,
                                                     const std::string& token) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (url.rfind(kSqlite, 0) == 0) {
    auto path = url.substr(kSqlite.size());
    // sqlite:///abs/path and sqlite://rel are spelled like URLs by habit; take them too.
    if (path.rfind("//", 0) == 0) path = path.substr(2);
    if (path.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "the store URL 'sqlite:' names no file; use sqlite:PATH, e.g. sqlite:chase.db");
    }
    return store::make_sql_recurring_store(store::open_sqlite(path));
  }
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return store::make_sql_recurring_store(store::open_postgresql(url));
  }
  if (url.rfind("http://", 0) == 0) {
    return store::open_http_store(url,
                                  !token.empty() ? token : store::server_token_from_environment());
  }
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("'{}' is not a store URL: use sqlite:PATH, http://HOST:PORT (chase "
                          "serve) or postgresql://[user@]host/db "
                          "(or postgresql:///db?host=/socket/dir)",
                          url));
}

}  // namespace chase
