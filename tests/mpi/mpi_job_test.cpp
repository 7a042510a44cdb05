// Multi-process jobs under a real mpirun (Open MPI), 2 simulated nodes × 2 ranks on this machine:
// the MPI data-parallel example (examples/mpi) and `chase measure` under mpirun. Nodes are
// simulated by environment: CHASE_NODE_NAME, the node's fake NVML config and fake sysfs RAPL
// tree, CHASE_LOCAL_RANK (Open MPI sees one real node). Label real_server; skipped without mpirun.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "chase/time.h"
#include "support/fake_nvml_env.h"
#include "support/process.h"

#ifndef CHASE_EXAMPLE_MPI_TRAINING_PATH
#error "CHASE_EXAMPLE_MPI_TRAINING_PATH must name examples/mpi's program (tests/CMakeLists.txt)"
#endif

namespace chase::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kMpirun = "/usr/bin/mpirun";

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing " + path.string());
  return nlohmann::json::parse(in);
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

class MpiJob : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kMpirun)) GTEST_SKIP() << kMpirun << " is absent (apt install openmpi-bin)";
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);  // CI runs as root
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    std::string pattern = (fs::temp_directory_path() / "chase_mpi_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) fs::remove_all(dir_, ignored);
  }

  // mpirun over `nodes` simulated nodes of `ranks_per_node` ranks, one app context per node, each
  // rank with its node's variables and its own fake-NVML state and guard record.
  std::vector<std::string> mpirun(
      std::size_t nodes, std::size_t ranks_per_node,
      const std::function<std::vector<std::string>(std::size_t)>& env_of,
      const std::vector<std::string>& program, const std::vector<std::string>& extra_mca = {},
      const std::function<std::vector<std::string>(std::size_t)>& args_of = nullptr) const {
    std::vector<std::string> argv = {kMpirun, "--oversubscribe", "--allow-run-as-root", "--mca",
                                     "btl",   "self,vader"};
    argv.insert(argv.end(), extra_mca.begin(), extra_mca.end());
    const std::string per_rank =
        "export CHASE_LOCAL_RANK=$((OMPI_COMM_WORLD_RANK % " + std::to_string(ranks_per_node) +
        ")) CHASE_LOCAL_SIZE=" + std::to_string(ranks_per_node) +
        " FAKE_NVML_STATE=" + (dir_ / "state-").string() +
        "$OMPI_COMM_WORLD_RANK.json CHASE_STATE_DIR=" + (dir_ / "guard-").string() +
        "$OMPI_COMM_WORLD_RANK; exec \"$@\"";
    for (std::size_t node = 0; node < nodes; ++node) {
      if (node > 0) argv.push_back(":");
      argv.insert(argv.end(), {"-np", std::to_string(ranks_per_node), "/usr/bin/env"});
      const auto env = env_of(node);
      argv.insert(argv.end(), env.begin(), env.end());
      argv.insert(argv.end(), {"/bin/sh", "-c", per_rank, "sh"});
      argv.insert(argv.end(), program.begin(), program.end());
      if (args_of) {
        const auto args = args_of(node);
        argv.insert(argv.end(), args.begin(), args.end());
      }
    }
    return argv;
  }

  // A fake NVML config of `gpus` GPUs for node `node`, UUIDs unique across nodes.
  fs::path nvml_config(std::size_t node, std::size_t gpus) const {
    auto config = FakeNvmlEnvironment::standard_config(gpus);
    for (std::size_t i = 0; i < gpus; ++i) {
      config["gpus"][i]["uuid"] = FakeNvmlEnvironment::standard_uuid(node * gpus + i);
    }
    const auto path = dir_ / ("nvml-node" + std::to_string(node) + ".json");
    write_text(path, config.dump(2));
    return path;
  }

  // A node's sysfs with one CPU package and its DRAM zone, counters at `start_uj`.
  fs::path rapl_tree(std::size_t node, std::uint64_t start_uj) const {
    const auto root = dir_ / ("sysfs-node" + std::to_string(node));
    const auto package = root / "class" / "powercap" / "intel-rapl:0";
    for (const auto& [zone, name] :
         {std::pair{package, "package-0"}, std::pair{package / "intel-rapl:0:0", "dram"}}) {
      write_text(zone / "name", std::string(name) + "\n");
      write_text(zone / "energy_uj", std::to_string(start_uj) + "\n");
      write_text(zone / "max_energy_range_uj", "262143328850\n");
    }
    return root;
  }

  fs::path dir_;
};

