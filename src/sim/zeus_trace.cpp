// The Zeus training traces (contract: chase/zeus_trace.h).
#include "chase/zeus_trace.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "chase/error.h"
#include "common/csv.h"
#include "common/text.h"

namespace chase {
namespace {

bool same_metric(double a, double b) {
  return std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(b));
}

// Column indices by name; a missing column is a parse error naming the file and the columns needed.
std::vector<std::size_t> require_columns(const csv::Reader& reader,
                                         const std::vector<std::string_view>& names) {
  std::vector<std::size_t> indices;
  for (const auto name : names) {
    const auto index = reader.column(name);
    if (!index) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}:1: no column '{}'; a Zeus trace file has the columns {}",
                              reader.path().string(), name, fmt::join(names, ",")));
    }
    indices.push_back(*index);
  }
  return indices;
}

// A finite number from the field, or a parse error naming file, line and column.
double number(const csv::Reader& reader, const std::vector<std::string>& fields,
              std::size_t column) {
  const auto value = csv::parse_double(fields[column]);
  if (!value || !std::isfinite(*value)) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: '{}' is not a finite number", reader.where(column),
                            escape_untrusted(fields[column], 80)));
  }
  return *value;
}

std::size_t batch_size(const csv::Reader& reader, const std::vector<std::string>& fields,
                       std::size_t column) {
  // Beyond 2^53 doubles skip whole numbers, and from 2^64 on the conversion below would be
  // undefined behaviour.
  constexpr double kMaxBatchSize = 9007199254740992.0;
  const double value = number(reader, fields, column);
  if (value <= 0 || value != std::floor(value) || value > kMaxBatchSize) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: batch size '{}' is not a positive whole number (at most 2^53)",
                            reader.where(column), escape_untrusted(fields[column], 80)));
  }
  return static_cast<std::size_t>(value);
}

void check_row_width(const csv::Reader& reader, const std::vector<std::string>& fields) {
  if (fields.size() != reader.header().size()) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: {} fields where the header has {}", reader.where(), fields.size(),
                            reader.header().size()));
  }
}

void require_file(const std::filesystem::path& path, std::string_view what) {
  if (!std::filesystem::is_regular_file(path)) {
    throw Error(ErrorCode::kIo, fmt::format("{} not found at {}; point --trace-dir (or "
                                            "CHASE_DATA_DIR) at the zeus-trace folder",
                                            what, path.string()));
  }
}

// The job's parameters are the caller's (a front end's overrides), not the trace's: a bad one is
// said before any file is read, so that it is not blamed on the trace.
void check_workload(const WorkloadSpec& workload) {
  if (workload.default_batch_size == 0) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("workload {}: the default batch size must be at least 1", workload.dataset));
  }
  if (!std::isfinite(workload.target_metric) || workload.target_metric <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("workload {}: the target metric must be a finite number > 0, not {}",
                            workload.dataset, workload.target_metric));
  }
  if (workload.max_epochs == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("workload {}: max_epochs must be at least 1", workload.dataset));
  }
}

}  // namespace

const std::vector<WorkloadSpec>& zeus_workloads() {
  static const std::vector<WorkloadSpec> workloads = {
      {"cifar100", "shufflenetv2", 1024, 0.6, 100},
      {"imagenet", "resnet50", 256, 0.65, 100},
      {"squad", "bert_base_uncased", 32, 84.0, 6},
      {"librispeech", "deepspeech2", 192, 40.0, 16},
      {"movielens-1m", "ncf", 1024, 0.41, 100},
      {"sentiment140", "bert_base_uncased", 128, 0.84, 10},
  };
  return workloads;
}

const WorkloadSpec& zeus_workload(std::string_view dataset) {
  for (const auto& workload : zeus_workloads()) {
    if (workload.dataset == dataset) return workload;
  }
  std::vector<std::string> names;
  for (const auto& workload : zeus_workloads()) names.push_back(workload.dataset);
  throw Error(ErrorCode::kNotFound, fmt::format("unknown workload '{}'; the Zeus traces have {}",
                                                dataset, fmt::join(names, ", ")));
}

