// chased's request handling without sockets, over the fake NVML: routes, validation, refusals,
// leases and the durable record.
#include "server/daemon_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "chase/nvml.h"
#include "support/fake_nvml_env.h"
#include "support/process.h"

namespace chase::server {
namespace {

using chase::testing::FakeNvmlEnvironment;
using json = nlohmann::json;

HttpMessage request(std::string method, std::string target, std::string body = "") {
  HttpMessage message;
  message.method = std::move(method);
  message.target = std::move(target);
  message.body = std::move(body);
  return message;
}

Caller unix_caller(std::uint64_t connection, uid_t uid = 1000, gid_t gid = 1000) {
  Caller caller;
  caller.connection = connection;
  caller.credentials = PeerCredentials{::getpid(), uid, gid, {}};
  return caller;
}

class DaemonServiceTest : public ::testing::Test {
 protected:
  DaemonServiceTest() : env_(FakeNvmlEnvironment::standard_config(2)) {
    ServiceOptions options;
    options.policy.read_gpus = parse_allow_list("*", "test");
    options.policy.control_gpus =
        parse_allow_list("uid:1000,uid:" + std::to_string(::getuid()), "test");
    options.policy.read_cpus = parse_allow_list("uid:0", "test");
    options.state_directory = env_.directory() / "chased-state";
    backend_ = open_nvml();
    service_ = std::make_unique<DaemonService>(backend_, nullptr, options);
  }
  ~DaemonServiceTest() override {
    service_.reset();
    backend_.reset();
  }

  json body_of(const Reply& reply) { return json::parse(reply.body); }
  LimitStateStore store() const { return LimitStateStore(env_.directory() / "chased-state"); }

  FakeNvmlEnvironment env_;
  std::shared_ptr<GpuBackend> backend_;
  std::unique_ptr<DaemonService> service_;
};

TEST_F(DaemonServiceTest, ListsGpusWithLimitsAndConstraints) {
  const Reply reply = service_->handle(request("GET", "/gpus"), unix_caller(1));
  ASSERT_EQ(reply.status, 200) << reply.body;
  const json gpus = body_of(reply);
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[1]["index"], 1);
  EXPECT_EQ(gpus[1]["uuid"], FakeNvmlEnvironment::standard_uuid(1));
  EXPECT_EQ(gpus[1]["power_limit_w"], 300.0);
  EXPECT_EQ(gpus[1]["constraints"]["min_power_limit_w"], 100.0);
  EXPECT_EQ(gpus[1]["constraints"]["max_power_limit_w"], 300.0);
}

TEST_F(DaemonServiceTest, ALeaseIsRecordedDurablyAndEndsWithItsConnection) {
  Reply reply = service_->handle(
      request("POST", "/gpus/0/power_limit", R"({"power_limit_w": 180})"), unix_caller(7));
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(body_of(reply)["original_w"], 300.0);
  EXPECT_EQ(env_.limit_w(0), 180.0);
  auto records = store().read();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].original_w, 300.0);
  EXPECT_EQ(records[0].last_set_w, 180.0);
  EXPECT_EQ(records[0].holders.at(0).pid, ::getpid());

  service_->connection_closed(8);  // another connection: nothing changes
  EXPECT_EQ(env_.limit_w(0), 180.0);
  service_->connection_closed(7);
  EXPECT_EQ(env_.limit_w(0), 300.0);
  EXPECT_TRUE(store().read().empty());
}

TEST_F(DaemonServiceTest, RefusesACallerOffTheControlListAndChangesNothing) {
  const Reply reply =
      service_->handle(request("POST", "/gpus/0/power_limit", R"({"power_limit_w": 150})"),
                       unix_caller(1, 2000, 2000));
  EXPECT_EQ(reply.status, 403);
  EXPECT_NE(reply.body.find("permission 'control-gpus' is missing"), std::string::npos)
      << reply.body;
  EXPECT_NE(reply.body.find("uid 2000"), std::string::npos);
  EXPECT_EQ(env_.limit_w(0), 300.0);
  EXPECT_EQ(env_.call_count("nvmlDeviceSetPowerManagementLimit"), 0u);
  EXPECT_TRUE(store().read().empty());
}

TEST_F(DaemonServiceTest, AGroupOnTheListGrantsTheCapability) {
  ServiceOptions options;
  options.policy.control_gpus = parse_allow_list("gid:44", "test");
  Caller caller = unix_caller(3, 2000, 2000);
  caller.credentials->groups = {44};
  EXPECT_TRUE(refusal(options.policy, Capability::kControlGpus, *caller.credentials).empty());
}

