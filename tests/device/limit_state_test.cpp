// Tests of the durable power-limit record (chase/limit_state.h): where it lives, that concurrent
// writers (threads and processes) never corrupt it, and that a malformed file is kept aside.
#include "chase/limit_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chase/error.h"
#include "support/scoped_env.h"

namespace chase {
namespace {

using chase::testing::ScopedEnv;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

class LimitStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "chase_limit_state_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  // Adds one to the counter kept as the original limit of `uuid` (creating it at 1).
  static void increment(const LimitStateStore& store, const std::string& uuid) {
    store.update([&](std::vector<LimitRecord>& records) {
      for (auto& record : records) {
        if (record.uuid == uuid) {
          record.original_w += 1;
          return true;
        }
      }
      records.push_back({uuid, 1, 1, {}});
      return true;
    });
  }

  static double counter_of(const std::vector<LimitRecord>& records, const std::string& uuid) {
    for (const auto& record : records) {
      if (record.uuid == uuid) return record.original_w;
    }
    return 0;
  }

  fs::path root_;
};

TEST_F(LimitStateTest, DirectoryComesFromChaseStateDirThenXdgRuntimeDir) {
  {
    const ScopedEnv state("CHASE_STATE_DIR", (root_ / "explicit").string());
    const ScopedEnv runtime("XDG_RUNTIME_DIR", (root_ / "runtime").string());
    EXPECT_EQ(default_limit_state_directory(), root_ / "explicit");
  }
  {
    const ScopedEnv state("CHASE_STATE_DIR", std::nullopt);
    const ScopedEnv runtime("XDG_RUNTIME_DIR", (root_ / "runtime").string());
    EXPECT_EQ(default_limit_state_directory(), root_ / "runtime" / "chase");
  }
  {
    const ScopedEnv state("CHASE_STATE_DIR", std::nullopt);
    const ScopedEnv runtime("XDG_RUNTIME_DIR", std::nullopt);
    std::string why;
    const auto directory = default_limit_state_directory(&why);
    if (::geteuid() == 0) {
      EXPECT_EQ(directory, fs::path("/run/chase"));
    } else {
      EXPECT_EQ(directory, std::nullopt);
      EXPECT_THAT(why, HasSubstr("CHASE_STATE_DIR"));
    }
  }
}

TEST_F(LimitStateTest, RecordsRoundTripWithTheirHolders) {
  const LimitStateStore store(root_ / "state");
  const LimitHolder me = this_process_holder(7, 150);
  store.update([&](std::vector<LimitRecord>& records) {
    records.push_back({"GPU-a", 300, 150, {me}});
    return true;
  });
  const auto records = store.read();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].uuid, "GPU-a");
  EXPECT_DOUBLE_EQ(records[0].original_w, 300);
  EXPECT_DOUBLE_EQ(records[0].last_set_w, 150);
  ASSERT_EQ(records[0].holders.size(), 1u);
  EXPECT_EQ(records[0].holders[0].pid, ::getpid());
  EXPECT_EQ(records[0].holders[0].guard, 7u);
  EXPECT_TRUE(holder_alive(records[0].holders[0]));
}

TEST_F(LimitStateTest, AnEndedProcessIsNotAliveNorIsAReusedPid) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  EXPECT_FALSE(holder_alive({child, 1, 0, 100}));
  LimitHolder reused = this_process_holder(0, 100);  // this PID, but another start time
  reused.start_time += 1;
  EXPECT_FALSE(holder_alive(reused));
}

TEST_F(LimitStateTest, ConcurrentThreadsNeverLoseAnUpdate) {
  const LimitStateStore store(root_ / "state");
  constexpr int kThreads = 6;
  constexpr int kUpdates = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&store, t] {
      // Every thread opens its own descriptor of the lock file, as separate processes do.
      for (int i = 0; i < kUpdates; ++i) {
        increment(store, "GPU-shared");
        increment(store, "GPU-" + std::to_string(t));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto records = store.read();
  EXPECT_EQ(counter_of(records, "GPU-shared"), kThreads * kUpdates);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(counter_of(records, "GPU-" + std::to_string(t)), kUpdates);
  }
}

TEST_F(LimitStateTest, ConcurrentProcessesNeverCorruptTheFile) {
  const fs::path directory = root_ / "state";
  constexpr int kProcesses = 4;
  constexpr int kUpdates = 25;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        const LimitStateStore store(directory);
        for (int i = 0; i < kUpdates; ++i) increment(store, "GPU-shared");
      } catch (...) {
        ::_exit(1);
      }
      ::_exit(0);
    }
    children.push_back(child);
  }
  for (const pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  EXPECT_EQ(counter_of(LimitStateStore(directory).read(), "GPU-shared"), kProcesses * kUpdates);
  for (const auto& entry : fs::directory_iterator(directory)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos)
        << "temporary file left behind: " << entry.path();
  }
}

TEST_F(LimitStateTest, AMalformedFileIsMovedAsideNotOverwritten) {
  const LimitStateStore store(root_ / "state");
  {
    std::ofstream out(store.state_file());
    out << "{\"gpus\": [ {\"uuid\": \n";
  }
  EXPECT_TRUE(store.read().empty());
  EXPECT_TRUE(fs::exists(fs::path(store.state_file()) += ".corrupt"));
}

TEST_F(LimitStateTest, AnUnusableDirectoryIsAClearError) {
  const fs::path file = root_ / "file";
  std::ofstream(file) << "x";
  try {
    LimitStateStore store(file / "state");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr((file / "state").string()));
    EXPECT_THAT(e.what(), HasSubstr("CHASE_STATE_DIR"));
  }
}

}  // namespace
}  // namespace chase
