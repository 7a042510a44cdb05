// chase/zeus_trace.h — the Zeus NSDI'23 training traces, for trace-driven simulation
// (docs/ALGORITHMS.md §6). The data is the Zeus artifact's trace: pass its directory, or set
// CHASE_DATA_DIR (its zeus-trace/ folder); docs/REPRODUCTION.md says where to get it.
//
// Contract: ZeusTrace::load(dir, gpu, workload) reads summary_power_<gpu>.csv and summary_train.csv
// for one workload: its epoch time and average power per (batch size, power limit), and per batch
// size the training paths — the epoch at which each recorded run first reached the workload's
// target metric (nullopt: never). Rows of the workload's optimizer (the one its training rows use)
// and target metric are kept; the rest of the files is other workloads' data.
// Energy-to-accuracy (ETA) of a configuration is the mean over its runs of target_epoch × epoch
// energy; only configurations whose every run reaches the target within max_epochs have one. The
// default configuration is (default batch size, the GPU file's highest limit); the best is the
// configuration of least ETA (ties: larger batch, then higher limit). epoch_profile() turns one
// batch size's epochs into the LimitProfile the selectors and the planner read (one work unit = one
// epoch), which is how both simulators drive the live optimiser code.
// Errors: workload parameters out of range — a default batch size or max_epochs of 0, a target
// metric that is not a finite number > 0 — throw kInvalidArgument before any file is read (they are
// the caller's, not the trace's); a missing file or directory (kIo), an unknown GPU or workload
// (kNotFound, naming the known ones), a malformed or non-finite number or a duplicate row (kParse,
// naming file, line and column), a workload with no data for that GPU (kNotFound) — each says what
// to do.
//
// Thread safety: ZeusTrace is immutable after load; the functions are reentrant.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chase/limit_profile.h"

namespace chase {

struct WorkloadSpec {
  std::string dataset;  // e.g. "imagenet"
  std::string network;  // e.g. "resnet50"
  std::size_t default_batch_size = 0;
  double target_metric = 0;
  std::size_t max_epochs = 0;
};

// The six workloads of the artifact with its default parameters (data README).
const std::vector<WorkloadSpec>& zeus_workloads();
// Throws kNotFound naming the known datasets.
const WorkloadSpec& zeus_workload(std::string_view dataset);
// "v100", "a40", "p100", "rtx6000".
const std::vector<std::string>& zeus_trace_gpus();

struct EpochCost {
  double time_s = 0;
  double avg_power_w = 0;
  double energy_j() const noexcept { return time_s * avg_power_w; }
};

struct TraceConfig {
  std::size_t batch_size = 0;
  double power_limit_w = 0;
  double energy_to_accuracy_j = 0;
  double time_to_accuracy_s = 0;
};

class ZeusTrace {
 public:
  static ZeusTrace load(const std::filesystem::path& dir, std::string_view gpu,
                        const WorkloadSpec& workload);

  const WorkloadSpec& workload() const noexcept { return workload_; }
  const std::string& gpu() const noexcept { return gpu_; }
  std::vector<std::size_t> batch_sizes() const;  // with epoch costs and training paths, ascending
  std::vector<double> power_limits() const;      // ascending
  double max_power_limit_w() const;
  std::optional<EpochCost> epoch(std::size_t batch_size, double power_limit_w) const;
  // The epoch at which each run reached the target (nullopt: never); empty for an unknown size.
  const std::vector<std::optional<double>>& paths(std::size_t batch_size) const;
  // nullopt unless every run of the batch size reaches the target within max_epochs.
  std::optional<TraceConfig> config(std::size_t batch_size, double power_limit_w) const;
  // Throws kNotFound when the default configuration has no ETA (some run never converges).
  TraceConfig default_config() const;
  TraceConfig best_config() const;

 private:
  WorkloadSpec workload_;
  std::string gpu_;
  std::map<std::pair<std::size_t, double>, EpochCost> epochs_;
  std::map<std::size_t, std::vector<std::optional<double>>> paths_;
};

// The per-epoch profile of one batch size of a trace (time and energy of one epoch per limit),
// MaxPower being the trace GPU's highest limit. Throws kNotFound for a batch size the trace lacks.
LimitProfile epoch_profile(const ZeusTrace& trace, std::size_t batch_size);

// The profiling epoch in the Zeus artifact's semantics (docs/ALGORITHMS.md §6): every limit of
// `epochs` (one epoch's time and energy per limit) runs for an equal share of one epoch, so it
// takes the mean time and draws the total energy over the total time.
EpochCost profiling_epoch(const LimitProfile& epochs);

}  // namespace chase
