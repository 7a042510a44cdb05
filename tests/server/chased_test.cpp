// chased as a process over the fake NVML: leases that end with their client (SIGKILL, dropped
// connection), shutdown and crash restores, the socket rules, refusals over the wire, and the CLI
// and library going through it.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "chase/daemon_client.h"
#include "chase/error.h"
#include "server/chased_fixture.h"
#include "support/scoped_env.h"

#ifndef CHASED_CLIENT_HELPER_PATH
#error "CHASED_CLIENT_HELPER_PATH must name tests/server/chased_client_helper"
#endif

namespace chase::testing {
namespace {

using namespace std::chrono_literals;

TEST(Chased, AClientKilledWithSigkillHasItsLimitRestoredWithinTwoSeconds) {
  ChasedDaemon daemon;
  ScopedEnv address("CHASE_DAEMON", daemon.address());
  Process client({CHASED_CLIENT_HELPER_PATH, "2", "150"});
  ASSERT_TRUE(client.wait_for_output("limit set", 10s)) << client.stderr_so_far();
  EXPECT_EQ(daemon.limit_w(2), 150.0);
  ::kill(client.pid(), SIGKILL);
  const auto restored = daemon.wait_for_limit(2, 300, 2s);
  ASSERT_TRUE(restored) << "GPU 2 is still at " << daemon.limit_w(2) << " W";
  RecordProperty("restore_ms", static_cast<int>(restored->count()));
}

TEST(Chased, ADroppedConnectionEndsItsLease) {
  ChasedDaemon daemon;
  UnixConnection connection(daemon.socket_path());
  ASSERT_TRUE(connection.connected());
  const auto reply = connection.request("POST", "/gpus/1/power_limit", R"({"power_limit_w": 120})");
  ASSERT_EQ(status_of(reply), 200) << reply;
  EXPECT_EQ(daemon.limit_w(1), 120.0);
  connection.close();
  EXPECT_TRUE(daemon.wait_for_limit(1, 300, 2s)) << daemon.limit_w(1);
}

TEST(Chased, TwoClientsOnOneGpuAreOrderedMostRecentFirst) {
  ChasedDaemon daemon;
  UnixConnection first(daemon.socket_path());
  UnixConnection second(daemon.socket_path());
  ASSERT_EQ(status_of(first.request("POST", "/gpus/0/power_limit", R"({"power_limit_w": 200})")),
            200);
  ASSERT_EQ(status_of(second.request("POST", "/gpus/0/power_limit", R"({"power_limit_w": 150})")),
            200);
  EXPECT_EQ(daemon.limit_w(0), 150.0);
  second.close();
  EXPECT_TRUE(daemon.wait_for_limit(0, 200, 2s)) << daemon.limit_w(0);  // the first lease's value
  first.close();
  EXPECT_TRUE(daemon.wait_for_limit(0, 300, 2s)) << daemon.limit_w(0);
}

TEST(Chased, SigtermRestoresEveryLeasedLimitAndRemovesTheSocket) {
  ChasedDaemon daemon;
  UnixConnection connection(daemon.socket_path());
  ASSERT_EQ(
      status_of(connection.request("POST", "/gpus/0/power_limit", R"({"power_limit_w": 110})")),
      200);
  ASSERT_EQ(
      status_of(connection.request("POST", "/gpus/3/power_limit", R"({"power_limit_w": 210})")),
      200);
  ::kill(daemon.process().pid(), SIGTERM);
  const auto result = daemon.process().wait(10s);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(daemon.limit_w(0), 300.0);
  EXPECT_EQ(daemon.limit_w(3), 300.0);
  EXPECT_FALSE(std::filesystem::exists(daemon.socket_path()));
}

TEST(Chased, ARestartAfterSigkillRestoresFromTheStateFile) {
  ChasedDaemon daemon;
  {
    UnixConnection connection(daemon.socket_path());
    ASSERT_EQ(
        status_of(connection.request("POST", "/gpus/1/power_limit", R"({"power_limit_w": 140})")),
        200);
    ::kill(daemon.process().pid(), SIGKILL);
    daemon.process().wait(10s);
  }
  EXPECT_EQ(daemon.limit_w(1), 140.0);  // nobody restored it: the daemon died first
  daemon.start();                       // replaces the stale socket, reads the record
  EXPECT_EQ(daemon.limit_w(1), 300.0);
  EXPECT_TRUE(daemon.process().wait_for_output("replacing the stale socket", 1s));
}

TEST(Chased, RefusesASocketALiveDaemonServes) {
  ChasedDaemon daemon;
  const auto second = run_process({CHASED_PATH, "--socket", daemon.socket_path().string(),
                                   "--state-dir", (daemon.env().directory() / "other").string()},
                                  20s);
  EXPECT_EQ(second.exit_code, 69) << second.err;
  EXPECT_NE(second.err.find("is in use: a live daemon"), std::string::npos) << second.err;
  UnixConnection still(daemon.socket_path());  // the first one still serves
  EXPECT_EQ(status_of(still.request("GET", "/health")), 200);
}

TEST(Chased, RefusesAPathThatIsNotASocket) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  const auto path = env.directory() / "file";
  std::ofstream(path) << "x";
  const auto result = run_process(
      {CHASED_PATH, "--socket", path.string(), "--state-dir", (env.directory() / "s").string()},
      20s);
  EXPECT_EQ(result.exit_code, 69) << result.err;
  EXPECT_NE(result.err.find("is not a socket"), std::string::npos) << result.err;
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST(Chased, RefusesAWorldWritableSocketMode) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  const auto result =
      run_process({CHASED_PATH, "--socket", (env.directory() / "s.sock").string(), "--socket-mode",
                   "0666", "--state-dir", (env.directory() / "s").string()},
                  20s);
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_NE(result.err.find("world-writable"), std::string::npos) << result.err;
}

TEST(Chased, ACallerOffTheControlListIsRefusedOverTheSocket) {
  ChasedDaemon daemon(2, {"--allow-control-gpus", "uid:4242424"});
  UnixConnection connection(daemon.socket_path());
  const auto reply = connection.request("POST", "/gpus/0/power_limit", R"({"power_limit_w": 150})");
  EXPECT_EQ(status_of(reply), 403) << reply;
  EXPECT_NE(reply.find("permission 'control-gpus' is missing"), std::string::npos) << reply;
  EXPECT_EQ(daemon.limit_w(0), 300.0);
  // The library client reports the same refusal as a permission error.
  EXPECT_THROW(
      {
        try {
          open_daemon_gpus(daemon.address())->set_power_limit_w(0, 150);
        } catch (const Error& e) {
          EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
          throw;
        }
      },
      Error);
}

TEST(Chased, MalformedHttpGetsAClearRefusalAndTheDaemonLivesOn) {
  ChasedDaemon daemon;
  const std::vector<std::pair<std::string, int>> cases = {
      {"NONSENSE\r\n\r\n", 400},
      {"POST /gpus/0/power_limit HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", 413},
      {"POST /gpus/0/power_limit HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"GET / HTTP/3.0\r\n\r\n", 505},
      {"GET /" + std::string(20000, 'a'), 431},
  };
  for (const auto& [bytes, status] : cases) {
    UnixConnection connection(daemon.socket_path());
    connection.send_raw(bytes);
    const auto reply = connection.read_response();
    EXPECT_EQ(status_of(reply), status) << reply;
    EXPECT_NE(reply.find("\"error\""), std::string::npos) << reply;
  }
  UnixConnection after(daemon.socket_path());
  EXPECT_EQ(status_of(after.request("GET", "/gpus")), 200);
  EXPECT_EQ(daemon.limit_w(0), 300.0);
}

TEST(Chased, ARequestLeftIncompleteTimesOutWith408) {
  ChasedDaemon daemon(1, {"--request-timeout-ms", "300"});
  UnixConnection slow(daemon.socket_path());
  slow.send_raw("POST /gpus/0/power_limit HTTP/1.1\r\nContent-Length: 40\r\n\r\n{\"power");
  const auto start = std::chrono::steady_clock::now();
  const auto reply = slow.read_response();
  EXPECT_EQ(status_of(reply), 408) << reply;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(daemon.limit_w(0), 300.0);
  UnixConnection idle(daemon.socket_path());  // an idle connection (no partial request) stays
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(status_of(idle.request("GET", "/health")), 200);
}

TEST(Chased, AFloodOfConnectionsIsCappedAndServiceGoesOn) {
  ChasedDaemon daemon(1, {"--max-connections", "8"});
  std::vector<std::unique_ptr<UnixConnection>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(std::make_unique<UnixConnection>(daemon.socket_path()));
    ASSERT_EQ(status_of(held.back()->request("GET", "/health")), 200);
  }
  UnixConnection refused(daemon.socket_path());
  EXPECT_EQ(status_of(refused.read_response()), 503);
  held.clear();
  std::this_thread::sleep_for(100ms);
  UnixConnection later(daemon.socket_path());
  EXPECT_EQ(status_of(later.request("GET", "/health")), 200);
}

TEST(Chased, TheLibraryBackendReadsThroughTheDaemon) {
  ChasedDaemon daemon(2);
  auto gpus = open_daemon_gpus(daemon.address());
  ASSERT_EQ(gpus->gpu_count(), 2u);
  EXPECT_EQ(gpus->backend_name(), "chased");
  EXPECT_EQ(gpus->gpus()[1].uuid, FakeNvmlEnvironment::standard_uuid(1));
  EXPECT_EQ(gpus->gpus()[1].max_power_limit_w, 300.0);
  EXPECT_DOUBLE_EQ(gpus->power_w(0), 155.0);
  EXPECT_GT(gpus->energy_j(0), 1e6);
  EXPECT_FALSE(gpus->limits_outlive_process());
  gpus->set_power_limit_w(1, 250);
  EXPECT_EQ(gpus->power_limit_w(1), 250.0);
  EXPECT_THROW(gpus->set_power_limit_w(1, 50), Error);  // out of range, checked before sending
  gpus.reset();                                         // closing the connection ends the lease
  EXPECT_TRUE(daemon.wait_for_limit(1, 300, 2s));
}

TEST(Chased, MeasurePowerLimitRunsTheCommandAtTheLimitThroughTheDaemon) {
  ChasedDaemon daemon(2);
  ScopedEnv address("CHASE_DAEMON", daemon.address());
  const auto seen = daemon.env().directory() / "seen.json";
  const auto result =
      run_process({CHASE_CLI_PATH, "measure", "--no-cpu", "--power-limit", "175", "--", "/bin/sh",
                   "-c", "cat \"$FAKE_NVML_STATE\" > " + seen.string()},
                  60s);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("runs at a 175 W power limit"), std::string::npos) << result.err;
  std::ifstream in(seen);
  const auto during = nlohmann::json::parse(in);
  ASSERT_EQ(during["gpus"].size(), 2u);
  for (const auto& gpu : during["gpus"]) EXPECT_EQ(gpu["limit_mw"], 175000);
  EXPECT_TRUE(daemon.wait_for_limit(0, 300, 2s));
  EXPECT_TRUE(daemon.wait_for_limit(1, 300, 2s));
}