// The example's limit sequence on every rank equals the single-process one, and the job report
// counts each GPU once (compared with the single process measuring all four).
TEST_F(MpiJob, FourRanksOnTwoNodesApplyTheSingleProcessLimitsAndCountEachGpuOnce) {
  const std::vector<std::string> common = {CHASE_EXAMPLE_MPI_TRAINING_PATH,
                                           "--steps",
                                           "1500",
                                           "--period-s",
                                           "1800",
                                           "--timeout-ms",
                                           "20000"};
  fs::create_directories(dir_ / "single");
  auto single_args = common;
  single_args.insert(single_args.end(),
                     {"--gpus-per-node", "4", "--report-dir", (dir_ / "single").string()});
  const auto single = run_process(
      mpirun(
          1, 1, [](std::size_t) { return std::vector<std::string>{"CHASE_NODE_NAME=solo"}; },
          single_args),
      std::chrono::seconds(60));
  ASSERT_EQ(single.exit_code, 0) << single.out << single.err;

  fs::create_directories(dir_ / "job");
  auto job_args = common;
  job_args.insert(job_args.end(),
                  {"--gpus-per-node", "2", "--report-dir", (dir_ / "job").string()});
  const auto job = run_process(
      mpirun(
          2, 2,
          [](std::size_t node) {
            return std::vector<std::string>{"CHASE_NODE_NAME=node" + std::to_string(node)};
          },
          job_args),
      std::chrono::seconds(60));
  ASSERT_EQ(job.exit_code, 0) << job.out << job.err;

  const auto expected = read_json(dir_ / "single" / "rank-0.json")["rank"]["limits_w"];
  ASSERT_GE(expected.size(), 3u) << "the job must change its limit more than once to compare";
  for (int rank = 0; rank < 4; ++rank) {
    const auto mine = read_json(dir_ / "job" / ("rank-" + std::to_string(rank) + ".json"));
    EXPECT_EQ(mine["rank"]["limits_w"], expected) << "rank " << rank;
    EXPECT_EQ(mine["rank"]["node"], rank < 2 ? "node0" : "node1");
    EXPECT_EQ(mine["rank"]["local_rank"], rank % 2);
  }
  const auto report = read_json(dir_ / "job" / "job.json");
  std::set<std::string> gpus;
  for (const auto& rank : report["ranks"]) {
    ASSERT_EQ(rank["gpus"].size(), 1u) << rank.dump();
    gpus.insert(rank["node"].get<std::string>() + "/" + rank["gpus"][0]["uuid"].get<std::string>());
  }
  EXPECT_EQ(gpus.size(), 4u);  // four distinct GPUs, each measured by one rank
  ASSERT_EQ(report["nodes"].size(), 2u);
  EXPECT_EQ(report["nodes"]["node0"]["ranks"], nlohmann::json({0, 1}));
  // The truth: one process measuring all four simulated GPUs over the same simulated job.
  const double truth = read_json(dir_ / "single" / "job.json")["total_energy_j"].get<double>();
  EXPECT_NEAR(report["total_energy_j"].get<double>(), truth, 1e-6 * truth);
}

