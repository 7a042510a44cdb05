// chase/recurring_store.h — where a recurring job lives between its runs: its options, every
// batch-size observation, every run with its epochs and outcome, and per batch size the saved
// power-limit profile (docs/RECURRING.md).
//
// Contract: open_recurring_store(url) opens a store by URL — `sqlite:PATH` (a file, created when
// missing; the default backend), `postgresql://...` / `postgres://...` (a libpq connection URI;
// only when chase was built with libpqxx, else kUnavailable), `http://HOST:PORT` (a store shared
// by `chase serve`, same contract, errors carried over) — and brings its schema up to the
// version this chase knows, migrating an older one in a transaction; a store of a newer schema is
// refused with kUnavailable naming both versions (upgrade chase; nothing is written). A URL that
// does not parse throws kInvalidArgument; a database that cannot be opened or reached throws
// kUnavailable. Both happen at open, before any command runs.
// A run's life is begin_run → record_epoch* → end_run, each one transaction:
//   begin_run registers the job on first use (its RecurringJobSpec is stored; a later begin_run
//     with a different spec throws kInvalidArgument naming each difference; without a spec the
//     job must exist, else kNotFound), records as killed every open run of the job whose owner is
//     gone (same host and its process no longer exists, or no heartbeat for `lease_s`), asks the
//     BatchSizeOptimizer for the batch size — ruling out, as observe_not_started does, a size whose
//     saved profile says one epoch already costs more than the cost limit — and opens the run.
//   record_epoch appends one epoch's metric and cumulative cost; refused (kNotFound) for an
//     unknown run, (kAlreadyExists) for an ended one, (kInvalidArgument) for a non-finite metric.
//   end_run closes the run with its outcome and, for reached / stopped early / failed, appends the
//     observation the optimizer learns from — in the same transaction, so a run is counted exactly
//     once; ending an ended run throws kAlreadyExists and changes nothing. Killed runs are kept in
//     the runs but are not observations: a kill says nothing about the batch size's cost.
// Concurrency: each call is serialised per store (SQLite: an IMMEDIATE transaction; PostgreSQL: the
// job's row locked FOR UPDATE), so concurrent runs of one job get the decisions of some serial
// order and never double-count. A crash mid-call rolls back: the store holds every call or none.
// RecurringStore is also a BatchSizeStore (the observations alone), which is how
// `chase simulate recurring --store URL` drives the optimizer over a real store.
//
// Thread safety: one store object is one connection; use it from one thread at a time. Open one
// per thread or process for concurrency (that is what the store's transactions are for).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chase/batch_size_optimizer.h"
#include "chase/limit_profile.h"

namespace chase {

// The job's options, stored on first use. Costs are η·E + (1−η)·max_power_w·T.
struct RecurringJobSpec {
  std::vector<std::size_t> batch_sizes;
  std::size_t default_batch_size = 0;
  double target_metric = 0;
  bool higher_is_better = true;
  std::size_t max_epochs = 100;
  double eta = 0.5;
  double beta = 2;  // +inf: no early stopping
  std::uint64_t seed = 1;
  double max_power_w = 0;  // MaxPower of the cost (the GPUs' top limit × their count), > 0
  std::size_t pruning_rounds = 2;
  std::size_t explorations = 2;
  std::size_t window = 0;
};

// Throws kInvalidArgument naming the first bad field.
void check_job_spec(const RecurringJobSpec& spec);
// "beta: stored 2, given 3; eta: ..."; empty when equal.
std::string job_spec_differences(const RecurringJobSpec& stored, const RecurringJobSpec& given);

enum class RunOutcome { kOpen, kReached, kStoppedEarly, kFailed, kKilled };
const char* to_string(RunOutcome outcome) noexcept;  // "open", "reached", "stopped_early", ...
RunOutcome run_outcome_from_string(const std::string& text);  // kInvalidArgument when unknown

// What profiling one batch size found: one epoch's time and energy per limit, and the limit the
// job's selector chose with its epoch there (what early stopping prices an epoch at).
struct SavedProfile {
  std::vector<LimitMeasurement> points;
  double power_limit_w = 0;
  double epoch_time_s = 0;
  double epoch_energy_j = 0;
};

struct RunOwner {
  std::string host;
  std::int64_t pid = 0;
};

struct RunDecision {
  std::int64_t run_id = 0;
  std::size_t batch_size = 0;
  std::size_t sequence = 0;   // observations of the job before this run (ruled-out ones included)
  std::size_t ruled_out = 0;  // sizes ruled out by the cost limit before this one
  double cost_limit = 0;      // +inf before a recurrence reached the target
  std::optional<SavedProfile> profile;  // none: this run profiles the batch size
  RecurringJobSpec spec;
  std::vector<std::int64_t> killed;  // open runs of dead owners this call recorded as killed
};

struct RunEnd {
  RunOutcome outcome = RunOutcome::kFailed;
  std::size_t epochs = 0;
  double energy_j = 0;
  double time_s = 0;
  double cost = 0;
  int exit_code = 0;
};

struct RunRecord {
  std::int64_t run_id = 0;
  std::string job;
  std::size_t batch_size = 0;
  std::size_t sequence = 0;
  RunOutcome outcome = RunOutcome::kOpen;
  std::size_t epochs = 0;
  double cost = 0;
  double energy_j = 0;
  double time_s = 0;
  std::optional<double> last_metric;
  RunOwner owner;
};

inline constexpr double kDefaultRunLeaseS = 900;

class RecurringStore : public BatchSizeStore {
 public:
  // The schema version this chase writes.
  static int schema_version() noexcept;

