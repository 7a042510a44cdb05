// chase run --job NAME [--store URL] [job options] -- CMD [ARGS...]: one recurrence of a recurring
// job. Asks the store's optimiser for the batch size, runs the command with it in the environment,
// measures it as `chase measure` does, answers the script's epoch reports (go on / stop: the
// target, max epochs, or β × the cheapest recurrence), and records each run's outcome; a run that
// stopped early or failed is followed by the next decision, up to --max-tries runs
// (docs/RECURRING.md).
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "chase/energy_monitor.h"
#include "chase/error.h"
#include "chase/recurring_store.h"
#include "chase/run_client.h"
#include "chase/selector.h"
#include "cli/child_process.h"
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "cli/output_file.h"
#include "common/text.h"
#include "server/token.h"
#include "store/run_socket.h"

extern char** environ;

namespace chase::cli {
namespace {

struct RunJobOptions {
  std::string job;
  std::string store;
  std::string server;      // http://HOST:PORT of a chase serve, instead of --store
  std::string token_file;  // its bearer token
  std::vector<std::size_t> batch_sizes;
  std::optional<std::size_t> default_batch_size;
  std::optional<double> target;
  bool lower_is_better = false;
  std::optional<std::size_t> max_epochs;
  std::optional<double> eta, beta, max_power_w;
  std::optional<std::uint64_t> seed;
  std::optional<std::size_t> pruning_rounds, explorations, window;
  std::size_t max_tries = 20;
  bool no_cpu = false;
  bool json = false;
  std::vector<std::string> command;
};

constexpr std::uint64_t kMaxEpochs = 100000;
// How often chase run tells the store its run is alive (other hosts take a silent run for killed
// after the lease, chase/recurring_store.h).
constexpr std::chrono::seconds kHeartbeat{30};
constexpr std::string_view kRunWindow = "chase-run";
constexpr std::string_view kProgressWindow = "chase-run-progress";

// sqlite:$XDG_DATA_HOME/chase/recurring.db (or ~/.local/share/...), or $CHASE_STORE.
std::string default_store_url() {
  if (const char* url = std::getenv("CHASE_STORE"); url != nullptr && *url != '\0') return url;
  std::filesystem::path base;
  if (const char* data = std::getenv("XDG_DATA_HOME"); data != nullptr && *data != '\0') {
    base = data;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    base = std::filesystem::path(home) / ".local" / "share";
  } else {
    return "sqlite:chase-recurring.db";
  }
  std::error_code ignored;
  std::filesystem::create_directories(base / "chase", ignored);
  return "sqlite:" + (base / "chase" / "recurring.db").string();
}

// The first line of --token-file (empty without one: $CHASE_SERVER_TOKEN or
// $CHASE_SERVER_TOKEN_FILE then applies).
std::string token_of(const std::string& path) {
  return path.empty() ? std::string()
                      : server::read_token_file(path, fmt::format("--token-file '{}'", path));
}

bool any_job_option(const RunJobOptions& o) {
  return !o.batch_sizes.empty() || o.default_batch_size || o.target || o.lower_is_better ||
         o.max_epochs || o.eta || o.beta || o.max_power_w || o.seed || o.pruning_rounds ||
         o.explorations || o.window;
}

// The options given, over the stored ones (or the defaults for a new job); none given: nullopt,
// the stored options apply as they are.
std::optional<RecurringJobSpec> given_spec(const RunJobOptions& o,
                                           const std::optional<RecurringJobSpec>& stored,
                                           double measured_max_power_w) {
  if (!any_job_option(o)) return std::nullopt;
  RecurringJobSpec spec = stored.value_or(RecurringJobSpec{});
  if (!stored) {
    if (o.batch_sizes.empty() || !o.target) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("job '{}' is new: its first run needs --batch-sizes and --target "
                              "(and --default-batch-size unless the first size is the default)",
                              o.job));
    }
    spec.default_batch_size = o.batch_sizes.front();
    spec.max_power_w = measured_max_power_w;
  }
  if (!o.batch_sizes.empty()) spec.batch_sizes = o.batch_sizes;
  if (o.default_batch_size) spec.default_batch_size = *o.default_batch_size;
  if (o.target) spec.target_metric = *o.target;
  if (o.lower_is_better) spec.higher_is_better = false;
  if (o.max_epochs) spec.max_epochs = *o.max_epochs;
  if (o.eta) spec.eta = *o.eta;
  if (o.beta) spec.beta = *o.beta;
  if (o.seed) spec.seed = *o.seed;
  if (o.max_power_w) spec.max_power_w = *o.max_power_w;
  if (o.pruning_rounds) spec.pruning_rounds = *o.pruning_rounds;
  if (o.explorations) spec.explorations = *o.explorations;
  if (o.window) spec.window = *o.window;
  if (!(spec.max_power_w > 0)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("job '{}': no GPU to take the cost's MaxPower from; give --max-power W "
                            "(the GPUs' highest power limit times their number)",
                            o.job));
  }
  return spec;
}

