#include "chase/power_limit_guard.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "chase/error.h"
#include "chase/limit_state.h"
#include "chase/nvml.h"
#include "support/fake_gpu_backend.h"
#include "support/fake_nvml_env.h"
#include "support/log_capture.h"
#include "support/process.h"

extern char** environ;

namespace chase {
namespace {

using testing::FakeGpuBackend;
using testing::FakeNvmlEnvironment;
using ::testing::HasSubstr;
using testing::LogCapture;

// FakeGpuBackend GPUs start at 300 W, limits [100, 300] W.
constexpr double kOriginal = 300;

ErrorCode code_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.code();
  }
  throw std::logic_error("expected a chase::Error");
}

// ---- The guard over an in-memory backend --------------------------------------------------------

TEST(PowerLimitGuard, RestoresEveryChangedGpuOnScopeExit) {
  auto backend = std::make_shared<FakeGpuBackend>(3);
  {
    PowerLimitGuard guard(backend);
    guard.set_power_limit_w(0, 150);
    guard.set_power_limit_w(2, 200);
    EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 150);
    EXPECT_DOUBLE_EQ(backend->power_limit_w(2), 200);
    EXPECT_EQ(&guard.backend(), backend.get());
  }
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), kOriginal);
  EXPECT_DOUBLE_EQ(backend->power_limit_w(1), kOriginal);
  EXPECT_DOUBLE_EQ(backend->power_limit_w(2), kOriginal);
  EXPECT_EQ(backend->limit_changes.size(), 4u);  // two changes, two restores; GPU 1 untouched
}

TEST(PowerLimitGuard, RestoresWhenAnExceptionUnwinds) {
  auto backend = std::make_shared<FakeGpuBackend>(1);
  EXPECT_THROW(
      {
        PowerLimitGuard guard(backend);
        guard.set_power_limit_w(0, 120);
        throw std::runtime_error("training failed");
      },
      std::runtime_error);
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), kOriginal);
}

TEST(PowerLimitGuard, ExplicitRestoreRestoresAndForgets) {
  auto backend = std::make_shared<FakeGpuBackend>(2);
  PowerLimitGuard guard(backend);
  guard.set_power_limit_w(1, 180);
  guard.restore();
  EXPECT_DOUBLE_EQ(backend->power_limit_w(1), kOriginal);
  EXPECT_EQ(guard.original_limit_w(1), std::nullopt);
  // A later change records afresh: the limit in force now.
  guard.set_power_limit_w(1, 250);
  EXPECT_EQ(guard.original_limit_w(1), kOriginal);
  guard.restore();
  guard.restore();  // nothing left: no further changes
  EXPECT_EQ(backend->limit_changes.size(), 4u);
}

TEST(PowerLimitGuard, RecordsTheOriginalOnlyOnFirstChange) {
  auto backend = std::make_shared<FakeGpuBackend>(1);
  {
    PowerLimitGuard guard(backend);
    EXPECT_EQ(guard.original_limit_w(0), std::nullopt);
    guard.set_power_limit_w(0, 200);
    guard.set_power_limit_w(0, 150);
    EXPECT_EQ(guard.original_limit_w(0), kOriginal);
    EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 150);
  }
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), kOriginal);
}

TEST(PowerLimitGuard, RecordsTheLimitInForceNotTheDefault) {
  auto backend = std::make_shared<FakeGpuBackend>(1);
  backend->set_power_limit_w(0, 250);  // e.g. an administrator's setting
  {
    PowerLimitGuard guard(backend);
    guard.set_power_limit_w(0, 150);
    EXPECT_EQ(guard.original_limit_w(0), 250);
  }
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 250);
}

TEST(PowerLimitGuard, FailedSetLeavesNoRecord) {
  auto backend = std::make_shared<FakeGpuBackend>(1);
  {
    PowerLimitGuard guard(backend);
    backend->fail_set_power_limit(true);
    EXPECT_EQ(code_of([&] { guard.set_power_limit_w(0, 150); }), ErrorCode::kPermissionDenied);
    EXPECT_EQ(guard.original_limit_w(0), std::nullopt);
    backend->fail_set_power_limit(false);
  }
  EXPECT_TRUE(backend->limit_changes.empty());  // nothing to restore, so nothing was written
}

