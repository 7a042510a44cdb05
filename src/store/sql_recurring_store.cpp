// The recurring store over any SqlConnection (contract: chase/recurring_store.h): the schema and
// its migrations, and the run lifecycle, each call one transaction.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "chase/error.h"
#include "chase/recurring_simulation.h"
#include "chase/recurring_store.h"
#include "store/sql.h"
#include "store/store_json.h"

namespace chase {
namespace store {
namespace {

// Each migration takes the schema from its index to index + 1; never edit one that shipped, add
// the next. `{id}` is the backend's auto-numbered key column.
constexpr const char* kMigrations[] = {
    // 0 → 1: jobs, their observations and runs.
    R"(CREATE TABLE jobs (name TEXT PRIMARY KEY, spec TEXT NOT NULL,
                          created_at DOUBLE PRECISION NOT NULL);
       CREATE TABLE observations (job TEXT NOT NULL, seq BIGINT NOT NULL,
                                  batch_size BIGINT NOT NULL, cost DOUBLE PRECISION NOT NULL,
                                  reached INTEGER NOT NULL, started INTEGER NOT NULL, run_id BIGINT,
                                  PRIMARY KEY (job, seq));
       CREATE TABLE runs (id {id}, job TEXT NOT NULL REFERENCES jobs(name),
                          batch_size BIGINT NOT NULL, seq BIGINT NOT NULL, outcome TEXT NOT NULL,
                          host TEXT NOT NULL, pid BIGINT NOT NULL,
                          started_at DOUBLE PRECISION NOT NULL,
                          heartbeat_at DOUBLE PRECISION NOT NULL, ended_at DOUBLE PRECISION,
                          epochs BIGINT NOT NULL DEFAULT 0, cost DOUBLE PRECISION NOT NULL DEFAULT 0,
                          energy_j DOUBLE PRECISION NOT NULL DEFAULT 0,
                          time_s DOUBLE PRECISION NOT NULL DEFAULT 0, exit_code INTEGER,
                          last_metric DOUBLE PRECISION);
       CREATE INDEX runs_by_job ON runs (job, outcome);)",
    // 1 → 2: per-epoch reports and the saved power-limit profiles.
    R"(CREATE TABLE epochs (run_id BIGINT NOT NULL REFERENCES runs(id), epoch BIGINT NOT NULL,
                            metric DOUBLE PRECISION NOT NULL, cost DOUBLE PRECISION NOT NULL,
                            PRIMARY KEY (run_id, epoch));
       CREATE TABLE profiles (job TEXT NOT NULL REFERENCES jobs(name), batch_size BIGINT NOT NULL,
                              points TEXT NOT NULL, power_limit_w DOUBLE PRECISION NOT NULL,
                              epoch_time_s DOUBLE PRECISION NOT NULL,
                              epoch_energy_j DOUBLE PRECISION NOT NULL,
                              PRIMARY KEY (job, batch_size));)",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string this_host() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

bool process_alive(std::int64_t pid) {
  if (pid <= 0) return false;
  return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// The job's options as stored: JSON text, the format of the HTTP API (store/store_json.h).
RecurringJobSpec stored_spec(const std::string& text) {
  try {
    return spec_from_json(nlohmann::json::parse(text));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kParse, fmt::format("a job's stored options are damaged: {}", e.what()));
  }
}

std::string points_json(const std::vector<LimitMeasurement>& points) {
  return to_json(SavedProfile{points, 0, 0, 0}).at("points").dump();
}

std::vector<LimitMeasurement> points_from_json(const std::string& text) {
  return profile_from_json({{"points", nlohmann::json::parse(text)},
                            {"power_limit_w", 0},
                            {"epoch_time_s", 0},
                            {"epoch_energy_j", 0}})
      .points;
}

BatchSizeOptimizerOptions optimizer_options(const std::string& job, const RecurringJobSpec& spec,
                                            std::shared_ptr<BatchSizeStore> observations) {
  BatchSizeOptimizerOptions o;
  o.job_id = job;
  o.batch_sizes = spec.batch_sizes;
  o.default_batch_size = spec.default_batch_size;
  o.pruning_rounds = spec.pruning_rounds;
  o.explorations = spec.explorations;
  o.window = spec.window;
  o.beta = spec.beta;
  // The simulator's decision stream for the same seed, so a live job and its simulation agree.
  o.seed = spec.seed ^ kDecisionSeedSalt;
  o.store = std::move(observations);
  return o;
}