// A rank that dies mid-run: the survivors raise within the coordinator's timeout (exit 69, the
// message) and their GPUs are back at their limit (the fake NVML's state files).
TEST_F(MpiJob, KilledRankMakesTheSurvivorsRaiseWithinTheTimeoutAndRestoreTheirLimits) {
  FakeNvmlEnvironment nvml(FakeNvmlEnvironment::standard_config(2));
  const auto node0 = nvml_config(0, 2), node1 = nvml_config(1, 2);
  const auto start = std::chrono::steady_clock::now();
  const auto result = run_process(
      mpirun(2, 2,
             [&](std::size_t node) {
               return std::vector<std::string>{
                   "CHASE_NODE_NAME=node" + std::to_string(node),
                   "FAKE_NVML_CONFIG=" + (node == 0 ? node0 : node1).string()};
             },
             {CHASE_EXAMPLE_MPI_TRAINING_PATH, "--gpus", "nvml", "--steps", "600", "--warmup", "1",
              "--profile", "2", "--step-ms", "2", "--timeout-ms", "3000", "--exit-rank", "2",
              "--exit-step", "9"},
             {"--mca", "orte_enable_recovery", "1", "--mca", "orte_abort_on_non_zero_status", "0"}),
      std::chrono::seconds(60));
  const double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // (mpirun itself exits with 0 here: orte_abort_on_non_zero_status is off so the survivors run.)
  EXPECT_THAT(result.err, HasSubstr("dying at step 9"));
  std::size_t raised = 0;  // one message from each of the three survivors
  for (auto at = result.err.find("did not complete within 3000 ms"); at != std::string::npos;
       at = result.err.find("did not complete within 3000 ms", at + 1)) {
    ++raised;
  }
  EXPECT_EQ(raised, 3u) << result.err;
  EXPECT_LT(elapsed_s, 30) << "the survivors must give up after the 3 s timeout, not hang";
  // The dead rank could not restore its GPU: proof that the limits were lowered when it died (its
  // durable record lets `chase limits restore` put it back).
  const auto dead = read_json(dir_ / "state-2.json")["gpus"];
  EXPECT_TRUE(std::any_of(dead.begin(), dead.end(), [](const nlohmann::json& gpu) {
    return gpu["limit_mw"].get<double>() < 300000;
  })) << dead.dump();
  for (int rank : {0, 1, 3}) {
    const auto state = dir_ / ("state-" + std::to_string(rank) + ".json");
    ASSERT_TRUE(fs::exists(state)) << "rank " << rank << " never changed a limit: " << result.err;
    for (const auto& gpu : read_json(state)["gpus"]) {
      EXPECT_EQ(gpu["limit_mw"].get<double>(), 300000) << "rank " << rank << ": " << gpu.dump();
    }
  }
}

// Real clocks 4 ms apart between the nodes, 1 s periods: every rank crosses every period boundary
// at the same step (the ranks agree on rank 0's clock), so their periods hold the same steps. By
// each rank's own clock a boundary falling between two ranks' readings would leave one rank in the
// limit agreement while the others wait in the gradient all-reduce: both time out
// (docs/MULTINODE.md).
TEST_F(MpiJob, RanksCrossPeriodBoundariesAtTheSameStep) {
  FakeNvmlEnvironment nvml(FakeNvmlEnvironment::standard_config(2));
  const auto node0 = nvml_config(0, 2), node1 = nvml_config(1, 2);
  fs::create_directories(dir_ / "reports");
  const auto result =
      run_process(mpirun(
                      2, 2,
                      [&](std::size_t node) {
                        return std::vector<std::string>{
                            "CHASE_NODE_NAME=node" + std::to_string(node),
                            "FAKE_NVML_CONFIG=" + (node == 0 ? node0 : node1).string()};
                      },
                      {CHASE_EXAMPLE_MPI_TRAINING_PATH, "--gpus", "nvml", "--steps", "320",
                       "--warmup", "1", "--profile", "2", "--step-ms", "7", "--period-s", "1",
                       "--timeout-ms", "5000", "--report-dir", (dir_ / "reports").string()},
                      {},
                      [](std::size_t node) {  // node1's clock 4 ms ahead, as NTP allows
                        return std::vector<std::string>{"--clock-skew-ms", node == 0 ? "0" : "4"};
                      }),
                  std::chrono::seconds(60));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto steps_per_period = [&](int rank) {
    std::vector<std::size_t> steps;
    const auto report = read_json(dir_ / "reports" / ("rank-" + std::to_string(rank) + ".json"));
    for (const auto& period : report["periods"])
      steps.push_back(period["steps"].get<std::size_t>());
    return steps;
  };
  // 320 steps of at least 7 ms: over 2 s, so at least two whole-second boundaries, however fast
  // the machine.
  const auto first = steps_per_period(0);
  ASSERT_GE(first.size(), 3u) << "the run must cross period boundaries";
  for (int rank = 1; rank < 4; ++rank) EXPECT_EQ(steps_per_period(rank), first) << "rank " << rank;
}