  virtual RunDecision begin_run(const std::string& job, const std::optional<RecurringJobSpec>& spec,
                                const RunOwner& owner) = 0;
  virtual void record_epoch(std::int64_t run_id, std::size_t epoch, double metric, double cost) = 0;
  virtual void end_run(std::int64_t run_id, const RunEnd& end) = 0;
  // Keeps an open run from being taken for killed by another host's begin_run.
  virtual void heartbeat(std::int64_t run_id) = 0;
  // Stores (or replaces) the batch size's profile; kNotFound for an unknown job.
  virtual void save_profile(const std::string& job, std::size_t batch_size,
                            const SavedProfile& profile) = 0;
  virtual std::optional<SavedProfile> profile(const std::string& job,
                                              std::size_t batch_size) const = 0;
  virtual std::optional<RecurringJobSpec> job(const std::string& job) const = 0;
  virtual std::vector<RunRecord> runs(const std::string& job) const = 0;
  virtual RunRecord run(std::int64_t run_id) const = 0;  // kNotFound when unknown
  // How long an open run without a heartbeat stays alive for another host (default 900 s).
  virtual void set_lease(double seconds) = 0;
};

// "sqlite:PATH", "postgresql://..." or "http://HOST:PORT" (a `chase serve`; `token` a bearer token
// signed with its key, issued by `chased token issue`; empty: $CHASE_SERVER_TOKEN, else the first
// line of the file $CHASE_SERVER_TOKEN_FILE names); see the contract above.
std::unique_ptr<RecurringStore> open_recurring_store(const std::string& url,
                                                     const std::string& token = {});
// Whether this build has the PostgreSQL backend.
bool have_postgresql_store() noexcept;

// The rule a run lives by, shared by `chase run` and the server (docs/RECURRING.md):
// after epoch `epoch` with `metric` and cumulative `cost`, the run stops when the metric reached
// the target, when epoch ≥ max_epochs, or when epoch ≥ ⌊cost_limit / epoch_cost⌋ (the last whole
// epoch within β × the cheapest recurrence, the simulator's bound; epoch_cost is the saved
// profile's epoch at the chosen limit, or the mean so far without one).
struct EpochVerdict {
  bool stop = false;
  RunOutcome outcome = RunOutcome::kOpen;  // what the run ends as when it stops here
  std::string reason;
};
EpochVerdict judge_epoch(const RecurringJobSpec& spec, const RunDecision& decision,
                         std::size_t epoch, double metric, double cost);
// η·E + (1−η)·MaxPower·T.
double recurring_cost(const RecurringJobSpec& spec, double energy_j, double time_s) noexcept;

}  // namespace chase
