// The SQLite recurring store: schema and migrations, the run lifecycle, concurrency and crashes
// (chase/recurring_store.h; the shared checks are in store_contract.h).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "server/token.h"
#include "store/http_store.h"
#include "store/sql.h"
#include "store/store_contract.h"

namespace chase::testing {
namespace {

class SqliteStore : public ::testing::Test {
 protected:
  std::string url() const { return "sqlite:" + (dir_.path() / "store.db").string(); }
  std::function<std::unique_ptr<RecurringStore>()> opener() const {
    return [url = url()] { return open_recurring_store(url); };
  }
  void sql(const std::string& statements) const {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_.path() / "store.db").c_str(), &db), SQLITE_OK);
    char* message = nullptr;
    const int rc = sqlite3_exec(db, statements.c_str(), nullptr, nullptr, &message);
    EXPECT_EQ(rc, SQLITE_OK) << (message ? message : "");
    sqlite3_free(message);
    sqlite3_close(db);
  }
  TempDir dir_;
};

TEST_F(SqliteStore, Lifecycle) { check_lifecycle(opener()); }
TEST_F(SqliteStore, DecisionsEqualTheInMemoryOptimizer) { check_decisions_match_memory(opener()); }
TEST_F(SqliteStore, EightConcurrentRunsRecordedOnceInSomeSerialOrder) {
  check_concurrent_runs(opener());
}
// Eight runs starting at once on a store that does not exist yet: each opens the new file and
// switches it to WAL at the same moment, which SQLite may refuse at once (without its busy
// handler) to avoid a deadlock. None may fail for it.
TEST_F(SqliteStore, EightRunsOpeningANewStoreAtOnceAllSucceed) {
  constexpr int kRuns = 8;
  for (int round = 0; round < 12; ++round) {
    const auto url = "sqlite:" + (dir_.path() / ("new-" + std::to_string(round) + ".db")).string();
    std::vector<std::string> failures(kRuns);
    std::vector<std::thread> threads;
    for (int t = 0; t < kRuns; ++t) {
      threads.emplace_back([&, t] {
        try {
          run_once(*open_recurring_store(url), "new");
        } catch (const std::exception& e) {
          failures[t] = e.what();
        }
      });
    }
    for (auto& thread : threads) thread.join();
    for (const auto& failure : failures) EXPECT_EQ(failure, "") << "round " << round;
    EXPECT_EQ(open_recurring_store(url)->runs("new").size(), static_cast<std::size_t>(kRuns));
  }
}
TEST_F(SqliteStore, LongLivedStoreCatchesUpWithOtherWriters) {
  check_long_lived_store_catches_up(opener());
}
TEST_F(SqliteStore, FailedDecisionTeachesTheCacheNothing) {
  check_failed_decision_teaches_nothing(
      opener(), [&](const std::string& statements) { sql(statements); },
      "CREATE TRIGGER refuse_runs BEFORE INSERT ON runs BEGIN "
      "SELECT RAISE(ABORT, 'refused by the test'); END;",
      "DROP TRIGGER refuse_runs;");
}
TEST_F(SqliteStore, EditedHistoryIsRebuilt) {
  check_edited_history_rebuilds(opener(), [&](const std::string& statements) { sql(statements); });
}
// The WAL is checkpointed by a thread of the store's own once it passes 1,000 pages (not by the
// commit that crosses the line), and by the committing connection past 4,000 pages should that
// thread fall behind: under back-to-back writes its file stays bounded instead of growing with
// every commit (~40 MB here without checkpoints).
TEST_F(SqliteStore, WalStaysBoundedUnderBackToBackWrites) {
  auto store = open_recurring_store(url());
  const auto wal = dir_.path() / "store.db-wal";
  std::uintmax_t largest = 0;
  for (int i = 0; i < 1000; ++i) {
    run_once(*store, "wal-" + std::to_string(i / 100));
    std::error_code ignored;
    largest = std::max(largest, std::filesystem::file_size(wal, ignored));
  }
  EXPECT_GT(largest, 1'000u * 4096u) << "the test wrote too little to need a checkpoint";
  EXPECT_LT(largest, 5'000u * 4096u) << "the WAL grew past the inline checkpoint's bound";
}
TEST_F(SqliteStore, KilledOwnerIsRecordedAsKilledByTheNextRun) { check_killed_owner(opener()); }
TEST_F(SqliteStore, KillDuringWritesLeavesItConsistent) {
  check_kill_during_writes(opener());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() / "store.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &statement, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(statement), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0)), "ok");
  sqlite3_finalize(statement);
  sqlite3_close(db);
}

TEST_F(SqliteStore, NewerSchemaIsRefusedAndLeftAlone) {
  { open_recurring_store(url()); }
  sql("UPDATE chase_schema SET version = 99");
  const auto message = error_message([&] { open_recurring_store(url()); }, ErrorCode::kUnavailable);
  EXPECT_NE(message.find("schema version 99"), std::string::npos) << message;
  EXPECT_NE(message.find("upgrade chase"), std::string::npos) << message;
}

// A store written by the first schema (no epochs, no profiles) is migrated in place, its jobs kept.
TEST_F(SqliteStore, MigratesTheFirstSchema) {
  {
    auto store = open_recurring_store(url());
    store->begin_run("old", toy_spec(), this_process());
  }
  sql("DROP TABLE epochs; DROP TABLE profiles; UPDATE chase_schema SET version = 1;");
  auto store = open_recurring_store(url());
  EXPECT_EQ(RecurringStore::schema_version(), 2);
  ASSERT_TRUE(store->job("old"));
  EXPECT_EQ(store->runs("old").size(), 1u);
  store->save_profile("old", 32, {{{250, 1, 2}}, 250, 1, 2});
  EXPECT_TRUE(store->profile("old", 32));
}

TEST_F(SqliteStore, BadUrlsSayWhatToWrite) {
  EXPECT_NE(error_message([] { open_recurring_store("mysql://x"); }, ErrorCode::kInvalidArgument)
                .find("sqlite:PATH"),
            std::string::npos);
  error_message([] { open_recurring_store("sqlite:"); }, ErrorCode::kInvalidArgument);
  error_message([] { open_recurring_store("sqlite:/nonexistent-dir/x/store.db"); },
                ErrorCode::kUnavailable);
  // A file that is not a database.
  { std::ofstream(dir_.path() / "text.db") << "this is not SQLite, just text\n"; }
  error_message([&] { open_recurring_store("sqlite:" + (dir_.path() / "text.db").string()); },
                ErrorCode::kUnavailable);
}

TEST_F(SqliteStore, RuledOutSizesAreObservedNotStarted) {
  auto store = open_recurring_store(url());
  const std::string job = "ruled";
  // One cheap recurrence (cost 100) sets the limit to 200.
  const auto first = store->begin_run(job, toy_spec(), this_process());
  store->end_run(first.run_id, {RunOutcome::kReached, 1, 1, 1, 100, 0});
  // Pruning next expects 16: its saved epoch costs 1000, over the limit, so it is ruled out.
  SavedProfile expensive{{{300, 10, 1000}}, 300, 10, 1000};  // η 0.5: 500 + 0.5·300·10 = 2000
  store->save_profile(job, 16, expensive);
  const auto next = store->begin_run(job, std::nullopt, this_process());
  EXPECT_EQ(next.ruled_out, 1u);
  EXPECT_NE(next.batch_size, 16u);
  const auto observations = store->load(job);
  ASSERT_EQ(observations.size(), 2u);
  EXPECT_FALSE(observations[1].started);
  EXPECT_EQ(observations[1].batch_size, 16u);
}

TEST(EpochRule, StopsAtTheTargetTheBoundOrMaxEpochs) {
  auto spec = toy_spec();
  RunDecision decision;
  decision.cost_limit = INFINITY;
  EXPECT_FALSE(judge_epoch(spec, decision, 3, 0.5, 10).stop);
  EXPECT_EQ(judge_epoch(spec, decision, 3, 0.95, 10).outcome, RunOutcome::kReached);
  EXPECT_EQ(judge_epoch(spec, decision, 50, 0.5, 10).outcome, RunOutcome::kFailed);
  spec.higher_is_better = false;  // a loss or perplexity
  EXPECT_EQ(judge_epoch(spec, decision, 3, 0.5, 10).outcome, RunOutcome::kReached);
  spec.higher_is_better = true;
  decision.cost_limit = 35;  // mean epoch 10: ⌊35 / 10⌋ = 3 whole epochs fit
  EXPECT_FALSE(judge_epoch(spec, decision, 2, 0.5, 20).stop);
  EXPECT_EQ(judge_epoch(spec, decision, 3, 0.5, 30).outcome, RunOutcome::kStoppedEarly);
  // With a saved profile its epoch prices the bound (η 0.5, 300 W: 0.5·4 + 0.5·300·0.1 = 17).
  decision.profile = SavedProfile{{}, 300, 0.1, 4};
  EXPECT_FALSE(judge_epoch(spec, decision, 1, 0.5, 30).stop);
  EXPECT_TRUE(judge_epoch(spec, decision, 2, 0.5, 30).stop);
}

}  // namespace
}  // namespace chase::testing