// The measurement devices, as chase measure opens them: every healthy GPU, and RAPL unless
// --no-cpu. A machine without either is still run (its energy reads 0 unless the script reports).
struct Devices {
  OpenedGpus gpus;
  OpenedCpus cpus;
  std::vector<std::size_t> gpu_indices;
  double max_power_w = 0;
};

Devices open_devices(bool no_cpu) {
  Devices d;
  d.gpus = open_gpus();
  if (d.gpus.backend) {
    for (std::size_t i = 0; i < d.gpus.backend->gpu_count(); ++i) {
      const auto& gpu = d.gpus.backend->gpus()[i];
      if (!is_healthy(gpu)) continue;
      d.gpu_indices.push_back(i);
      d.max_power_w += gpu.max_power_limit_w;
    }
  }
  if (!no_cpu) d.cpus = open_cpus();
  return d;
}

// One run: the decision, what the script reported, and the verdict; the socket thread and the
// main thread share it (and the store connection) under the mutex.
class RunSession {
 public:
  RunSession(RecurringStore& store, RunDecision decision, EnergyMonitor& monitor)
      : store_(store), decision_(std::move(decision)), monitor_(monitor) {}

  nlohmann::json handle(const nlohmann::json& request) {
    std::lock_guard lock(mutex_);
    if (request.contains("profile")) return profile(request);
    if (request.contains("epoch")) return epoch(request);
    throw Error(ErrorCode::kInvalidArgument,
                "a run report needs \"epoch\" and \"metric\", or a \"profile\"");
  }

  void heartbeat() {
    std::lock_guard lock(mutex_);
    store_.heartbeat(decision_.run_id);
  }

  // After the command ended (the socket is closed by then).
  const std::optional<EpochVerdict>& verdict() const { return verdict_; }
  std::size_t epochs() const { return epochs_; }
  const std::optional<RunAccount>& account() const { return account_; }
  const RunDecision& decision() const { return decision_; }