// Ranks started with different options stop at start, naming both values.
TEST_F(MpiJob, RanksWithDifferentOptionsStopAtStartNamingBothValues) {
  const auto result =
      run_process(mpirun(
                      2, 1,
                      [](std::size_t node) {
                        return std::vector<std::string>{"CHASE_NODE_NAME=n" + std::to_string(node)};
                      },
                      {CHASE_EXAMPLE_MPI_TRAINING_PATH, "--timeout-ms", "10000"}, {},
                      [](std::size_t node) {
                        return std::vector<std::string>{"--period-s", node == 0 ? "1800" : "2700"};
                      }),
                  std::chrono::seconds(60));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("the ranks disagree about the job's options"));
  EXPECT_THAT(result.err, HasSubstr("period-s=1800"));
  EXPECT_THAT(result.err, HasSubstr("rank 1 has"));
  EXPECT_THAT(result.err, HasSubstr("period-s=2700"));
}

// `mpirun -np 4 chase measure -- CMD` writes one report; each GPU and each node's CPU zones are
// counted once, against the simulated truth (the fake's 155 W per GPU; the RAPL counters the
// command itself advances on its node).
TEST_F(MpiJob, MeasureUnderMpirunWritesOneReportCountingEachDeviceOnce) {
  FakeNvmlEnvironment nvml(FakeNvmlEnvironment::standard_config(2));
  const std::uint64_t start_uj = 1'000'000'000, end_uj = 1'007'000'000;  // 7 J per zone
  const fs::path sysfs[] = {rapl_tree(0, start_uj), rapl_tree(1, start_uj)};
  const fs::path configs[] = {nvml_config(0, 2), nvml_config(1, 2)};
  const auto report_path = dir_ / "job.json";
  // Every rank of a node writes the same end value, as the hardware counter would read.
  const std::string command =
      "sleep 1; for z in \"$CHASE_SYSFS_ROOT\"/class/powercap/intel-rapl:0 "
      "\"$CHASE_SYSFS_ROOT\"/class/powercap/intel-rapl:0/intel-rapl:0:0; do echo " +
      std::to_string(end_uj) + " 1<> \"$z/energy_uj\"; done";
  const auto result = run_process(
      mpirun(2, 2,
             [&](std::size_t node) {
               return std::vector<std::string>{"CHASE_NODE_NAME=node" + std::to_string(node),
                                               "FAKE_NVML_CONFIG=" + configs[node].string(),
                                               "CHASE_SYSFS_ROOT=" + sysfs[node].string()};
             },
             {CHASE_CLI_PATH, "measure", "--json", "--intensity", "400", "-o", report_path.string(),
              "--", "/bin/sh", "-c", command}),
      std::chrono::seconds(60));
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const auto report = read_json(report_path);
  EXPECT_EQ(report["job"]["ranks"], 4);
  EXPECT_EQ(report["job"]["complete"], true);
  ASSERT_EQ(report["nodes"].size(), 2u);
  double sum = 0;
  for (const auto& node : report["nodes"]) {
    ASSERT_EQ(node["gpus"].size(), 2u) << node.dump();
    ASSERT_EQ(node["cpus"].size(), 2u) << node.dump();  // the package and its DRAM, once
    EXPECT_NEAR(node["cpu_energy_j"].get<double>(), 14.0, 1e-9) << node.dump();
    std::set<std::size_t> measurers;
    for (const auto& gpu : node["gpus"]) {
      measurers.insert(gpu["measured_by_rank"].get<std::size_t>());
      const double seconds = report["ranks"][gpu["measured_by_rank"].get<std::size_t>()]["time_s"];
      EXPECT_NEAR(gpu["energy_j"].get<double>(), 155.0 * seconds, 0.05 * 155.0 * seconds);
    }
    EXPECT_EQ(measurers.size(), 2u) << "each rank of the node measures its own GPU";
    for (const auto& cpu : node["cpus"]) EXPECT_EQ(cpu["measured_by_rank"], node["ranks"][0]);
    sum += node["total_energy_j"].get<double>();
  }
  EXPECT_NEAR(report["total"]["total_energy_j"].get<double>(), sum, 1e-9);
  EXPECT_NEAR(report["total"]["carbon_g"].get<double>(), sum / 3.6e6 * 400, 1e-9);
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir_))
    files += entry.path().filename() == "job.json";
  EXPECT_EQ(files, 1u);
  EXPECT_FALSE(fs::exists(dir_ / ".chase-job-unnamed"));
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_NE(entry.path().filename().string().rfind(".chase-job-", 0), 0u) << "parts left behind";
  }
}

}  // namespace
}  // namespace chase::testing

