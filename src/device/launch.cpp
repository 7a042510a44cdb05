// The launcher's view of this process and the attribution of devices to ranks (contract:
// chase/launch.h).
#include "chase/launch.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <utility>

#include "chase/error.h"
#include "common/text.h"

namespace chase {
namespace {

// The longest number a launcher variable may hold: more ranks or GPUs than this are a typo.
constexpr std::size_t kMaxCount = 1'000'000;

Error bad_variable(std::string_view name, std::string_view value, std::string_view expected) {
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("{}=\"{}\" is not {}; check how the launcher set it", name,
                           escape_untrusted(value, 80), expected));
}

// A whole decimal number, nothing else (std::stoul would accept " 3x" and wrap "-1").
std::optional<std::size_t> whole_number(std::string_view text) {
  std::size_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value > kMaxCount) return std::nullopt;
  return value;
}

std::size_t number_variable(const EnvironmentLookup& env, std::string_view name) {
  const auto value = env(name);
  if (!value) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} is not set, but the launcher's other variables are; chase cannot "
                            "tell which process this is",
                            name));
  }
  const auto number = whole_number(*value);
  if (!number) throw bad_variable(name, *value, "a whole number");
  return *number;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const auto at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string_view::npos ? text.npos : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

// Slurm's compressed tasks per node, "2(x3),1": 2 tasks on each of 3 nodes, then 1 on the
// fourth. Returns the count of node `node_id`.
std::size_t slurm_tasks_on_node(std::string_view name, std::string_view value,
                                std::size_t node_id) {
  const auto malformed = [&] { return bad_variable(name, value, "a list like \"2(x3),1\""); };
  std::size_t node = 0;
  for (const auto item : split(value, ',')) {
    std::string_view count_text = item;
    std::size_t repeat = 1;
    if (const auto open = item.find("(x"); open != std::string_view::npos) {
      if (item.back() != ')') throw malformed();
      const auto times = whole_number(item.substr(open + 2, item.size() - open - 3));
      if (!times || *times == 0) throw malformed();
      repeat = *times;
      count_text = item.substr(0, open);
    }
    const auto count = whole_number(count_text);
    if (!count) throw malformed();
    if (node_id < node + repeat) return *count;
    node += repeat;
  }
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("{}=\"{}\" lists {} nodes, but SLURM_NODEID is {}", name,
                          escape_untrusted(value, 80), node, node_id));
}

std::string host_name() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

void check_ranks(const LaunchInfo& launch, std::string_view rank_name,
                 std::string_view local_name) {
  if (launch.size == 0 || launch.rank >= launch.size) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} is {} but the job has {} processes; the launcher's variables "
                            "disagree",
                            rank_name, launch.rank, launch.size));
  }
  if (launch.local_size == 0 || launch.local_rank >= launch.local_size) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} is {} but the node has {} processes; the launcher's variables "
                            "disagree",
                            local_name, launch.local_rank, launch.local_size));
  }
}

// What every launcher names directly: the global rank and size and the local rank.
LaunchInfo ranks_from(const EnvironmentLookup& env, std::string launcher, const char* rank,
                      const char* size, const char* local_rank) {
  LaunchInfo launch;
  launch.launcher = std::move(launcher);
  launch.rank = number_variable(env, rank);
  launch.size = number_variable(env, size);
  launch.local_rank = number_variable(env, local_rank);
  return launch;
}