TEST(Chased, MeasurePowerLimitRefusesAnOutOfRangeLimitBeforeRunning) {
  ChasedDaemon daemon(1);
  ScopedEnv address("CHASE_DAEMON", daemon.address());
  const auto marker = daemon.env().directory() / "ran";
  const auto result = run_process({CHASE_CLI_PATH, "measure", "--no-cpu", "--power-limit", "20",
                                   "--", "/usr/bin/touch", marker.string()},
                                  60s);
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_NE(result.err.find("out of range"), std::string::npos) << result.err;
  EXPECT_FALSE(std::filesystem::exists(marker));
  EXPECT_EQ(daemon.limit_w(0), 300.0);
}

TEST(Chased, MeasurePowerLimitWorksDirectlyWithoutTheDaemon) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(2));
  const auto seen = env.directory() / "seen.json";
  const auto result =
      run_process({CHASE_CLI_PATH, "measure", "--no-cpu", "--gpus", "1", "--power-limit", "160",
                   "--", "/bin/sh", "-c", "cat \"$FAKE_NVML_STATE\" > " + seen.string()},
                  60s);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::ifstream in(seen);
  const auto during = nlohmann::json::parse(in);
  std::map<std::string, double> limits;
  for (const auto& gpu : during["gpus"]) limits[gpu["uuid"]] = gpu["limit_mw"].get<double>();
  EXPECT_EQ(limits[FakeNvmlEnvironment::standard_uuid(1)], 160000);  // the measured GPU
  EXPECT_EQ(limits[FakeNvmlEnvironment::standard_uuid(0)], 300000);  // not the other one
  EXPECT_EQ(env.limits_in_state_file().at(FakeNvmlEnvironment::standard_uuid(1)), 300.0);
}

TEST(Chased, AnUnreachableDaemonIsAClearError) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  EXPECT_THROW(
      {
        try {
          open_daemon_gpus("unix:" + (env.directory() / "none.sock").string());
        } catch (const Error& e) {
          EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
          EXPECT_NE(std::string(e.what()).find("is chased running"), std::string::npos);
          throw;
        }
      },
      Error);
  EXPECT_THROW(open_daemon_gpus("tcp:nonsense"), Error);
}

}  // namespace
}  // namespace chase::testing