 private:
  static double number(const nlohmann::json& request, const char* field) {
    const auto it = request.find(field);
    if (it == request.end() || !it->is_number()) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("a run report's \"{}\" must be a number", field));
    }
    return it->get<double>();
  }

  nlohmann::json epoch(const nlohmann::json& request) {
    const double epoch = number(request, "epoch");
    const double metric = number(request, "metric");
    if (!(epoch >= 1) || epoch != std::floor(epoch) || epoch > double(kMaxEpochs)) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("--epoch must be a whole number from 1 (epochs count from 1), not {}",
                              epoch));
    }
    if (!std::isfinite(metric)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "the metric is not a finite number (NaN or inf); the run keeps going until it "
                  "reports a finite one or ends");
    }
    if (verdict_ && verdict_->stop) {
      throw Error(ErrorCode::kAlreadyExists,
                  fmt::format("run {} was already told to stop ({}); end the script",
                              decision_.run_id, verdict_->reason));
    }
    if (request.contains("energy_j") || request.contains("time_s")) {
      account_ = RunAccount{number(request, "energy_j"), number(request, "time_s")};
      if (!std::isfinite(account_->energy_j) || !std::isfinite(account_->time_s) ||
          account_->energy_j < 0 || account_->time_s < 0) {
        throw Error(ErrorCode::kInvalidArgument, "energy_j and time_s must be finite and ≥ 0");
      }
    } else {
      const auto m = monitor_.end_window(kProgressWindow);
      monitor_.begin_window(kProgressWindow);
      measured_.energy_j += std::isfinite(m.total_energy_j()) ? m.total_energy_j() : 0;
      measured_.time_s += m.time_s;
    }
    const auto n = static_cast<std::size_t>(epoch);
    const auto so_far = account_.value_or(measured_);
    const double cost = recurring_cost(decision_.spec, so_far.energy_j, so_far.time_s);
    store_.record_epoch(decision_.run_id, n, metric, cost);
    epochs_ = n;
    verdict_ = judge_epoch(decision_.spec, decision_, n, metric, cost);
    return {{"action", verdict_->stop ? "stop" : "continue"},
            {"outcome", to_string(verdict_->outcome)},
            {"reason", verdict_->reason}};
  }

  nlohmann::json profile(const nlohmann::json& request) {
    std::vector<LimitMeasurement> points;
    try {
      for (const auto& p : request.at("profile")) {
        points.push_back({p.at("power_limit_w").get<double>(), p.at("time_s").get<double>(),
                          p.at("energy_j").get<double>()});
      }
    } catch (const nlohmann::json::exception&) {
      throw Error(ErrorCode::kInvalidArgument,
                  "a profile is a list of {\"power_limit_w\", \"time_s\", \"energy_j\"}");
    }
    LimitProfileInfo info;
    info.job_id = store_.run(decision_.run_id).job;
    info.batch_size = decision_.batch_size;
    info.gpu_count = request.value("gpu_count", std::size_t{1});
    const LimitProfile limits(points, info, request.value("max_power_limit_w", 0.0));
    const auto selection = make_zeus_selector(decision_.spec.eta)->select(limits);
    SavedProfile saved{limits.points(), selection.power_limit_w, 0, 0};
    for (const auto& p : limits.points()) {
      if (p.power_limit_w != selection.power_limit_w) continue;
      saved.epoch_time_s = p.time_s;
      saved.epoch_energy_j = p.energy_j;
    }
    store_.save_profile(info.job_id, decision_.batch_size, saved);
    decision_.profile = saved;  // early stopping now prices an epoch at the chosen limit
    return {{"power_limit_w", selection.power_limit_w}};
  }

  std::mutex mutex_;
  RecurringStore& store_;
  RunDecision decision_;
  EnergyMonitor& monitor_;
  std::optional<EpochVerdict> verdict_;
  std::size_t epochs_ = 0;
  std::optional<RunAccount> account_;
  RunAccount measured_;
};

// Sets the run's variables for the child (it inherits environ) and restores them after.
class RunEnvironment {
 public:
  RunEnvironment(const std::string& job, const std::string& store_url, const RunDecision& d,
                 const std::string& socket) {
    set("CHASE_JOB", job);
    set("CHASE_STORE", store_url);
    set("CHASE_RUN_SOCKET", socket);
    set("CHASE_RUN_ID", std::to_string(d.run_id));
    set("CHASE_RUN_SEQUENCE", std::to_string(d.sequence));
    set("CHASE_BATCH_SIZE", std::to_string(d.batch_size));
    set("CHASE_MAX_EPOCHS", std::to_string(d.spec.max_epochs));
    set("CHASE_PROFILE", d.profile ? "0" : "1");
    set("CHASE_POWER_LIMIT_W", d.profile ? fmt::format("{}", d.profile->power_limit_w) : "");
  }
  ~RunEnvironment() {
    for (const auto& name : names_) unsetenv(name.c_str());
  }
  RunEnvironment(const RunEnvironment&) = delete;
  RunEnvironment& operator=(const RunEnvironment&) = delete;

 private:
  void set(const std::string& name, const std::string& value) {
    setenv(name.c_str(), value.c_str(), 1);
    names_.push_back(name);
  }
  std::vector<std::string> names_;
};