TEST(PowerLimitGuard, OutOfRangeLimitThrowsAndRecordsNothing) {
  auto backend = std::make_shared<FakeGpuBackend>(1);
  {
    PowerLimitGuard guard(backend);
    EXPECT_EQ(code_of([&] { guard.set_power_limit_w(0, 50); }), ErrorCode::kInvalidArgument);
    EXPECT_EQ(code_of([&] { guard.set_power_limit_w(0, 301); }), ErrorCode::kInvalidArgument);
    EXPECT_EQ(guard.original_limit_w(0), std::nullopt);
  }
  EXPECT_TRUE(backend->limit_changes.empty());
}

TEST(PowerLimitGuard, FailedLaterSetKeepsTheFirstRecord) {
  auto backend = std::make_shared<FakeGpuBackend>(1);
  {
    PowerLimitGuard guard(backend);
    guard.set_power_limit_w(0, 200);
    EXPECT_THROW(guard.set_power_limit_w(0, 50), Error);
    EXPECT_EQ(guard.original_limit_w(0), kOriginal);  // GPU 0 is still changed: keep its original
  }
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), kOriginal);
}

TEST(PowerLimitGuard, UnknownGpuThrowsAndRecordsNothing) {
  auto backend = std::make_shared<FakeGpuBackend>(1);
  PowerLimitGuard guard(backend);
  EXPECT_THROW(guard.set_power_limit_w(5, 150), Error);
  EXPECT_EQ(guard.original_limit_w(5), std::nullopt);
}

TEST(PowerLimitGuard, NullBackendIsRejected) {
  EXPECT_EQ(code_of([] { PowerLimitGuard guard(nullptr); }), ErrorCode::kInvalidArgument);
}

TEST(PowerLimitGuard, RestoreTriesEveryGpuThenThrowsTheFirstFailure) {
  auto backend = std::make_shared<FakeGpuBackend>(3);
  PowerLimitGuard guard(backend);
  for (std::size_t gpu = 0; gpu < 3; ++gpu) guard.set_power_limit_w(gpu, 150);
  backend->fail(0, "fell off the bus");
  backend->fail(2, "also lost");
  try {
    guard.restore();
    FAIL() << "restore() should throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDeviceLost);
    EXPECT_THAT(e.what(), HasSubstr("fell off the bus"));
    EXPECT_THAT(e.what(), HasSubstr("300 W"));  // says what to set it back to
  }
  EXPECT_DOUBLE_EQ(backend->power_limit_w(1), kOriginal);  // attempted despite GPU 0's failure
  EXPECT_EQ(guard.original_limit_w(0), std::nullopt);      // reported once, not retried
  backend->fail(0, "");
  backend->fail(2, "");
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 150);
}

TEST(PowerLimitGuard, DestructorReportsRestoreFailureWithoutThrowing) {
  auto backend = std::make_shared<FakeGpuBackend>(2);
  EXPECT_NO_THROW({
    PowerLimitGuard guard(backend);
    guard.set_power_limit_w(0, 150);
    guard.set_power_limit_w(1, 150);
    backend->fail(0, "fell off the bus");
  });
  backend->fail(0, "");
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 150);
  EXPECT_DOUBLE_EQ(backend->power_limit_w(1), kOriginal);
}

TEST(PowerLimitGuard, NestedGuardsEndAtTheTrueOriginal) {
  auto backend = std::make_shared<FakeGpuBackend>(1);
  {
    PowerLimitGuard outer(backend);
    outer.set_power_limit_w(0, 200);
    {
      PowerLimitGuard inner(backend);
      inner.set_power_limit_w(0, 150);
      EXPECT_EQ(inner.original_limit_w(0), 200);
    }
    EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 200);
  }
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), kOriginal);
}

TEST(PowerLimitGuard, MayBeUsedFromSeveralThreads) {
  constexpr std::size_t kGpus = 8;
  auto backend = std::make_shared<FakeGpuBackend>(kGpus);
  {
    PowerLimitGuard guard(backend);
    std::vector<std::thread> threads;
    for (std::size_t gpu = 0; gpu < kGpus; ++gpu) {
      threads.emplace_back([&guard, gpu] {
        for (int step = 0; step < 20; ++step) guard.set_power_limit_w(gpu, 100.0 + step);
      });
    }
    for (auto& thread : threads) thread.join();
    for (std::size_t gpu = 0; gpu < kGpus; ++gpu) EXPECT_EQ(guard.original_limit_w(gpu), kOriginal);
  }
  for (std::size_t gpu = 0; gpu < kGpus; ++gpu)
    EXPECT_DOUBLE_EQ(backend->power_limit_w(gpu), kOriginal);
}