constexpr const char* kRunColumns =
    "id, job, batch_size, seq, outcome, epochs, cost, energy_j, time_s, last_metric, host, pid";

RunRecord run_from_row(const SqlRow& row) {
  RunRecord r;
  r.run_id = row.integer(0);
  r.job = row.text(1);
  r.batch_size = static_cast<std::size_t>(row.integer(2));
  r.sequence = static_cast<std::size_t>(row.integer(3));
  r.outcome = run_outcome_from_string(row.text(4));
  r.epochs = static_cast<std::size_t>(row.integer(5));
  r.cost = row.real(6);
  r.energy_j = row.real(7);
  r.time_s = row.real(8);
  if (!row.is_null(9)) r.last_metric = row.real(9);
  r.owner.host = row.text(10);
  r.owner.pid = row.integer(11);
  return r;
}

// One stored observation with its place in the job's history.
struct StoredObservation {
  std::int64_t seq = 0;
  BatchSizeObservation observation;
};

bool same_observation(const BatchSizeObservation& a, const BatchSizeObservation& b) {
  return a.batch_size == b.batch_size && a.reached == b.reached && a.started == b.started &&
         std::memcmp(&a.cost, &b.cost, sizeof(double)) == 0;  // every bit
}

// The observations of one job inside the caller's open transaction: what the optimizer reads at
// construction and appends through observe(), so a decision and what it learnt commit together.
// It remembers the last observation it read or wrote (the tail), which is where a cached
// optimizer over it stands in the history.
class TransactionObservations final : public BatchSizeStore {
 public:
  explicit TransactionObservations(SqlConnection& db) : db_(db) {}
  std::vector<BatchSizeObservation> load(const std::string& job) const override {
    std::vector<BatchSizeObservation> observations;
    for (auto& stored : read_from(job, 0)) observations.push_back(stored.observation);
    return observations;
  }
  void append(const std::string& job, const BatchSizeObservation& o) override {
    // One past the last, not the count: a history with a gap (edited by hand) still appends.
    // One statement (one round trip); the job's lock keeps the number from being taken meanwhile.
    const auto seq =
        db_.query(
               "INSERT INTO observations (job, seq, batch_size, cost, reached, started, run_id) "
               "SELECT ?, COALESCE(MAX(seq), -1) + 1, ?, ?, ?, ?, ? FROM observations WHERE job = "
               "? "
               "RETURNING seq",
               {job, static_cast<std::int64_t>(o.batch_size), o.cost,
                std::int64_t{o.reached ? 1 : 0}, std::int64_t{o.started ? 1 : 0},
                run_id_ ? SqlValue(*run_id_) : SqlValue(nullptr), job})
            .front()
            .integer(0);
    tail_ = StoredObservation{seq, o};
  }
  void set_run(std::optional<std::int64_t> run_id) { run_id_ = run_id; }

  // The job's observations from `first_seq` on, in order; the last becomes the tail. With
  // `before`, also how many come before `first_seq` (in the same statement: one round trip).
  std::vector<StoredObservation> read_from(const std::string& job, std::int64_t first_seq,
                                           std::int64_t* before = nullptr) const {
    const auto rows =
        before == nullptr
            ? db_.query(
                  "SELECT seq, batch_size, cost, reached, started FROM observations WHERE job = ? "
                  "AND seq >= ? ORDER BY seq",
                  {job, first_seq})
            : db_.query(
                  "SELECT seq, batch_size, cost, reached, started, (SELECT COUNT(*) FROM "
                  "observations WHERE job = ? AND seq < ?) FROM observations WHERE job = ? AND "
                  "seq >= ? ORDER BY seq",
                  {job, first_seq, job, first_seq});
    std::vector<StoredObservation> observations;
    for (const auto& row : rows) {
      observations.push_back({row.integer(0),
                              {static_cast<std::size_t>(row.integer(1)), row.real(2),
                               row.integer(3) != 0, row.integer(4) != 0}});
    }
    if (before != nullptr && !rows.empty()) *before = rows.front().integer(5);
    if (!observations.empty()) tail_ = observations.back();
    return observations;
  }
  const std::optional<StoredObservation>& tail() const noexcept { return tail_; }

