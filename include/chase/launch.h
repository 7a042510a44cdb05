// chase/launch.h — which process of a multi-process job this is, and which devices it measures
// and controls, from the launcher's environment (docs/MULTINODE.md).
//
// Contract: detect_launch() reads, in this order of precedence,
//   Open MPI (mpirun):  OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK / _LOCAL_SIZE, job
//   PMIX_NAMESPACE; Slurm (srun):       SLURM_PROCID, SLURM_STEP_NUM_TASKS (set by srun only, so a
//   batch script
//                       is one process), SLURM_LOCALID, SLURM_STEP_TASKS_PER_NODE with
//                       SLURM_NODEID (e.g. "2(x3),1"), job SLURM_JOB_ID.SLURM_STEP_ID;
//   torchrun:           RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, job TORCHELASTIC_RUN_ID;
// then CHASE_LOCAL_RANK / CHASE_LOCAL_SIZE override the local rank and size (for launchers chase
// does not know, and for tests that simulate several nodes on one machine). The node is
// CHASE_NODE_NAME, else SLURMD_NODENAME, else the host name. A variable in an unexpected format
// (not a number, a rank not below the size, a malformed task list) throws kInvalidArgument naming
// the variable, its value and the expected form — never a guess.
//
// Attribution: the GPUs of a node are split among its ranks so that each GPU is measured by
// exactly one process and node-wide counters (RAPL packages and DRAM) by the node leader (local
// rank 0) only. node_gpus() is the node's allocation among a backend's GPUs: every visible GPU
// when CUDA_VISIBLE_DEVICES is set (the backend already honours it; the launcher bound them to
// this process: per-process binding is not split again), else the GPUs whose driver index
// SLURM_STEP_GPUS (else SLURM_JOB_GPUS) lists ("0,1", ranges "0-3"), else all of them. A listed GPU
// that does not exist is kNotFound naming the variable and the GPUs there are. assign_devices()
// gives each local rank a contiguous block of the node's GPUs; with fewer GPUs than ranks,
// consecutive ranks share one GPU and only the first of them measures it. GPUs chosen by
// CUDA_VISIBLE_DEVICES are this process's own (Slurm's --gpus-per-task binds them so) and all of
// them go to this rank; when a user gives every rank of a node the same list, `chase measure`'s
// job report still counts each GPU (by node and UUID) once and says which ranks both measured it.
//
// Thread safety: pure functions of their arguments (process_environment() reads the environment
// at each call).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chase/gpu.h"

namespace chase {

// Returns a variable's value, or nullopt when it is not set.
using EnvironmentLookup = std::function<std::optional<std::string>(std::string_view name)>;
EnvironmentLookup process_environment();

struct LaunchInfo {
  std::string launcher = "none";  // "none", "openmpi", "slurm", "torchrun"
  std::size_t rank = 0;
  std::size_t size = 1;
  std::size_t local_rank = 0;
  std::size_t local_size = 1;
  std::string node;    // the node's name (simulated nodes: CHASE_NODE_NAME)
  std::string job_id;  // the same on every rank of one launch; empty when not launched
  bool job_leader() const noexcept { return rank == 0; }
  bool node_leader() const noexcept { return local_rank == 0; }
};

LaunchInfo detect_launch(const EnvironmentLookup& environment = process_environment());

// The driver indices a Slurm GPU list names ("0,1,3", "0-3", "0-1,4"). Throws kInvalidArgument
// naming `variable` and the value when it is malformed.
std::vector<unsigned> parse_slurm_gpu_list(std::string_view variable, std::string_view value);

struct NodeGpus {
  std::vector<std::size_t> gpus;  // backend indices
  std::string source;  // "CUDA_VISIBLE_DEVICES", "SLURM_STEP_GPUS", "SLURM_JOB_GPUS" or "all"
};

NodeGpus node_gpus(const std::vector<GpuInfo>& backend_gpus,
                   const EnvironmentLookup& environment = process_environment());

struct RankDevices {
  std::vector<std::size_t> controlled;  // the GPUs this rank trains on and sets limits of
  std::vector<std::size_t> measured;    // the GPUs whose energy this rank reports
  bool measures_cpu = false;            // RAPL packages and DRAM: the node leader only
};

RankDevices assign_devices(const NodeGpus& node, const LaunchInfo& launch);

}  // namespace chase