namespace chase::testing {
namespace {

// Rank 0 of a two-rank job, without mpirun: the launcher's variables are given directly (job id
// `job_id`, node "n"), and `chase measure` measures `true` into `report`.
ProcessResult measure_as_rank_zero_of_two(const std::string& job_id, const fs::path& report,
                                          const std::string& job_timeout_s) {
  return run_process(
      {"/usr/bin/env", "OMPI_COMM_WORLD_SIZE=2", "OMPI_COMM_WORLD_RANK=0",
       "OMPI_COMM_WORLD_LOCAL_RANK=0", "OMPI_COMM_WORLD_LOCAL_SIZE=2", "PMIX_NAMESPACE=" + job_id,
       "CHASE_NODE_NAME=n", CHASE_CLI_PATH, "measure", "--gpus", "none", "--no-cpu", "--json",
       "--job-timeout", job_timeout_s, "-o", report.string(), "--", "true"},
      std::chrono::seconds(30));
}

// A fresh temporary directory for one test.
fs::path make_job_directory() {
  std::string pattern = (fs::temp_directory_path() / "chase_job_report_XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed for " + pattern);
  return pattern;
}

// The job leader alone (no mpirun: the launcher's variables given directly): rank 1's part is an
// earlier run's, left under the same job id. It is never merged; rank 1 is reported missing and
// chase exits with 74 (EX_IOERR), the parts kept on disk.
TEST(JobReport, AnEarlierRunsPartIsNeverMergedAndTheRankIsReportedMissing) {
  const fs::path dir = make_job_directory();
  const auto parts = dir / ".chase-job-run-1";
  write_text(parts / "rank-1.json",
             R"({"rank": 1, "node": "n", "local_rank": 1, "end_time": "2020-01-01T00:00:00Z",
                 "gpus": [{"uuid": "GPU-X", "energy_j": 1e9}], "cpus": [], "total_energy_j": 1e9})");
  const auto report_path = dir / "job.json";
  const auto result = measure_as_rank_zero_of_two("run-1", report_path, "0.5");
  EXPECT_EQ(result.exit_code, 74) << result.err;
  const auto report = read_json(report_path);
  EXPECT_EQ(report["job"]["missing_ranks"], nlohmann::json({1}));
  EXPECT_EQ(report["job"]["complete"], false);
  EXPECT_EQ(report["total"]["total_energy_j"], 0.0);
  EXPECT_TRUE(fs::exists(parts / "rank-0.json")) << "an incomplete job keeps its parts";
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}

// A rank that ran another command: its numbers are merged (they were measured) and the report
// names both ranks' values.
TEST(JobReport, RanksThatRanDifferentCommandsAreNamedWithBothValues) {
  const fs::path dir = make_job_directory();
  const nlohmann::json other = {{"rank", 1},
                                {"node", "n"},
                                {"local_rank", 1},
                                {"command", {"sleep", "9"}},
                                {"end_time", format_utc_time(std::chrono::system_clock::now())},
                                {"gpus", {{{"uuid", "GPU-X"}, {"energy_j", 5.0}}}},
                                {"cpus", nlohmann::json::array()},
                                {"total_energy_j", 5.0}};
  write_text(dir / ".chase-job-run-2" / "rank-1.json", other.dump());
  const auto report_path = dir / "job.json";
  const auto result = measure_as_rank_zero_of_two("run-2", report_path, "5");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto report = read_json(report_path);
  EXPECT_EQ(report["total"]["gpu_energy_j"], 5.0);
  EXPECT_THAT(
      report["warnings"].dump(),
      HasSubstr(
          R"(the ranks disagree about command: rank 0 has [\"true\"] but rank 1 has [\"sleep\",\"9\"])"));
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}

}  // namespace
}  // namespace chase::testing