const std::vector<std::string>& zeus_trace_gpus() {
  static const std::vector<std::string> gpus = {"v100", "a40", "p100", "rtx6000"};
  return gpus;
}

ZeusTrace ZeusTrace::load(const std::filesystem::path& dir, std::string_view gpu,
                          const WorkloadSpec& workload) {
  const auto& gpus = zeus_trace_gpus();
  if (std::find(gpus.begin(), gpus.end(), gpu) == gpus.end()) {
    throw Error(ErrorCode::kNotFound, fmt::format("no Zeus trace for GPU '{}'; there are {}", gpu,
                                                  fmt::join(gpus, ", ")));
  }
  check_workload(workload);
  ZeusTrace trace;
  trace.workload_ = workload;
  trace.gpu_ = std::string(gpu);

  // Training paths first: they say which optimizer the workload's power rows must match.
  const auto train_path = dir / "summary_train.csv";
  require_file(train_path, "the training trace summary_train.csv");
  csv::Reader train(train_path);
  const auto tc = require_columns(
      train, {"dataset", "batch_size", "optimizer", "run", "target_metric", "target_epoch"});
  std::string optimizer;
  std::set<std::pair<std::size_t, double>> seen_runs;
  std::vector<std::string> fields;
  while (train.next(fields)) {
    check_row_width(train, fields);
    if (fields[tc[0]] != workload.dataset) continue;
    if (!same_metric(number(train, fields, tc[4]), workload.target_metric)) continue;
    optimizer = fields[tc[2]];
    const auto batch = batch_size(train, fields, tc[1]);
    const double run = number(train, fields, tc[3]);
    if (!seen_runs.emplace(batch, run).second) {
      throw Error(ErrorCode::kParse, fmt::format("{}: run {} of batch size {} appears twice",
                                                 train.where(), run, batch));
    }
    // An empty or NaN target epoch is a run that never reached the target.
    const auto epoch = csv::parse_double(fields[tc[5]]);
    if (fields[tc[5]].empty() || (epoch && std::isnan(*epoch))) {
      trace.paths_[batch].push_back(std::nullopt);
    } else {
      trace.paths_[batch].push_back(number(train, fields, tc[5]));
    }
  }

  const auto power_path = dir / fmt::format("summary_power_{}.csv", gpu);
  require_file(power_path, fmt::format("the {} power trace", gpu));
  csv::Reader power(power_path);
  const auto pc = require_columns(power, {"dataset", "batch_size", "optimizer", "power_limit",
                                          "time_per_epoch", "average_power"});
  while (power.next(fields)) {
    check_row_width(power, fields);
    if (fields[pc[0]] != workload.dataset || fields[pc[2]] != optimizer) continue;
    const auto key = std::pair{batch_size(power, fields, pc[1]), number(power, fields, pc[3])};
    const EpochCost cost{number(power, fields, pc[4]), number(power, fields, pc[5])};
    if (cost.time_s <= 0 || cost.avg_power_w <= 0) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}: epoch time and power must be positive", power.where()));
    }
    if (!trace.epochs_.emplace(key, cost).second) {
      throw Error(ErrorCode::kParse, fmt::format("{}: batch size {} at {} W appears twice",
                                                 power.where(), key.first, key.second));
    }
  }
  if (trace.paths_.empty() || trace.epochs_.empty()) {
    throw Error(ErrorCode::kNotFound,
                fmt::format("{} has no {} data for {} at target {} in {}", dir.string(), gpu,
                            workload.dataset, workload.target_metric,
                            trace.paths_.empty() ? train_path.string() : power_path.string()));
  }
  return trace;
}

std::vector<std::size_t> ZeusTrace::batch_sizes() const {
  std::set<std::size_t> sizes;
  for (const auto& [key, cost] : epochs_) {
    if (paths_.count(key.first) > 0) sizes.insert(key.first);
  }
  return {sizes.begin(), sizes.end()};
}