TEST(PowerLimitGuard, LeavesALimitSomeoneElseChangedMeanwhileAndWarns) {
  LogCapture log;
  auto backend = std::make_shared<FakeGpuBackend>(1);
  {
    PowerLimitGuard guard(backend);
    guard.set_power_limit_w(0, 150);
    backend->set_power_limit_w(0, 250);  // an administrator, between our change and our restore
  }
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 250);
  EXPECT_THAT(log.text(), HasSubstr("is 250 W, not the 150 W chase set"));
}

TEST(PowerLimitGuard, RestoresTheDefaultLimitOnlyWhenAskedTo) {
  auto backend = std::make_shared<FakeGpuBackend>(1);
  backend->set_power_limit_w(0, 250);  // an administrator's setting, below the 300 W default
  {
    PowerLimitGuard guard(backend);
    guard.set_power_limit_w(0, 150);
  }
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 250);
  {
    PowerLimitGuardOptions options;
    options.restore_to = RestoreTarget::kDefault;
    PowerLimitGuard guard(backend, options);
    guard.set_power_limit_w(0, 150);
  }
  EXPECT_DOUBLE_EQ(backend->power_limit_w(0), 300);
}

// ---- The durable record, through the real NVML backend over the fake NVML -----------------------

std::vector<LimitRecord> records_in(const FakeNvmlEnvironment& env) {
  return LimitStateStore(env.limit_state_directory()).read();
}

TEST(PowerLimitGuardDurable, RecordsTheOriginalBeforeTheChangeAndRemovesItOnRestore) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(2));
  std::shared_ptr<GpuBackend> backend = open_nvml();
  {
    PowerLimitGuard guard(backend);
    guard.set_power_limit_w(1, 150);
    guard.set_power_limit_w(1, 140);
    const auto records = records_in(env);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].uuid, FakeNvmlEnvironment::standard_uuid(1));
    EXPECT_DOUBLE_EQ(records[0].original_w, 300);
    EXPECT_DOUBLE_EQ(records[0].last_set_w, 140);
    ASSERT_EQ(records[0].holders.size(), 1u);
    EXPECT_EQ(records[0].holders[0].pid, ::getpid());
  }
  EXPECT_DOUBLE_EQ(backend->power_limit_w(1), 300);
  EXPECT_TRUE(records_in(env).empty());
}

TEST(PowerLimitGuardDurable, LeavesALimitAnotherClientChangedAndWarns) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  std::shared_ptr<GpuBackend> backend = open_nvml();
  LogCapture log;
  {
    PowerLimitGuard guard(backend);
    guard.set_power_limit_w(0, 150);
    open_nvml()->set_power_limit_w(0, 250);  // another NVML client, not through chase's guard
  }
  EXPECT_DOUBLE_EQ(env.limit_w(0), 250);
  EXPECT_THAT(log.text(), HasSubstr("not the 150 W chase set"));
  EXPECT_TRUE(records_in(env).empty());  // the other client's limit is the one to keep now
}

TEST(PowerLimitGuardDurable, RestoreToDefaultIsAnExplicitOption) {
  auto config = FakeNvmlEnvironment::standard_config(1);
  config["gpus"][0]["limit_w"] = 250;  // an administrator's cap below the 300 W default
  FakeNvmlEnvironment env(config);
  std::shared_ptr<GpuBackend> backend = open_nvml();
  {
    PowerLimitGuard guard(backend);
    guard.set_power_limit_w(0, 150);
  }
  EXPECT_DOUBLE_EQ(env.limit_w(0), 250);
  {
    PowerLimitGuardOptions options;
    options.restore_to = RestoreTarget::kDefault;
    PowerLimitGuard guard(backend, options);
    guard.set_power_limit_w(0, 150);
  }
  EXPECT_DOUBLE_EQ(env.limit_w(0), 300);
}

TEST(PowerLimitGuardDurable, AFailedChangeLeavesNoRecord) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  std::shared_ptr<GpuBackend> backend = open_nvml();
  env.set_failure(0, "nvmlDeviceSetPowerManagementLimit", testing::nvml_return::kNoPermission);
  PowerLimitGuard guard(backend);
  EXPECT_EQ(code_of([&] { guard.set_power_limit_w(0, 150); }), ErrorCode::kPermissionDenied);
  EXPECT_TRUE(records_in(env).empty());
}

