// Tests of the launcher's view of a process and the attribution of devices (src/device/launch.cpp).
#include "chase/launch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "chase/error.h"
#include "support/errors.h"

namespace chase {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

EnvironmentLookup environment(std::map<std::string, std::string> variables) {
  return [variables = std::move(variables)](std::string_view name) -> std::optional<std::string> {
    const auto it = variables.find(std::string(name));
    if (it == variables.end()) return std::nullopt;
    return it->second;
  };
}

template <typename Action>
void expect_error(ErrorCode code, Action action, const std::vector<std::string>& parts) {
  const auto message = testing::error_message(action, code);
  for (const auto& part : parts) EXPECT_THAT(message, HasSubstr(part));
}

TEST(Launch, AloneWithoutALauncher) {
  const auto launch = detect_launch(environment({{"CHASE_NODE_NAME", "n1"}}));
  EXPECT_EQ(launch.launcher, "none");
  EXPECT_EQ(launch.size, 1u);
  EXPECT_TRUE(launch.job_leader());
  EXPECT_TRUE(launch.node_leader());
  EXPECT_EQ(launch.node, "n1");
}

TEST(Launch, OpenMpi) {
  const auto launch = detect_launch(environment({{"OMPI_COMM_WORLD_RANK", "5"},
                                                 {"OMPI_COMM_WORLD_SIZE", "8"},
                                                 {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                                 {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"},
                                                 {"PMIX_NAMESPACE", "42"}}));
  EXPECT_EQ(launch.launcher, "openmpi");
  EXPECT_EQ(launch.rank, 5u);
  EXPECT_EQ(launch.size, 8u);
  EXPECT_EQ(launch.local_rank, 1u);
  EXPECT_EQ(launch.local_size, 4u);
  EXPECT_EQ(launch.job_id, "42");
  EXPECT_FALSE(launch.node_leader());
}

TEST(Launch, SlurmStepWithCompressedTasksPerNode) {
  const auto launch = detect_launch(environment({{"SLURM_PROCID", "6"},
                                                 {"SLURM_STEP_NUM_TASKS", "7"},
                                                 {"SLURM_LOCALID", "0"},
                                                 {"SLURM_NODEID", "3"},
                                                 {"SLURM_STEP_TASKS_PER_NODE", "2(x3),1"},
                                                 {"SLURM_JOB_ID", "1234"},
                                                 {"SLURM_STEP_ID", "0"},
                                                 {"SLURMD_NODENAME", "gpu07"}}));
  EXPECT_EQ(launch.launcher, "slurm");
  EXPECT_EQ(launch.rank, 6u);
  EXPECT_EQ(launch.local_size, 1u);  // the fourth node runs one task
  EXPECT_EQ(launch.node, "gpu07");
  EXPECT_EQ(launch.job_id, "1234.0");
}

TEST(Launch, ABatchScriptIsOneProcessEvenWithSlurmTasks) {
  const auto launch = detect_launch(environment({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}}));
  EXPECT_EQ(launch.size, 1u);
}

TEST(Launch, Torchrun) {
  const auto launch = detect_launch(environment(
      {{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"}}));
  EXPECT_EQ(launch.launcher, "torchrun");
  EXPECT_EQ(launch.local_rank, 1u);
  EXPECT_EQ(launch.local_size, 2u);
}

TEST(Launch, ChaseVariablesOverrideTheLocalRank) {
  const auto launch = detect_launch(environment({{"OMPI_COMM_WORLD_RANK", "3"},
                                                 {"OMPI_COMM_WORLD_SIZE", "4"},
                                                 {"OMPI_COMM_WORLD_LOCAL_RANK", "3"},
                                                 {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"},
                                                 {"CHASE_LOCAL_RANK", "1"},
                                                 {"CHASE_LOCAL_SIZE", "2"}}));
  EXPECT_EQ(launch.local_rank, 1u);
  EXPECT_EQ(launch.local_size, 2u);
}

TEST(Launch, MalformedVariablesNameTheVariableAndTheValue) {
  expect_error(ErrorCode::kInvalidArgument,
               [] {
                 detect_launch(environment({{"OMPI_COMM_WORLD_RANK", "x1"},
                                            {"OMPI_COMM_WORLD_SIZE", "4"},
                                            {"OMPI_COMM_WORLD_LOCAL_RANK", "0"},
                                            {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}}));
               },
               {"OMPI_COMM_WORLD_RANK=\"x1\"", "whole number"});
  expect_error(ErrorCode::kInvalidArgument,
               [] {
                 detect_launch(environment({{"SLURM_PROCID", "0"},
                                            {"SLURM_STEP_NUM_TASKS", "2"},
                                            {"SLURM_LOCALID", "0"},
                                            {"SLURM_NODEID", "0"},
                                            {"SLURM_STEP_TASKS_PER_NODE", "2(x"}}));
               },
               {"SLURM_STEP_TASKS_PER_NODE=\"2(x\"", "2(x3),1"});
  expect_error(ErrorCode::kInvalidArgument,
               [] {
                 detect_launch(environment({{"SLURM_PROCID", "0"},
                                            {"SLURM_STEP_NUM_TASKS", "3"},
                                            {"SLURM_LOCALID", "0"},
                                            {"SLURM_NODEID", "2"},
                                            {"SLURM_STEP_TASKS_PER_NODE", "2,1"}}));
               },
               {"lists 2 nodes", "SLURM_NODEID is 2"});
  expect_error(
      ErrorCode::kInvalidArgument,
      [] {
        detect_launch(environment({{"RANK", "4"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "0"}}));
      },
      {"RANK is 4", "4 processes"});
  expect_error(ErrorCode::kInvalidArgument,
               [] {
                 detect_launch(environment({{"CHASE_LOCAL_RANK", "0"}}));
               },
               {"CHASE_LOCAL_SIZE is not set"});
}

TEST(SlurmGpuList, IndicesAndRanges) {
  EXPECT_THAT(parse_slurm_gpu_list("SLURM_STEP_GPUS", "0,1,3"), ElementsAre(0, 1, 3));
  EXPECT_THAT(parse_slurm_gpu_list("SLURM_STEP_GPUS", "0-2,5"), ElementsAre(0, 1, 2, 5));
  for (const std::string bad : {"", "0,,1", "a", "3-1", "0,0", "-1", "1-", "0x1", " 1"}) {
    SCOPED_TRACE(bad);
    expect_error(ErrorCode::kInvalidArgument, [&] { parse_slurm_gpu_list("SLURM_JOB_GPUS", bad); },
                 {"SLURM_JOB_GPUS=\"" + bad + "\""});
  }
}

std::vector<GpuInfo> gpus(std::vector<unsigned> hardware_indices) {
  std::vector<GpuInfo> result;
  for (std::size_t i = 0; i < hardware_indices.size(); ++i) {
    GpuInfo info;
    info.index = i;
    info.hardware_index = hardware_indices[i];
    result.push_back(info);
  }
  return result;
}

TEST(NodeGpus, SlurmListsSelectByDriverIndex) {
  const auto node = node_gpus(gpus({0, 1, 2, 3}),
                              environment({{"SLURM_STEP_GPUS", "1,3"}, {"SLURM_JOB_GPUS", "0-3"}}));
  EXPECT_EQ(node.source, "SLURM_STEP_GPUS");
  EXPECT_THAT(node.gpus, ElementsAre(1, 3));
  EXPECT_THAT(node_gpus(gpus({0, 1}), environment({})).gpus, ElementsAre(0, 1));
  // CUDA_VISIBLE_DEVICES already chose (the backend honours it): every visible GPU.
  const auto visible = node_gpus(
      gpus({2}), environment({{"CUDA_VISIBLE_DEVICES", "2"}, {"SLURM_STEP_GPUS", "0,1"}}));
  EXPECT_EQ(visible.source, "CUDA_VISIBLE_DEVICES");
  EXPECT_THAT(visible.gpus, ElementsAre(0));
}

TEST(NodeGpus, AnAllocatedGpuThatDoesNotExistIsNamed) {
  expect_error(ErrorCode::kNotFound,
               [] {
                 node_gpus(gpus({0, 1}), environment({{"SLURM_JOB_GPUS", "0,4"}}));
               },
               {"SLURM_JOB_GPUS=\"0,4\" names GPU 4", "2 GPU(s)", "0–1"});
}

LaunchInfo local(std::size_t rank, std::size_t size) {
  LaunchInfo launch;
  launch.local_rank = rank;
  launch.local_size = size;
  launch.size = size;
  launch.rank = rank;
  return launch;
}

TEST(AssignDevices, EachGpuIsMeasuredByExactlyOneRankAndTheCpuByTheLeader) {
  const NodeGpus node = {{0, 1, 2, 3}, "all"};
  EXPECT_THAT(assign_devices(node, local(0, 2)).controlled, ElementsAre(0, 1));
  EXPECT_THAT(assign_devices(node, local(1, 2)).measured, ElementsAre(2, 3));
  EXPECT_THAT(assign_devices(node, local(2, 3)).controlled, ElementsAre(2, 3));
  EXPECT_TRUE(assign_devices(node, local(0, 4)).measures_cpu);
  EXPECT_FALSE(assign_devices(node, local(1, 4)).measures_cpu);
  for (std::size_t ranks : {1, 2, 3, 4, 5, 8}) {
    std::map<std::size_t, int> measured;
    for (std::size_t r = 0; r < ranks; ++r) {
      const auto devices = assign_devices(node, local(r, ranks));
      EXPECT_FALSE(devices.controlled.empty()) << r << "/" << ranks;
      for (auto gpu : devices.measured) ++measured[gpu];
    }
    EXPECT_EQ(measured, (std::map<std::size_t, int>{{0, 1}, {1, 1}, {2, 1}, {3, 1}})) << ranks;
  }
  // Fewer GPUs than ranks: consecutive ranks share one; only the first measures it.
  EXPECT_THAT(assign_devices({{7, 9}, "SLURM_STEP_GPUS"}, local(1, 4)).controlled, ElementsAre(7));
  EXPECT_THAT(assign_devices({{7, 9}, "SLURM_STEP_GPUS"}, local(1, 4)).measured, IsEmpty());
  EXPECT_THAT(assign_devices({{7, 9}, "SLURM_STEP_GPUS"}, local(2, 4)).measured, ElementsAre(9));
  EXPECT_THAT(assign_devices({{}, "all"}, local(0, 1)).controlled, IsEmpty());
}

TEST(AssignDevices, GpusBoundByCudaVisibleDevicesAreThisRanksOwn) {
  // srun --gpus-per-task=1: every rank sees only its GPU, as index 0.
  for (std::size_t r = 0; r < 4; ++r) {
    const auto devices = assign_devices({{0}, "CUDA_VISIBLE_DEVICES"}, local(r, 4));
    EXPECT_THAT(devices.controlled, ElementsAre(0));
    EXPECT_THAT(devices.measured, ElementsAre(0));
    EXPECT_EQ(devices.measures_cpu, r == 0);
  }
}

}  // namespace
}  // namespace chase