// Signals a user or a scheduler kills with; any other (SIGSEGV, SIGABRT...) is a crash: failed.
bool killed_by(int signal) {
  return signal == SIGKILL || signal == SIGTERM || signal == SIGINT || signal == SIGHUP ||
         signal == SIGQUIT;
}

RunEnd run_end(const RunSession& session, const CommandOutcome& outcome,
               const Measurement& measured, const RecurringJobSpec& spec, std::string& why) {
  RunEnd end;
  end.epochs = session.epochs();
  end.exit_code = outcome.exit_code;
  const auto& verdict = session.verdict();
  if (verdict && verdict->stop) {
    end.outcome = verdict->outcome;
    why = verdict->reason;
  } else if (outcome.signal != 0 && killed_by(outcome.signal)) {
    end.outcome = RunOutcome::kKilled;
    why = fmt::format("the command was killed by signal {}", outcome.signal);
  } else if (outcome.signal != 0) {
    end.outcome = RunOutcome::kFailed;
    why = fmt::format("the command crashed (signal {})", outcome.signal);
  } else if (outcome.exit_code != 0) {
    end.outcome = RunOutcome::kFailed;
    why = fmt::format("the command failed with exit code {}", outcome.exit_code);
  } else {
    end.outcome = RunOutcome::kFailed;
    why = session.epochs() == 0 ? "the command ended without reporting an epoch (chase run-report)"
                                : "the command ended before reaching the target";
  }
  if (session.account()) {
    end.energy_j = session.account()->energy_j;
    end.time_s = session.account()->time_s;
  } else {
    end.energy_j = std::isfinite(measured.total_energy_j()) ? measured.total_energy_j() : 0;
    end.time_s = measured.time_s;
  }
  end.cost = recurring_cost(spec, end.energy_j, end.time_s);
  return end;
}

nlohmann::json run_json(const RunDecision& d, const RunEnd& end, const std::string& why) {
  return {{"run_id", d.run_id},
          {"batch_size", d.batch_size},
          {"profiled", !d.profile},
          {"outcome", to_string(end.outcome)},
          {"reason", why},
          {"epochs", end.epochs},
          {"energy_j", end.energy_j},
          {"time_s", end.time_s},
          {"cost", end.cost},
          {"exit_code", end.exit_code},
          {"ruled_out", d.ruled_out},
          {"killed_before", d.killed}};
}