TEST(PowerLimitGuardDurable, WithoutAUsableStateDirectoryItWarnsAndStillRestores) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  std::shared_ptr<GpuBackend> backend = open_nvml();
  LogCapture log;
  {
    PowerLimitGuardOptions options;
    options.state_directory = env.config_path() / "not-a-directory";  // below a regular file
    PowerLimitGuard guard(backend, options);
    guard.set_power_limit_w(0, 150);
  }
  EXPECT_DOUBLE_EQ(env.limit_w(0), 300);
  EXPECT_THAT(log.text(), HasSubstr("not after SIGKILL"));
}

// ---- The whole process: signals, exit() and unwinding, through the real NVML backend ------------

// The helper program, started with pipes on stdin and stdout and stderr in a file. Every wait is
// bounded; the destructor kills and reaps a helper that is still running.
class Helper {
 public:
  Helper(const std::vector<std::string>& args, const std::filesystem::path& stderr_path)
      : stderr_path_(stderr_path) {
    int to_child[2];
    int from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    if (::pipe2(from_child, O_CLOEXEC) != 0) {
      close_all({to_child[0], to_child[1]});
      throw std::runtime_error("pipe2 failed");
    }
    stdin_fd_ = to_child[1];
    stdout_fd_ = from_child[0];
    try {
      spawn(args, to_child[0], from_child[1]);
    } catch (...) {
      close_all({to_child[0], to_child[1], from_child[0], from_child[1]});
      throw;
    }
    close_all({to_child[0], from_child[1]});  // the child's ends
  }
  ~Helper() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    ::close(stdout_fd_);
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Helper(const Helper&) = delete;
  Helper& operator=(const Helper&) = delete;

  // Reads stdout until it contains `text` (true), or it closes or the timeout passes (false).
  bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find(text) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(static_cast<int>(left.count()))) return false;
    }
    return true;
  }

  void close_stdin() {
    ::close(stdin_fd_);
    stdin_fd_ = -1;
  }
  void send(int signal) const { ASSERT_EQ(::kill(pid_, signal), 0); }

  // The wait status, or nullopt when the helper is still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        while (read_some(100)) {
        }
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    } while (std::chrono::steady_clock::now() < deadline);
    return std::nullopt;
  }

  // What the helper wrote, for failure messages.
  std::string transcript() const {
    std::ifstream err(stderr_path_);
    std::stringstream text;
    text << "stdout:\n" << output_ << "stderr:\n" << err.rdbuf();
    return text.str();
  }
  const std::string& output() const { return output_; }

 private:
  static void close_all(std::initializer_list<int> fds) {
    for (int fd : fds) ::close(fd);
  }

  void spawn(const std::vector<std::string>& args, int stdin_fd, int stdout_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    // The helper must start with the signals at their defaults and unblocked, whatever this test
    // process inherited (a shell may ignore SIGINT for background jobs).
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t defaults;
    sigset_t none;
    sigemptyset(&defaults);
    for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&defaults, signal);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    std::vector<char*> argv;
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, argv[0], &actions, &attributes, argv.data(), environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
  }

  // Waits up to timeout_ms for stdout; false once it is closed or nothing came.
  bool read_some(int timeout_ms) {
    pollfd ready{stdout_fd_, POLLIN, 0};
    if (::poll(&ready, 1, timeout_ms) <= 0) return false;
    char buffer[512];
    const ssize_t count = ::read(stdout_fd_, buffer, sizeof buffer);
    if (count <= 0) return false;
    output_.append(buffer, static_cast<std::size_t>(count));
    return true;
  }

  std::filesystem::path stderr_path_;
  pid_t pid_ = 0;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  bool reaped_ = false;
  std::string output_;
};

constexpr auto kTimeout = std::chrono::seconds(10);

class PowerLimitGuardProcess : public ::testing::Test {
 protected:
  // Starts the helper changing GPU 0 to 150 W and GPU 2 to 200 W, and checks that the change
  // reached the (fake) driver, so the restore checked afterwards is not vacuous.
  std::unique_ptr<Helper> start(const std::string& mode) {
    auto helper = std::make_unique<Helper>(
        std::vector<std::string>{CHASE_GUARD_HELPER_PATH, mode, "0=150", "2=200"},
        env_.directory() / "helper.err");
    EXPECT_TRUE(helper->wait_for_output("READY", kTimeout)) << helper->transcript();
    EXPECT_EQ(limits(), (std::vector<double>{150, 300, 200, 300})) << helper->transcript();
    return helper;
  }