std::vector<double> ZeusTrace::power_limits() const {
  std::set<double> limits;
  for (const auto& [key, cost] : epochs_) limits.insert(key.second);
  return {limits.begin(), limits.end()};
}

double ZeusTrace::max_power_limit_w() const { return power_limits().back(); }

std::optional<EpochCost> ZeusTrace::epoch(std::size_t batch_size, double power_limit_w) const {
  const auto it = epochs_.find({batch_size, power_limit_w});
  if (it == epochs_.end()) return std::nullopt;
  return it->second;
}

const std::vector<std::optional<double>>& ZeusTrace::paths(std::size_t batch_size) const {
  static const std::vector<std::optional<double>> none;
  const auto it = paths_.find(batch_size);
  return it == paths_.end() ? none : it->second;
}

std::optional<TraceConfig> ZeusTrace::config(std::size_t batch_size, double power_limit_w) const {
  const auto cost = epoch(batch_size, power_limit_w);
  const auto& runs = paths(batch_size);
  if (!cost || runs.empty()) return std::nullopt;
  double epochs = 0;
  for (const auto& run : runs) {
    if (!run || *run > static_cast<double>(workload_.max_epochs)) return std::nullopt;
    epochs += *run;
  }
  const double mean_epochs = epochs / static_cast<double>(runs.size());
  return TraceConfig{batch_size, power_limit_w, mean_epochs * cost->energy_j(),
                     mean_epochs * cost->time_s};
}

TraceConfig ZeusTrace::default_config() const {
  const auto config_at = config(workload_.default_batch_size, max_power_limit_w());
  if (!config_at) {
    throw Error(ErrorCode::kNotFound,
                fmt::format("{} on {}: the default batch size {} at {} W has no energy-to-accuracy "
                            "(no data, or a run that never reaches the target {})",
                            workload_.dataset, gpu_, workload_.default_batch_size,
                            max_power_limit_w(), workload_.target_metric));
  }
  return *config_at;
}

TraceConfig ZeusTrace::best_config() const {
  std::optional<TraceConfig> best;
  for (const auto batch : batch_sizes()) {  // ascending, so "≤" keeps ties at the larger values
    for (const auto limit : power_limits()) {
      const auto candidate = config(batch, limit);
      if (candidate && (!best || candidate->energy_to_accuracy_j <= best->energy_to_accuracy_j)) {
        best = candidate;
      }
    }
  }
  if (!best) {
    throw Error(ErrorCode::kNotFound,
                fmt::format("{} on {}: no configuration reaches the target {} in every run",
                            workload_.dataset, gpu_, workload_.target_metric));
  }
  return *best;
}

LimitProfile epoch_profile(const ZeusTrace& trace, std::size_t batch_size) {
  std::vector<LimitMeasurement> points;
  for (const double limit : trace.power_limits()) {
    if (const auto epoch = trace.epoch(batch_size, limit)) {
      points.push_back({limit, epoch->time_s, epoch->energy_j()});
    }
  }
  if (points.empty()) {
    throw Error(
        ErrorCode::kNotFound,
        fmt::format("the {} trace of {} has no batch size {}; use one of {}", trace.gpu(),
                    trace.workload().dataset, batch_size, fmt::join(trace.batch_sizes(), ", ")));
  }
  std::sort(points.begin(), points.end(),
            [](const auto& a, const auto& b) { return a.power_limit_w > b.power_limit_w; });
  LimitProfileInfo info;
  info.gpu_model = trace.gpu();
  info.job_id = fmt::format("{}/{}", trace.workload().dataset, trace.workload().network);
  info.batch_size = batch_size;
  return LimitProfile(std::move(points), std::move(info), trace.max_power_limit_w());
}

EpochCost profiling_epoch(const LimitProfile& epochs) {
  double time_sum = 0;
  double energy_sum = 0;
  for (const auto& point : epochs.points()) {
    time_sum += point.time_s;
    energy_sum += point.energy_j;
  }
  const auto count = static_cast<double>(epochs.points().size());
  return {time_sum / count, energy_sum / time_sum};
}

}  // namespace chase