int run_job(RunJobOptions& options) {
  if (options.command.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "no command to run: chase run --job NAME -- CMD ...");
  }
  // Everything that can refuse does so before the command starts: the store, the options.
  if (!options.server.empty()) {
    if (options.server.rfind("http://", 0) != 0) {
      throw Error(
          ErrorCode::kInvalidArgument,
          fmt::format("--server '{}': give the chase serve URL, http://HOST:PORT", options.server));
    }
    options.store = options.server;
  }
  auto store = open_recurring_store(options.store, token_of(options.token_file));
  block_forwarded_signals();  // before the monitor starts its thread
  auto devices = open_devices(options.no_cpu);
  auto spec = given_spec(options, store->job(options.job), devices.max_power_w);
  const RunOwner owner{[] {
                         char host[256] = {};
                         gethostname(host, sizeof(host) - 1);
                         return std::string(host);
                       }(),
                       static_cast<std::int64_t>(getpid())};
  EnergyMonitorOptions monitor_options;
  monitor_options.gpus = devices.gpu_indices;
  EnergyMonitor monitor(devices.gpu_indices.empty() ? nullptr : devices.gpus.backend,
                        devices.cpus.backend, monitor_options);

  auto out = OutputFile::standard_output();
  nlohmann::json report = {{"job", options.job}, {"runs", nlohmann::json::array()}};
  int exit_code = 1;
  for (std::size_t attempt = 0; attempt < options.max_tries; ++attempt) {
    const auto decision = store->begin_run(options.job, spec, owner);
    spec.reset();  // registered (or checked) now
    for (const auto killed : decision.killed) {
      std::cerr << fmt::format(
          "chase run: run {} of job '{}' had lost its chase run; recorded as "
          "killed\n",
          killed, options.job);
    }
    RunSession session(*store, decision, monitor);
    CommandOutcome outcome;
    Measurement measured;
    {
      store::RunSocketServer server([&](const nlohmann::json& r) { return session.handle(r); });
      RunEnvironment environment(options.job, options.store, decision, server.path());
      monitor.begin_window(kRunWindow);
      monitor.begin_window(kProgressWindow);
      try {
        outcome = run_command(options.command, kHeartbeat, [&] { session.heartbeat(); });
      } catch (const Error& e) {
        monitor.cancel_window(kProgressWindow);
        monitor.end_window(kRunWindow);
        store->end_run(decision.run_id, {RunOutcome::kFailed, 0, 0, 0, 0, 127});
        throw;
      }
      measured = monitor.end_window(kRunWindow);
      monitor.cancel_window(kProgressWindow);
    }
    std::string why;
    const auto end = run_end(session, outcome, measured, session.decision().spec, why);
    store->end_run(decision.run_id, end);
    report["runs"].push_back(run_json(decision, end, why));
    std::cerr << fmt::format(
        "chase run: job '{}' run {}: batch size {}: {} ({}); {} epochs, "
        "{:.6g} J, {:.6g} s, cost {:.6g}\n",
        options.job, decision.run_id, decision.batch_size, to_string(end.outcome),
        escape_untrusted(why), end.epochs, end.energy_j, end.time_s, end.cost);
    exit_code = outcome.exit_code;
    const bool retry =
        (end.outcome == RunOutcome::kStoppedEarly || end.outcome == RunOutcome::kFailed) &&
        outcome.exit_code == 0 && outcome.signal == 0;
    if (!retry) break;
    exit_code = 1;  // out of tries unless a later run reaches the target
    if (attempt + 1 == options.max_tries) {
      std::cerr << fmt::format(
          "chase run: job '{}': no run reached the target in {} tries "
          "(--max-tries); each is recorded in the store\n",
          options.job, options.max_tries);
    }
  }
  if (options.json) out.stream() << report.dump(2) << '\n';
  out.close();
  return exit_code;
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<RunJobOptions>();
  options->store = default_store_url();
  auto* cmd = app.add_subcommand(
      "run",
      "One recurrence of a recurring job: the batch size learnt across runs, early stopping");
  cmd->add_option("--job", options->job, "The job's name (its options are stored under it)")
      ->required();
  auto* store =
      cmd->add_option("--store", options->store,
                      "Store URL: sqlite:PATH or postgresql://... (default: $CHASE_STORE, else "
                      "sqlite:~/.local/share/chase/recurring.db)");
  auto* server = cmd->add_option("--server", options->server,
                                 "A chase serve to decide and record through: http://HOST:PORT")
                     ->excludes(store);
  cmd->add_option("--token-file", options->token_file,
                  "A bearer token for the server (chased token issue), first line of FILE "
                  "(default: $CHASE_SERVER_TOKEN, else $CHASE_SERVER_TOKEN_FILE)")
      ->needs(server);
  cmd->add_option("--batch-sizes", options->batch_sizes, "The feasible batch sizes, e.g. 32,64,128")
      ->delimiter(',')
      ->transform(whole_number(1));
  cmd->add_option("--default-batch-size", options->default_batch_size,
                  "The batch size pruning starts from (left out: the first of --batch-sizes)")
      ->transform(whole_number(1));
  cmd->add_option("--target", options->target, "The metric the training must reach")
      ->check(finite_number(-kNoBound, kNoBound));
  cmd->add_flag("--lower-is-better", options->lower_is_better,
                "The metric is a loss or perplexity: the target is reached from above");
  cmd->add_option("--max-epochs", options->max_epochs, "Epochs after which a run has failed")
      ->transform(whole_number(1, kMaxEpochs));
  cmd->add_option("--eta", options->eta, "Weight of energy against time in the cost, in [0, 1]")
      ->check(fraction());
  cmd->add_option("--beta", options->beta,
                  "Early stopping at beta × the cheapest recurrence's cost (inf: never)")
      ->check(number_or_infinity(1));
  cmd->add_option("--seed", options->seed, "Seed of the optimiser's decisions")
      ->transform(whole_number(0, kMaxSeed));
  cmd->add_option("--max-power", options->max_power_w,
                  "MaxPower of the cost in W (left out: the GPUs' highest limits summed)")
      ->check(positive_number(1e7));
  cmd->add_option("--pruning-rounds", options->pruning_rounds, "Pruning rounds")
      ->transform(whole_number(0, 1000));
  cmd->add_option("--explorations", options->explorations, "Runs of each arm before sampling")
      ->transform(whole_number(1, 1000));
  cmd->add_option("--window", options->window, "Latest rewards per arm to learn from")
      ->transform(whole_number(1, 1'000'000));
  cmd->add_option("--max-tries", options->max_tries,
                  "Runs of this recurrence (after early stops and failures) before giving up")
      ->transform(whole_number(1, 1000))
      ->capture_default_str();
  cmd->add_flag("--no-cpu", options->no_cpu, "Do not measure CPU energy (RAPL)");
  cmd->add_flag("--json", options->json, "Print the recurrence's runs as JSON on standard output");
  cmd->add_option("command", options->command, "The training command, after --")->required();
  cmd->footer(
      "The command gets CHASE_JOB, CHASE_BATCH_SIZE, CHASE_RUN_ID, CHASE_RUN_SOCKET, CHASE_PROFILE "
      "and CHASE_POWER_LIMIT_W, and reports each epoch with `chase run-report --epoch N --metric "
      "X` (or the C++/Python two-line APIs); docs/RECURRING.md.");
  cmd->callback([options, &exit_code] { exit_code = run_job(*options); });
}