  // The limits the fake driver holds now, by NVML index.
  std::vector<double> limits() const {
    const auto by_uuid = env_.limits_in_state_file();
    std::vector<double> result;
    for (std::size_t gpu = 0; gpu < kGpus; ++gpu) {
      const auto found = by_uuid.find(FakeNvmlEnvironment::standard_uuid(gpu));
      result.push_back(found != by_uuid.end() ? found->second : -1);
    }
    return result;
  }

  static int wait_status(Helper& helper) {
    const auto status = helper.wait(kTimeout);
    EXPECT_TRUE(status.has_value()) << "the helper did not end\n" << helper.transcript();
    return status.value_or(0);
  }

  // A signal whose disposition was the default: the watcher restores, then the signal kills.
  void expect_restored_then_killed_by(int signal) {
    auto helper = start("wait");
    helper->send(signal);
    const int status = wait_status(*helper);
    ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status << "\n" << helper->transcript();
    EXPECT_EQ(WTERMSIG(status), signal) << helper->transcript();
    EXPECT_EQ(limits(), kOriginals) << helper->transcript();
  }

  static constexpr std::size_t kGpus = 4;
  static inline const std::vector<double> kOriginals{300, 300, 300, 300};
  FakeNvmlEnvironment env_{FakeNvmlEnvironment::standard_config(kGpus)};
};

TEST_F(PowerLimitGuardProcess, SigtermRestoresThenKillsBySigterm) {
  expect_restored_then_killed_by(SIGTERM);
}
TEST_F(PowerLimitGuardProcess, SigintRestoresThenKillsBySigint) {
  expect_restored_then_killed_by(SIGINT);
}
TEST_F(PowerLimitGuardProcess, SighupRestoresThenKillsBySighup) {
  expect_restored_then_killed_by(SIGHUP);
}

TEST_F(PowerLimitGuardProcess, InterleavedGuardsEndAtTheTrueOriginalsOnSignal) {
  auto helper = start("interleave");
  helper->send(SIGTERM);
  const int status = wait_status(*helper);
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status << "\n" << helper->transcript();
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_EQ(limits(), kOriginals) << helper->transcript();
}

TEST_F(PowerLimitGuardProcess, ChainsToTheProgramsOwnHandler) {
  auto helper = start("chain");
  helper->send(SIGTERM);
  const int status = wait_status(*helper);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status << "\n" << helper->transcript();
  EXPECT_EQ(WEXITSTATUS(status), 0) << helper->transcript();
  EXPECT_THAT(helper->output(), HasSubstr("CHAINED"));
  EXPECT_EQ(limits(), kOriginals) << helper->transcript();
}

TEST_F(PowerLimitGuardProcess, IgnoredSignalStaysIgnored) {
  auto helper = start("ignore");
  helper->send(SIGHUP);
  // Had the guard caught SIGHUP, the helper would be dead within milliseconds.
  EXPECT_EQ(helper->wait(std::chrono::milliseconds(200)), std::nullopt) << helper->transcript();
  EXPECT_EQ(limits(), (std::vector<double>{150, 300, 200, 300}));
  helper->send(SIGTERM);
  const int status = wait_status(*helper);
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status << "\n" << helper->transcript();
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_EQ(limits(), kOriginals) << helper->transcript();
}

TEST_F(PowerLimitGuardProcess, ExitWithTheGuardAliveRestores) {
  auto helper = start("exit");
  helper->close_stdin();
  const int status = wait_status(*helper);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status << "\n" << helper->transcript();
  EXPECT_EQ(WEXITSTATUS(status), 0) << helper->transcript();
  EXPECT_EQ(limits(), kOriginals) << helper->transcript();
}

TEST_F(PowerLimitGuardProcess, ExceptionUnwindingRestores) {
  auto helper = start("throw");
  helper->close_stdin();
  const int status = wait_status(*helper);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status << "\n" << helper->transcript();
  EXPECT_EQ(WEXITSTATUS(status), 4) << helper->transcript();
  EXPECT_EQ(limits(), kOriginals) << helper->transcript();
}

// ---- Durable restore across processes: SIGKILL, two processes on one GPU ------------------------