namespace chase::testing {
namespace {

// The signing key of the served store in these tests: 32 bytes of 0x5c.
const server::TokenKey& served_key() {
  static const server::TokenKey key = [] {
    std::array<unsigned char, server::TokenKey::kBytes> bytes{};
    bytes.fill(0x5c);
    return server::TokenKey(bytes);
  }();
  return key;
}

// A token of `key` for `scopes`, valid for an hour from `issued` seconds ago.
std::string served_token(std::vector<std::string> scopes = {"recurring:read", "recurring:write"},
                         const server::TokenKey& key = served_key(), std::int64_t issued = 0) {
  const auto now = server::unix_now() - issued;
  return key.issue({"store-test", std::move(scopes), now, now + 3600});
}

// The same contract through `chase serve`'s server and its HTTP client, in process.
class ServedStore : public ::testing::Test {
 protected:
  ServedStore() {
    store::ServerOptions options;
    options.token_key = std::make_shared<const server::TokenKey>(served_key());
    server_ = std::make_unique<store::RecurringStoreServer>(
        [url = "sqlite:" + (dir_.path() / "store.db").string()] {
          return open_recurring_store(url);
        },
        options);
    thread_ = std::thread([this] { server_->serve(); });
  }
  ~ServedStore() override {
    server_->stop();
    thread_.join();
  }
  std::function<std::unique_ptr<RecurringStore>()> opener() const {
    return [url = "http://127.0.0.1:" + std::to_string(server_->port())] {
      return open_recurring_store(url, served_token());
    };
  }
  TempDir dir_;
  std::unique_ptr<store::RecurringStoreServer> server_;
  std::thread thread_;
};

TEST_F(ServedStore, Lifecycle) { check_lifecycle(opener()); }
TEST_F(ServedStore, DecisionsEqualTheInMemoryOptimizer) { check_decisions_match_memory(opener()); }
TEST_F(ServedStore, EightConcurrentRunsRecordedOnceInSomeSerialOrder) {
  check_concurrent_runs(opener());
}
// (Killed owners through the server are tested with real processes in run_command_test.cpp: this
// process runs the server's threads, and forking a threaded process is not safe.)

TEST_F(ServedStore, WrongMissingOrExpiredTokensAreRefused) {
  const auto url = "http://127.0.0.1:" + std::to_string(server_->port());
  EXPECT_NE(error_message([&] { open_recurring_store(url, "not-the-token"); },
                          ErrorCode::kPermissionDenied)
                .find("refused the token"),
            std::string::npos);
  const auto other_key = server::TokenKey::generate();
  EXPECT_NE(
      error_message([&] { open_recurring_store(url, served_token({"recurring:read"}, other_key)); },
                    ErrorCode::kPermissionDenied)
          .find("signature does not match"),
      std::string::npos);
  EXPECT_NE(
      error_message(
          [&] { open_recurring_store(url, served_token({"recurring:read"}, served_key(), 7200)); },
          ErrorCode::kPermissionDenied)
          .find("expired at"),
      std::string::npos);
  unsetenv("CHASE_SERVER_TOKEN");
  unsetenv("CHASE_SERVER_TOKEN_FILE");
  error_message([&] { open_recurring_store(url); }, ErrorCode::kPermissionDenied);
}

TEST_F(ServedStore, AReadOnlyTokenReadsButCannotWrite) {
  const auto url = "http://127.0.0.1:" + std::to_string(server_->port());
  auto reader = open_recurring_store(url, served_token({"recurring:read"}));
  EXPECT_TRUE(reader->load("job").empty());
  const auto why = error_message(
      [&] {
        reader->append("job", {32, 1.0, true, true});
      },
      ErrorCode::kPermissionDenied);
  EXPECT_NE(why.find("permission 'recurring:write' is missing"), std::string::npos) << why;
  EXPECT_TRUE(reader->load("job").empty());  // the refused call changed nothing
  EXPECT_EQ(store::scope_for_call("begin_run"), "recurring:write");
  EXPECT_EQ(store::scope_for_call("runs"), "recurring:read");
}

TEST_F(ServedStore, TheTokenComesFromTheEnvironmentOrItsFile) {
  const auto url = "http://127.0.0.1:" + std::to_string(server_->port());
  setenv("CHASE_SERVER_TOKEN", served_token().c_str(), 1);
  EXPECT_TRUE(open_recurring_store(url)->load("job").empty());
  unsetenv("CHASE_SERVER_TOKEN");
  const auto file = dir_.path() / "token";
  std::ofstream(file) << served_token() << "\n";
  setenv("CHASE_SERVER_TOKEN_FILE", file.c_str(), 1);
  EXPECT_TRUE(open_recurring_store(url)->load("job").empty());
  setenv("CHASE_SERVER_TOKEN_FILE", (dir_.path() / "none").c_str(), 1);
  error_message([&] { open_recurring_store(url); }, ErrorCode::kNotFound);
  unsetenv("CHASE_SERVER_TOKEN_FILE");
}

}  // namespace
}  // namespace chase::testing
