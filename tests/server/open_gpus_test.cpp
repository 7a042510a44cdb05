// open_gpus(), the open path of the Python package and of programs that should run unchanged
// without root: through chased when CHASE_DAEMON is set (a limit is then a lease, restored when
// the backend goes), NVML otherwise, and an error — not a silent NVML — when the daemon is absent.
#include "chase/open_gpus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "chase/error.h"
#include "server/chased_fixture.h"
#include "support/scoped_env.h"

namespace chase::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(OpenGpus, WithChaseDaemonTheLimitsGoThroughTheDaemonAndComeBackWithTheBackend) {
  ChasedDaemon daemon(2);
  {
    ScopedEnv env("CHASE_DAEMON", daemon.address());
    auto gpus = open_gpus();
    EXPECT_EQ(gpus->backend_name(), "chased");
    ASSERT_EQ(gpus->gpu_count(), 2u);
    gpus->set_power_limit_w(1, 175);
    EXPECT_TRUE(daemon.wait_for_limit(1, 175, 2s));
    UnixConnection observer(daemon.socket_path());
    EXPECT_THAT(observer.request("GET", "/leases"), HasSubstr("\"power_limit_w\":175"));
  }  // the backend (its connection) is gone: the daemon restores the limit
  EXPECT_TRUE(daemon.wait_for_limit(1, 300, 2s));
}

TEST(OpenGpus, WithoutChaseDaemonItIsNvml) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(3));
  ScopedEnv no_daemon("CHASE_DAEMON", std::nullopt);
  auto gpus = open_gpus();
  EXPECT_NE(gpus->backend_name(), "chased");
  EXPECT_EQ(gpus->gpu_count(), 3u);
}

TEST(OpenGpus, ADaemonThatDoesNotAnswerIsAnErrorNotNvml) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  const auto socket = env.directory() / "nobody.sock";
  ScopedEnv daemon("CHASE_DAEMON", "unix:" + socket.string());
  try {
    open_gpus();
    FAIL() << "open_gpus() fell back instead of failing";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_THAT(e.what(), HasSubstr(socket.string()));
  }
}

}  // namespace
}  // namespace chase::testing