class DurableLimitsProcess : public PowerLimitGuardProcess {
 protected:
  std::unique_ptr<Helper> start_setting(const std::string& name, const std::string& limit) {
    auto helper =
        std::make_unique<Helper>(std::vector<std::string>{CHASE_GUARD_HELPER_PATH, "wait", limit},
                                 env_.directory() / (name + ".err"));
    EXPECT_TRUE(helper->wait_for_output("READY", kTimeout)) << helper->transcript();
    return helper;
  }

  void terminate(Helper& helper, int signal) {
    helper.send(signal);
    const int status = wait_status(helper);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == signal) << "status " << status << "\n"
                                                                   << helper.transcript();
  }

  testing::ProcessResult chase_limits(const std::vector<std::string>& args) {
    std::vector<std::string> argv{CHASE_CLI_PATH, "limits"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_process(argv);
  }
};

TEST_F(DurableLimitsProcess, TwoProcessesOnOneGpuEndAtTheOriginal) {
  auto a = start_setting("a", "0=200");  // A records 300, sets 200
  auto b = start_setting("b", "0=150");  // B finds A's record (original 300), sets 150
  ASSERT_EQ(limits()[0], 150);
  terminate(*a, SIGTERM);
  EXPECT_EQ(limits()[0], 150) << a->transcript();  // B still runs at its limit
  terminate(*b, SIGTERM);
  EXPECT_EQ(limits()[0], 300) << b->transcript();  // not A's 200, which B had found in force
}

TEST_F(DurableLimitsProcess, TwoProcessesOnOneGpuEndAtTheOriginalInTheOtherOrderToo) {
  auto a = start_setting("a", "0=200");
  auto b = start_setting("b", "0=150");
  terminate(*b, SIGTERM);
  EXPECT_EQ(limits()[0], 200) << b->transcript();  // A gets back the limit it set
  terminate(*a, SIGTERM);
  EXPECT_EQ(limits()[0], 300) << a->transcript();
}

TEST_F(DurableLimitsProcess, LimitsRestoreAfterSigkillPutsTheOriginalsBack) {
  auto helper = start("wait");
  terminate(*helper, SIGKILL);
  ASSERT_EQ(limits(), (std::vector<double>{150, 300, 200, 300}));  // SIGKILL cannot be caught

  const auto result = chase_limits({"restore"});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_EQ(limits(), kOriginals) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("restored to the limit before chase changed it"));
  const auto shown = chase_limits({"show", "--json"});
  EXPECT_EQ(nlohmann::json::parse(shown.out)["gpus"].size(), 0u) << shown.out;
  // Nothing left: a second restore has nothing to do.
  EXPECT_THAT(chase_limits({"restore"}).out, HasSubstr("no GPU power limit left changed"));
}

TEST_F(DurableLimitsProcess, TheNextRunAfterSigkillRestoresTheTrueOriginal) {
  auto killed = start("wait");
  terminate(*killed, SIGKILL);
  auto next = start_setting("next", "0=120");  // finds GPU 0 at the 150 W the killed run left
  terminate(*next, SIGTERM);
  EXPECT_EQ(limits()[0], 300) << next->transcript();  // the original, not the 150 W cap
  EXPECT_EQ(limits()[2], 200);  // the next run did not touch GPU 2: its record waits
  EXPECT_EQ(chase_limits({"restore"}).exit_code, 0);
  EXPECT_EQ(limits(), kOriginals);
}

TEST_F(DurableLimitsProcess, LimitsRestoreLeavesALimitSomeoneElseChanged) {
  auto helper = start("wait");
  terminate(*helper, SIGKILL);
  open_nvml()->set_power_limit_w(0, 250);  // an administrator, after the kill

  const auto result = chase_limits({"restore", "--json"});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_EQ(limits(), (std::vector<double>{250, 300, 300, 300})) << result.out;
  const auto report = nlohmann::json::parse(result.out);
  ASSERT_EQ(report["gpus"].size(), 2u) << result.out;
  for (const auto& gpu : report["gpus"]) {
    if (gpu["uuid"] == FakeNvmlEnvironment::standard_uuid(0)) {
      EXPECT_EQ(gpu["restored"], false);
      EXPECT_THAT(gpu["note"].get<std::string>(), HasSubstr("someone else"));
    } else {
      EXPECT_EQ(gpu["restored"], true);
    }
  }
}