 private:
  SqlConnection& db_;
  std::optional<std::int64_t> run_id_;
  mutable std::optional<StoredObservation> tail_;
};

// A job's optimizer kept between decisions on one connection, so a decision reads only what
// was appended since the last one instead of the whole history.
struct CachedJob {
  std::string spec_text;  // the spec as stored: another text means another job
  std::shared_ptr<TransactionObservations> observations;
  BatchSizeOptimizer optimizer;
  std::uint64_t last_used = 0;
};

// Jobs cached per connection; the least recently used goes first.
constexpr std::size_t kCachedJobs = 256;

class SqlRecurringStore final : public RecurringStore {
 public:
  explicit SqlRecurringStore(std::unique_ptr<SqlConnection> db)
      : db_(std::move(db)), host_(this_host()) {
    migrate();
  }

  std::vector<BatchSizeObservation> load(const std::string& job) const override {
    return TransactionObservations(*db_).load(job);
  }

  void append(const std::string& job, const BatchSizeObservation& observation) override {
    in_transaction(*db_, [&] {
      db_->lock_job(job);
      TransactionObservations(*db_).append(job, observation);
    });
  }

  RunDecision begin_run(const std::string& job, const std::optional<RecurringJobSpec>& given,
                        const RunOwner& owner) override {
    if (job.empty()) throw Error(ErrorCode::kInvalidArgument, "a job needs a name");
    if (given) check_job_spec(*given);
    // Out of the cache for the transaction: it goes back only once the decision committed, so a
    // decision that fails (or whose commit does) teaches the cache nothing.
    std::unique_ptr<CachedJob> decided;
    auto decided_run = in_transaction(*db_, [&] {
      db_->lock_job(job);
      RunDecision decision;
      std::string spec_text;
      decision.spec = registered_spec(job, given, &spec_text);
      decision.killed = reap_dead_runs(job);
      decided = caught_up(job, decision.spec, spec_text);
      auto& optimizer = decided->optimizer;
      choose(job, optimizer, decision);
      decision.sequence = optimizer.history().size();
      const double now = now_s();
      decision.run_id =
          db_->query(
                 "INSERT INTO runs (job, batch_size, seq, outcome, host, pid, started_at, "
                 "heartbeat_at) VALUES (?, ?, ?, 'open', ?, ?, ?, ?) RETURNING id",
                 {job, static_cast<std::int64_t>(decision.batch_size),
                  static_cast<std::int64_t>(decision.sequence), owner.host, owner.pid, now, now})
              .front()
              .integer(0);
      return decision;
    });
    keep(job, std::move(decided));
    return decided_run;
  }