LaunchInfo from_openmpi(const EnvironmentLookup& env) {
  LaunchInfo launch = ranks_from(env, "openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                                 "OMPI_COMM_WORLD_LOCAL_RANK");
  launch.local_size = number_variable(env, "OMPI_COMM_WORLD_LOCAL_SIZE");
  launch.job_id = env("PMIX_NAMESPACE").value_or(env("OMPI_MCA_ess_base_jobid").value_or(""));
  return launch;
}

LaunchInfo from_slurm(const EnvironmentLookup& env) {
  LaunchInfo launch =
      ranks_from(env, "slurm", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID");
  const auto per_node = env("SLURM_STEP_TASKS_PER_NODE");
  launch.local_size = per_node ? slurm_tasks_on_node("SLURM_STEP_TASKS_PER_NODE", *per_node,
                                                     number_variable(env, "SLURM_NODEID"))
                               : launch.size;
  launch.job_id =
      fmt::format("{}.{}", env("SLURM_JOB_ID").value_or("?"), env("SLURM_STEP_ID").value_or("?"));
  return launch;
}

LaunchInfo from_torchrun(const EnvironmentLookup& env) {
  LaunchInfo launch = ranks_from(env, "torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK");
  launch.local_size = env("LOCAL_WORLD_SIZE") ? number_variable(env, "LOCAL_WORLD_SIZE") : 1;
  launch.job_id = env("TORCHELASTIC_RUN_ID").value_or("");
  return launch;
}

}  // namespace

EnvironmentLookup process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

LaunchInfo detect_launch(const EnvironmentLookup& env) {
  LaunchInfo launch;
  std::string_view rank_name = "rank", local_name = "the local rank";
  if (env("OMPI_COMM_WORLD_SIZE")) {
    launch = from_openmpi(env);
    rank_name = "OMPI_COMM_WORLD_RANK", local_name = "OMPI_COMM_WORLD_LOCAL_RANK";
  } else if (env("SLURM_STEP_NUM_TASKS") && env("SLURM_PROCID")) {
    launch = from_slurm(env);
    rank_name = "SLURM_PROCID", local_name = "SLURM_LOCALID";
  } else if (env("WORLD_SIZE") && env("RANK")) {
    launch = from_torchrun(env);
    rank_name = "RANK", local_name = "LOCAL_RANK";
  }
  if (env("CHASE_LOCAL_RANK")) {
    launch.local_rank = number_variable(env, "CHASE_LOCAL_RANK");
    launch.local_size = number_variable(env, "CHASE_LOCAL_SIZE");
    local_name = "CHASE_LOCAL_RANK";
  }
  launch.node = env("CHASE_NODE_NAME").value_or(env("SLURMD_NODENAME").value_or(host_name()));
  check_ranks(launch, rank_name, local_name);
  return launch;
}

std::vector<unsigned> parse_slurm_gpu_list(std::string_view variable, std::string_view value) {
  const auto malformed = [&] {
    return bad_variable(variable, value, "a list of GPU indices like \"0,1\" or \"0-3\"");
  };
  std::vector<unsigned> indices;
  for (const auto item : split(value, ',')) {
    const auto dash = item.find('-');
    const auto first = whole_number(item.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : whole_number(item.substr(dash + 1));
    if (!first || !last || *last < *first || *last - *first > 4096) throw malformed();
    for (std::size_t i = *first; i <= *last; ++i) {
      if (std::find(indices.begin(), indices.end(), i) != indices.end()) {
        throw bad_variable(variable, value, "a list naming each GPU once");
      }
      indices.push_back(static_cast<unsigned>(i));
    }
  }
  return indices;
}

NodeGpus node_gpus(const std::vector<GpuInfo>& backend_gpus, const EnvironmentLookup& env) {
  NodeGpus result;
  std::optional<std::string> list;
  if (env("CUDA_VISIBLE_DEVICES")) {
    result.source = "CUDA_VISIBLE_DEVICES";
  } else if ((list = env("SLURM_STEP_GPUS"))) {
    result.source = "SLURM_STEP_GPUS";
  } else if ((list = env("SLURM_JOB_GPUS"))) {
    result.source = "SLURM_JOB_GPUS";
  } else {
    result.source = "all";
  }
  if (!list) {
    for (const auto& gpu : backend_gpus) result.gpus.push_back(gpu.index);
    return result;
  }
  for (const unsigned wanted : parse_slurm_gpu_list(result.source, *list)) {
    const auto found =
        std::find_if(backend_gpus.begin(), backend_gpus.end(),
                     [&](const GpuInfo& gpu) { return gpu.hardware_index == wanted; });
    if (found == backend_gpus.end()) {
      throw Error(
          ErrorCode::kNotFound,
          fmt::format("{}=\"{}\" names GPU {}, but this node's driver has {} GPU(s){}; "
                      "check the job's GPU request (--gres/--gpus)",
                      result.source, escape_untrusted(*list, 80), wanted, backend_gpus.size(),
                      backend_gpus.empty()
                          ? std::string()
                          : fmt::format(" (indices {}–{})", backend_gpus.front().hardware_index,
                                        backend_gpus.back().hardware_index)));
    }
    result.gpus.push_back(found->index);
  }
  return result;
}

RankDevices assign_devices(const NodeGpus& node, const LaunchInfo& launch) {
  RankDevices devices;
  devices.measures_cpu = launch.node_leader();
  const auto& node_gpus = node.gpus;
  if (node.source == "CUDA_VISIBLE_DEVICES") {  // bound to this process already
    devices.controlled = devices.measured = node_gpus;
    return devices;
  }
  const std::size_t n = node_gpus.size(), ranks = launch.local_size, r = launch.local_rank;
  if (n == 0) return devices;
  if (n >= ranks) {  // a contiguous block each, sizes differing by at most one
    for (std::size_t i = r * n / ranks; i < (r + 1) * n / ranks; ++i) {
      devices.controlled.push_back(node_gpus[i]);
    }
    devices.measured = devices.controlled;
    return devices;
  }
  const std::size_t shared = r * n / ranks;  // consecutive ranks share one GPU
  devices.controlled.push_back(node_gpus[shared]);
  const bool first_on_gpu = r == 0 || (r - 1) * n / ranks != shared;
  if (first_on_gpu) devices.measured.push_back(node_gpus[shared]);
  return devices;
}

}  // namespace chase