void add_run_report_command(CLI::App& app, int& exit_code) {
  struct Options {
    std::optional<std::size_t> epoch;
    std::optional<double> metric, energy_j, time_s;
    std::string profile;
  };
  auto options = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "run-report", "From a script under chase run: report an epoch; prints continue or stop");
  auto* epoch = cmd->add_option("--epoch", options->epoch, "The epoch just finished (from 1)")
                    ->transform(whole_number(1, kMaxEpochs));
  auto* metric = cmd->add_option("--metric", options->metric, "Its validation metric");
  auto* energy = cmd->add_option("--energy-j", options->energy_j,
                                 "The script's own energy so far (J), instead of chase run's")
                     ->check(non_negative_number());
  auto* time = cmd->add_option("--time-s", options->time_s, "... and its time so far (s)")
                   ->check(non_negative_number());
  auto* profile = cmd->add_option("--profile", options->profile,
                                  "A power-limit profile (chase JSON or Zeus CSV) to save; prints "
                                  "the chosen limit")
                      ->check(CLI::ExistingFile);
  epoch->needs(metric);
  metric->needs(epoch);
  energy->needs(time)->needs(epoch);
  time->needs(energy);
  profile->excludes(epoch);
  cmd->callback([options, &exit_code] {
    const auto client = RunClient::from_environment();
    auto out = OutputFile::standard_output();
    if (!options->profile.empty()) {
      out.stream() << fmt::format("{}\n",
                                  client.report_profile(load_limit_profile(options->profile)));
    } else if (options->epoch) {
      // The text is read by CLI11 as a double: "nan" and "inf" arrive here and are refused there.
      std::optional<RunAccount> account;
      if (options->energy_j) account = RunAccount{*options->energy_j, *options->time_s};
      const auto verdict = client.report(*options->epoch, *options->metric, account);
      out.stream() << (verdict.stop ? fmt::format("stop: {}\n", verdict.reason) : "continue\n");
    } else {
      throw Error(ErrorCode::kInvalidArgument, "give --epoch N --metric X, or --profile FILE");
    }
    out.close();
    exit_code = 0;
  });
}

}  // namespace chase::cli