TEST_F(DurableLimitsProcess, LimitsRestoreToDefaultIsExplicit) {
  auto config = FakeNvmlEnvironment::standard_config(kGpus);
  config["gpus"][0]["limit_w"] = 250;  // an administrator's cap below the 300 W default
  env_.write_config(config);
  auto helper = start_setting("capped", "0=150");
  terminate(*helper, SIGKILL);
  ASSERT_EQ(limits()[0], 150);
  const auto result = chase_limits({"restore", "--to-default"});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_EQ(limits()[0], 300) << result.out;  // the default, not the 250 W found before
}

TEST_F(DurableLimitsProcess, ADriverReloadMeanwhileIsNotOverwritten) {
  auto config = FakeNvmlEnvironment::standard_config(kGpus);
  for (auto& gpu : config["gpus"]) gpu["persistence_mode"] = false;
  config["gpus"][0]["limit_w"] = 250;
  env_.write_config(config);
  auto helper = start_setting("killed", "0=150");
  terminate(*helper, SIGKILL);
  const auto backend = open_nvml();  // this process's fake, to reload its driver
  env_.reload_driver();              // no persistence mode: the limit fell back to the default
  ASSERT_EQ(limits()[0], 300);
  const auto result = chase_limits({"restore"});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_EQ(limits()[0], 300) << result.out;  // left as the reload set it, and said so
  EXPECT_THAT(result.out, HasSubstr("driver reload"));
}

TEST_F(PowerLimitGuardProcess, SigquitRestoresThenKillsBySigquit) {
  expect_restored_then_killed_by(SIGQUIT);
}

// A fork()ed child restores nothing of its parent's: not at exit() ...
TEST_F(PowerLimitGuardProcess, AForkedChildsExitRestoresNothing) {
  auto helper = start("fork-exit");
  ASSERT_TRUE(helper->wait_for_output("CHILD EXITED", kTimeout)) << helper->transcript();
  EXPECT_EQ(limits(), (std::vector<double>{150, 300, 200, 300})) << "the parent still runs";
  helper->close_stdin();
  EXPECT_EQ(wait_status(*helper), 0) << helper->transcript();
  EXPECT_EQ(limits(), kOriginals) << "the parent's own exit restores";
}

// ... nor on a signal, of which it still dies.
TEST_F(PowerLimitGuardProcess, AForkedChildKilledByASignalRestoresNothingAndDies) {
  auto helper = start("fork-signal");
  ASSERT_TRUE(helper->wait_for_output("CHILD ", kTimeout)) << helper->transcript();
  ASSERT_TRUE(helper->wait_for_output("\n", kTimeout)) << helper->transcript();
  EXPECT_THAT(helper->output(), HasSubstr("CHILD KILLED BY " + std::to_string(SIGTERM)))
      << helper->transcript();
  EXPECT_EQ(limits(), (std::vector<double>{150, 300, 200, 300})) << "the parent still runs";
  helper->close_stdin();
  EXPECT_EQ(wait_status(*helper), 0) << helper->transcript();
  EXPECT_EQ(limits(), kOriginals);
}

// A second signal while the watcher restores ends the process at once (the restore here would
// take 30 s; the test's bound is 10 s).
TEST_F(PowerLimitGuardProcess, ASecondSignalWhileRestoringTerminatesAtOnce) {
  auto helper = start("slow-restore");
  helper->send(SIGTERM);
  ASSERT_TRUE(helper->wait_for_output("RESTORING", kTimeout)) << helper->transcript();
  helper->send(SIGINT);
  const int status = wait_status(*helper);
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status << "\n" << helper->transcript();
  EXPECT_THAT(WTERMSIG(status), ::testing::AnyOf(SIGTERM, SIGINT)) << helper->transcript();
}

// After every guard is gone the handler stays installed, but only passes the signal on.
TEST_F(PowerLimitGuardProcess, AfterEveryGuardIsGoneASignalStillKillsAsBefore) {
  for (int signal : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) {
    SCOPED_TRACE(signal);
    auto helper = start("gone");
    helper->close_stdin();
    ASSERT_TRUE(helper->wait_for_output("GONE", kTimeout)) << helper->transcript();
    EXPECT_EQ(limits(), kOriginals);
    helper->send(signal);
    const int status = wait_status(*helper);
    ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status << "\n" << helper->transcript();
    EXPECT_EQ(WTERMSIG(status), signal) << helper->transcript();
    EXPECT_EQ(limits(), kOriginals);
  }
}

}  // namespace
}  // namespace chase