  void record_epoch(std::int64_t run_id, std::size_t epoch, double metric, double cost) override {
    if (!std::isfinite(metric)) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("run {}: epoch {} reports the metric {}; only finite metrics count "
                              "(a NaN usually means the training diverged)",
                              run_id, epoch, metric));
    }
    if (!std::isfinite(cost) || cost < 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("run {}: the cost {} of epoch {} is not finite and ≥ 0", run_id, cost,
                              epoch));
    }
    in_transaction(*db_, [&] {
      lock_open_run(run_id);
      if (!db_->query("SELECT 1 FROM epochs WHERE run_id = ? AND epoch = ?",
                      {run_id, static_cast<std::int64_t>(epoch)})
               .empty()) {
        throw Error(ErrorCode::kAlreadyExists,
                    fmt::format("run {}: epoch {} was already reported", run_id, epoch));
      }
      db_->query("INSERT INTO epochs (run_id, epoch, metric, cost) VALUES (?, ?, ?, ?)",
                 {run_id, static_cast<std::int64_t>(epoch), metric, cost});
      db_->query(
          "UPDATE runs SET epochs = ?, last_metric = ?, cost = ?, heartbeat_at = ? WHERE id = ?",
          {static_cast<std::int64_t>(epoch), metric, cost, now_s(), run_id});
    });
  }

  void end_run(std::int64_t run_id, const RunEnd& end) override {
    if (end.outcome == RunOutcome::kOpen) {
      throw Error(ErrorCode::kInvalidArgument, "a run cannot end as 'open'");
    }
    if (!std::isfinite(end.cost) || end.cost < 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("run {}: its cost {} is not finite and ≥ 0", run_id, end.cost));
    }
    in_transaction(*db_, [&] {
      const auto run = lock_open_run(run_id);
      db_->query(
          "UPDATE runs SET outcome = ?, epochs = ?, cost = ?, energy_j = ?, time_s = ?, "
          "exit_code = ?, ended_at = ? WHERE id = ?",
          {std::string(to_string(end.outcome)), static_cast<std::int64_t>(end.epochs), end.cost,
           end.energy_j, end.time_s, std::int64_t{end.exit_code}, now_s(), run_id});
      if (end.outcome == RunOutcome::kKilled) return;
      TransactionObservations observations(*db_);
      observations.set_run(run_id);
      observations.append(run.job,
                          {run.batch_size, end.cost, end.outcome == RunOutcome::kReached, true});
    });
  }

  void heartbeat(std::int64_t run_id) override {
    // A transaction, so it queues with the other writers of this process (SQLite).
    in_transaction(*db_, [&] {
      db_->query("UPDATE runs SET heartbeat_at = ? WHERE id = ? AND outcome = 'open'",
                 {now_s(), run_id});
    });
  }

  void save_profile(const std::string& job, std::size_t batch_size,
                    const SavedProfile& profile) override {
    if (!(profile.epoch_time_s > 0) || !(profile.epoch_energy_j > 0) ||
        !std::isfinite(profile.epoch_time_s) || !std::isfinite(profile.epoch_energy_j)) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("job '{}', batch size {}: a profile's epoch needs a finite, positive "
                              "time and energy",
                              job, batch_size));
    }
    in_transaction(*db_, [&] {
      db_->lock_job(job);
      if (db_->query("SELECT 1 FROM jobs WHERE name = ?", {job}).empty()) unknown_job(job);
      const auto size = static_cast<std::int64_t>(batch_size);
      db_->query("DELETE FROM profiles WHERE job = ? AND batch_size = ?", {job, size});
      db_->query(
          "INSERT INTO profiles (job, batch_size, points, power_limit_w, epoch_time_s, "
          "epoch_energy_j) VALUES (?, ?, ?, ?, ?, ?)",
          {job, size, points_json(profile.points), profile.power_limit_w, profile.epoch_time_s,
           profile.epoch_energy_j});
    });
  }

  std::optional<SavedProfile> profile(const std::string& job,
                                      std::size_t batch_size) const override {
    const auto rows = db_->query(
        "SELECT points, power_limit_w, epoch_time_s, epoch_energy_j FROM profiles WHERE job = ? "
        "AND batch_size = ?",
        {job, static_cast<std::int64_t>(batch_size)});
    if (rows.empty()) return std::nullopt;
    const auto& row = rows.front();
    return SavedProfile{points_from_json(row.text(0)), row.real(1), row.real(2), row.real(3)};
  }

  std::optional<RecurringJobSpec> job(const std::string& job) const override {
    const auto rows = db_->query("SELECT spec FROM jobs WHERE name = ?", {job});
    if (rows.empty()) return std::nullopt;
    return stored_spec(rows.front().text(0));
  }

  std::vector<RunRecord> runs(const std::string& job) const override {
    std::vector<RunRecord> runs;
    for (const auto& row : db_->query(
             fmt::format("SELECT {} FROM runs WHERE job = ? ORDER BY id", kRunColumns), {job})) {
      runs.push_back(run_from_row(row));
    }
    return runs;
  }

  RunRecord run(std::int64_t run_id) const override {
    const auto rows =
        db_->query(fmt::format("SELECT {} FROM runs WHERE id = ?", kRunColumns), {run_id});
    if (rows.empty()) {
      throw Error(ErrorCode::kNotFound,
                  fmt::format("there is no run {} in the store {}", run_id, db_->location()));
    }
    return run_from_row(rows.front());
  }

  void set_lease(double seconds) override {
    if (!(seconds > 0)) throw Error(ErrorCode::kInvalidArgument, "a run's lease must be > 0 s");
    lease_s_ = seconds;
  }

 private:
  void migrate() {
    in_transaction(*db_, [&] {
      db_->lock_schema();
      int version = 0;
      if (db_->has_table("chase_schema")) {
        version =
            static_cast<int>(db_->query("SELECT version FROM chase_schema").front().integer(0));
      } else {
        db_->execute_script(
            "CREATE TABLE chase_schema (version INTEGER NOT NULL);"
            "INSERT INTO chase_schema (version) VALUES (0);");
      }
      if (version > kSchemaVersion) {
        throw Error(ErrorCode::kUnavailable,
                    fmt::format("the store {} has schema version {}, newer than the {} this chase "
                                "knows: it was written by a newer chase; upgrade chase (nothing "
                                "was changed)",
                                db_->location(), version, kSchemaVersion));
      }
      for (int v = version; v < kSchemaVersion; ++v) {
        std::string sql = kMigrations[v];
        for (auto at = sql.find("{id}"); at != std::string::npos; at = sql.find("{id}")) {
          sql.replace(at, 4, db_->identity_column());
        }
        db_->execute_script(sql);
        db_->query("UPDATE chase_schema SET version = ?", {std::int64_t{v + 1}});
      }
    });
  }

  [[noreturn]] static void unknown_job(const std::string& job) {
    throw Error(ErrorCode::kNotFound,
                fmt::format("unknown job '{}': its first run must give its options (at least "
                            "--batch-sizes, --default-batch-size and --target)",
                            job));
  }

  // The job's spec (registering it on first use) and, in `text`, the spec as stored.
  RecurringJobSpec registered_spec(const std::string& job,
                                   const std::optional<RecurringJobSpec>& given,
                                   std::string* text) {
    const auto rows = db_->query("SELECT spec FROM jobs WHERE name = ?", {job});
    if (rows.empty()) {
      if (!given) unknown_job(job);
      *text = to_json(*given).dump();
      db_->query("INSERT INTO jobs (name, spec, created_at) VALUES (?, ?, ?)",
                 {job, *text, now_s()});
      return *given;
    }
    *text = rows.front().text(0);
    auto stored = stored_spec(*text);
    if (given) {
      const auto differences = job_spec_differences(stored, *given);
      if (!differences.empty()) {
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("job '{}' was registered with other options: {}; give the stored "
                                "ones (or leave them out), or use a new job name",
                                job, differences));
      }
    }
    return stored;
  }

  // The job's optimizer as of the observations committed now: the cached one fed what others
  // appended since, or one built from the whole history when there is none, or when the history
  // no longer continues the one it learnt (edited, removed, another spec).
  std::unique_ptr<CachedJob> caught_up(const std::string& job, const RecurringJobSpec& spec,
                                       const std::string& spec_text) {
    if (const auto it = cache_.find(job); it != cache_.end()) {
      auto cached = std::move(it->second);
      cache_.erase(it);
      if (cached->spec_text == spec_text && catch_up(job, *cached)) return cached;
    }
    auto observations = std::make_shared<TransactionObservations>(*db_);
    BatchSizeOptimizer optimizer(optimizer_options(job, spec, observations));
    return std::make_unique<CachedJob>(CachedJob{spec_text, observations, std::move(optimizer)});
  }

  // Feeds `cached` what was appended after its tail; false when the history before that is not
  // the one it learnt: its tail changed or went, or the count up to it differs (a row removed
  // or slipped in). Edits of older rows that keep their count are not seen (docs/RECURRING.md).
  bool catch_up(const std::string& job, CachedJob& cached) {
    const auto tail = cached.observations->tail();
    const auto held = cached.optimizer.history().size();
    if (!tail) {
      if (held != 0) return false;
      std::vector<BatchSizeObservation> appended;
      for (auto& stored : cached.observations->read_from(job, 0)) {
        appended.push_back(stored.observation);
      }
      cached.optimizer.catch_up(appended);
      return true;
    }
    std::int64_t before_tail = -1;
    const auto rows = cached.observations->read_from(job, tail->seq, &before_tail);
    if (rows.empty() || rows.front().seq != tail->seq ||
        !same_observation(rows.front().observation, tail->observation) ||
        static_cast<std::size_t>(before_tail) + 1 != held) {
      return false;
    }
    std::vector<BatchSizeObservation> appended;
    for (auto it = rows.begin() + 1; it != rows.end(); ++it) appended.push_back(it->observation);
    cached.optimizer.catch_up(appended);
    return true;
  }

  void keep(const std::string& job, std::unique_ptr<CachedJob> decided) {
    decided->last_used = ++uses_;
    cache_[job] = std::move(decided);
    if (cache_.size() <= kCachedJobs) return;
    auto oldest = cache_.begin();
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->second->last_used < oldest->second->last_used) oldest = it;
    }
    cache_.erase(oldest);
  }

  // Open runs whose owner is gone become killed (no observation: a kill is no evidence).
  std::vector<std::int64_t> reap_dead_runs(const std::string& job) {
    std::vector<std::int64_t> killed;
    const double now = now_s();
    for (const auto& row : db_->query(
             "SELECT id, host, pid, heartbeat_at FROM runs WHERE job = ? AND outcome = 'open'",
             {job})) {
      const bool here = row.text(1) == host_;
      const bool gone = here ? !process_alive(row.integer(2)) : now - row.real(3) > lease_s_;
      if (!gone) continue;
      killed.push_back(row.integer(0));
      db_->query("UPDATE runs SET outcome = 'killed', ended_at = ? WHERE id = ?",
                 {now, row.integer(0)});
    }
    return killed;
  }

  // The batch size, skipping (and teaching the optimizer about) sizes whose saved epoch alone
  // already costs more than the limit, as the simulator's observe_not_started does.
  void choose(const std::string& job, BatchSizeOptimizer& optimizer, RunDecision& decision) {
    const auto& spec = decision.spec;
    const std::size_t most = 10 * spec.batch_sizes.size() + 10;
    for (std::size_t tries = 0; tries < most; ++tries) {
      decision.batch_size = optimizer.next_batch_size();
      decision.cost_limit = optimizer.cost_limit();
      decision.profile = profile(job, decision.batch_size);
      if (!decision.profile || !std::isfinite(decision.cost_limit)) return;
      const double epoch_cost =
          recurring_cost(spec, decision.profile->epoch_energy_j, decision.profile->epoch_time_s);
      if (std::floor(decision.cost_limit / epoch_cost) >= 1) return;
      optimizer.observe_not_started(decision.batch_size);
      ++decision.ruled_out;
    }
    throw Error(ErrorCode::kNotFound,
                fmt::format("job '{}': every batch size costs more per epoch than the cost limit "
                            "{:g} (β × the cheapest recurrence); raise --beta",
                            job, optimizer.cost_limit()));
  }

  // The run, with its job locked; kNotFound / kAlreadyExists when it cannot take a report.
  RunRecord lock_open_run(std::int64_t run_id) {
    const auto known = run(run_id);
    db_->lock_job(known.job);
    const auto current = run(run_id);
    if (current.outcome != RunOutcome::kOpen) {
      throw Error(ErrorCode::kAlreadyExists,
                  fmt::format("run {} of job '{}' has already ended ({}); start a new run", run_id,
                              current.job, to_string(current.outcome)));
    }
    return current;
  }

  std::unique_ptr<SqlConnection> db_;
  std::string host_;
  double lease_s_ = kDefaultRunLeaseS;
  std::unordered_map<std::string, std::unique_ptr<CachedJob>> cache_;
  std::uint64_t uses_ = 0;
};

}  // namespace

std::unique_ptr<RecurringStore> make_sql_recurring_store(std::unique_ptr<SqlConnection> db) {
  return std::make_unique<SqlRecurringStore>(std::move(db));
}

}  // namespace store

int RecurringStore::schema_version() noexcept { return store::kSchemaVersion; }

}  // namespace chase