TEST_F(DaemonServiceTest, RefusesBadRequestsClearlyAndChangesNothing) {
  struct Case {
    std::string method, target, body;
    int status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"POST", "/gpus/0/power_limit", R"({"power_limit_w": 50})", 422, "out of range"},
      {"POST", "/gpus/0/power_limit", R"({"power_limit_w": 1e400})", 400, ""},
      {"POST", "/gpus/0/power_limit", R"({"power_limit_w": "200"})", 400, "finite number"},
      {"POST", "/gpus/0/power_limit", R"({"power_limit_w": true})", 400, "finite number"},
      {"POST", "/gpus/0/power_limit", R"({"power_limit": 200})", 400, "unknown field"},
      {"POST", "/gpus/0/power_limit", R"([200])", 400, "JSON object"},
      {"POST", "/gpus/0/power_limit", R"({"power_limit_w": 200)", 400, "not valid JSON"},
      {"POST", "/gpus/0/power_limit", "", 400, "missing"},
      {"POST", "/gpus/9/power_limit", R"({"power_limit_w": 200})", 404, "no GPU 9"},
      {"POST", "/gpus/x/power_limit", R"({"power_limit_w": 200})", 404, "not a GPU index"},
      {"PUT", "/gpus/0/power_limit", R"({"power_limit_w": 200})", 405, "not allowed"},
      {"POST", "/gpus", "{}", 405, "not allowed"},
      {"GET", "/nothing", "", 404, "no route"},
      {"GET", "/cpus", "", 403, "read-cpus"},
      {"POST", "/gpus/0/power_limit", R"({"power_limit_w": 200, "holder_pid": 0})", 400,
       "holder_pid"},
  };
  for (const auto& c : cases) {
    const Reply reply = service_->handle(request(c.method, c.target, c.body), unix_caller(1));
    EXPECT_EQ(reply.status, c.status)
        << c.method << " " << c.target << " " << c.body << ": " << reply.body;
    EXPECT_NE(reply.body.find(c.says), std::string::npos) << reply.body;
    const json parsed = json::parse(reply.body);
    EXPECT_TRUE(parsed["error"].is_string());
  }
  EXPECT_EQ(env_.limit_w(0), 300.0);
  EXPECT_EQ(env_.call_count("nvmlDeviceSetPowerManagementLimit"), 0u);
}

TEST_F(DaemonServiceTest, AProcessLeaseEndsWhenTheProcessEnds) {
  chase::testing::Process child({"/bin/sleep", "60"});
  const Reply reply =
      service_->handle(request("POST", "/gpus/1/power_limit",
                               json{{"power_limit_w", 150}, {"holder_pid", child.pid()}}.dump()),
                       unix_caller(5, ::getuid(), ::getgid()));
  ASSERT_EQ(reply.status, 200) << reply.body;
  service_->connection_closed(5);  // the connection is not the holder
  EXPECT_EQ(env_.limit_w(1), 150.0);
  EXPECT_TRUE(service_->check_process_leases());
  ::kill(child.pid(), SIGKILL);
  child.wait();
  EXPECT_FALSE(service_->check_process_leases());
  EXPECT_EQ(env_.limit_w(1), 300.0);
}

TEST_F(DaemonServiceTest, DeleteReleasesTheCallersLease) {
  service_->handle(request("POST", "/gpus/0/power_limit", R"({"power_limit_w": 200})"),
                   unix_caller(4));
  const Reply reply = service_->handle(request("DELETE", "/gpus/0/power_limit"), unix_caller(4));
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(body_of(reply)["released"], 1);
  EXPECT_EQ(env_.limit_w(0), 300.0);
}

TEST_F(DaemonServiceTest, ALimitChangedBySomeoneElseIsLeftAlone) {
  service_->handle(request("POST", "/gpus/0/power_limit", R"({"power_limit_w": 200})"),
                   unix_caller(4));
  backend_->set_power_limit_w(0, 250);  // an administrator, behind the daemon's back
  service_->connection_closed(4);
  EXPECT_EQ(env_.limit_w(0), 250.0);
  EXPECT_TRUE(store().read().empty());
}

TEST_F(DaemonServiceTest, TheMetricsListenerServesOnlyMetrics) {
  Caller metrics;
  metrics.metrics_only = true;
  EXPECT_EQ(service_->handle(request("GET", "/metrics"), metrics).status, 200);
  EXPECT_EQ(service_->handle(request("GET", "/gpus"), metrics).status, 404);
  EXPECT_EQ(
      service_->handle(request("POST", "/gpus/0/power_limit", R"({"power_limit_w": 200})"), metrics)
          .status,
      404);
  EXPECT_EQ(env_.limit_w(0), 300.0);
}

TEST_F(DaemonServiceTest, MetricsNameEveryGpuByIndexAndUuid) {
  service_->handle(request("POST", "/gpus/1/power_limit", R"({"power_limit_w": 200})"),
                   unix_caller(4));
  const std::string text = service_->metrics();
  for (int gpu = 0; gpu < 2; ++gpu) {
    const std::string labels = "{index=\"" + std::to_string(gpu) + "\",uuid=\"" +
                               FakeNvmlEnvironment::standard_uuid(gpu) + "\"}";
    EXPECT_NE(text.find("chase_gpu_power_watts" + labels + " 155"), std::string::npos) << text;
    EXPECT_NE(text.find("chase_gpu_energy_joules_total" + labels), std::string::npos);
  }
  EXPECT_NE(text.find("chase_gpu_power_limit_watts{index=\"1\",uuid=\"" +
                      FakeNvmlEnvironment::standard_uuid(1) + "\"} 200"),
            std::string::npos);
  EXPECT_NE(text.find("chase_gpu_leases{index=\"1\""), std::string::npos);
  EXPECT_NE(text.find("# TYPE chase_gpu_energy_joules_total counter"), std::string::npos);
  EXPECT_NE(text.find("chase_daemon_leases 1"), std::string::npos);
}

TEST_F(DaemonServiceTest, ANewServiceRestoresWhatADeadDaemonLeftChanged) {
  // A record held by a process that no longer exists, as a SIGKILLed daemon leaves it.
  backend_->set_power_limit_w(0, 170);
  store().update([](std::vector<LimitRecord>& records) {
    records.push_back({FakeNvmlEnvironment::standard_uuid(0), 300, 170, {{999999, 1, 0, 170}}});
    return true;
  });
  ServiceOptions options;
  options.state_directory = env_.directory() / "chased-state";
  DaemonService restarted(backend_, nullptr, options);
  EXPECT_EQ(env_.limit_w(0), 300.0);
  EXPECT_TRUE(store().read().empty());
}

}  // namespace
}  // namespace chase::server
