// Internal: `chase measure` under a launcher (mpirun, srun, torchrun): one report for the job.
//
// Every rank measures only what chase/launch.h attributes to it (its share of the node's GPUs; the
// node leader also the CPU packages and DRAM) and writes its part, as JSON, into a directory all
// ranks share (the report's directory, or --job-dir). The job leader (rank 0) waits for every part
// until the timeout, merges them and writes the one report: per rank, per node and in total, each
// GPU (by node and UUID) and each CPU zone (by node) counted once and attributed to the rank that
// measured it. A device two parts both measured (per-rank CUDA_VISIBLE_DEVICES naming the same GPU)
// is counted once and a warning says so; ranks whose part never came are listed as missing and the
// leader exits with EX_IOERR (74) unless the command failed. The rendezvous is through files, not
// MPI, on purpose: the measured command may itself be an MPI program launched with this rank's
// identity, and chase must not join its job.
//
// Thread safety: functions of their arguments and the file system.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chase/launch.h"
#include "chase/time.h"

namespace chase::cli {

// The directory this launch's parts go to: <base>/.chase-job-<job id> (the id made file-safe).
std::filesystem::path job_part_directory(const std::filesystem::path& base,
                                         const LaunchInfo& launch);

// This rank's part: its measurement (measurement_json) and who it is.
void write_job_part(const std::filesystem::path& directory, const LaunchInfo& launch,
                    nlohmann::json measurement);

// Waits for every rank's part (until `timeout`), merges them and removes them. Never throws for a
// missing or malformed part: the report says which ranks are missing and why. A part that ended
// more than a minute before `leader_start` (the leader's own measurement began) is an earlier
// run's, left behind under the same job id (torchrun's default id is "none"): it is waited past,
// as if missing, and never merged.
nlohmann::json collect_job_report(const std::filesystem::path& directory, const LaunchInfo& launch,
                                  std::chrono::milliseconds timeout, UtcTime leader_start);

// Per-node and total lines for people.
void print_job_report(std::ostream& out, const nlohmann::json& report);

}  // namespace chase::cli
