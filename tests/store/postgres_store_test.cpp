// The PostgreSQL recurring store against a throw-away cluster (label real_server): the same
// contract as SQLite (store_contract.h), concurrency and kill -9 included.
#include <gtest/gtest.h>

#include "store/sql.h"
#include "store/store_contract.h"
#include "support/postgres_cluster.h"

namespace chase::testing {
namespace {

// One cluster for the whole program (starting one takes seconds); a fresh database per test.
PostgresCluster* cluster = nullptr;

class PostgresStore : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (cluster == nullptr) cluster = new PostgresCluster();
  }
  void SetUp() override {
    if (!have_postgresql_store()) GTEST_SKIP() << "chase was built without libpqxx";
    if (!cluster->available()) GTEST_SKIP() << cluster->why();
    static int counter = 0;
    database_ = "chase_test_" + std::to_string(++counter);
    store::open_postgresql(cluster->url())->execute_script("CREATE DATABASE " + database_);
  }
  std::function<std::unique_ptr<RecurringStore>()> opener() const {
    return [url = cluster->url(database_)] { return open_recurring_store(url); };
  }
  RawSql raw_sql() const {
    return [url = cluster->url(database_)](const std::string& statements) {
      store::open_postgresql(url)->execute_script(statements);
    };
  }
  std::string database_;
};

TEST_F(PostgresStore, Lifecycle) { check_lifecycle(opener()); }
TEST_F(PostgresStore, DecisionsEqualTheInMemoryOptimizer) {
  check_decisions_match_memory(opener());
}
TEST_F(PostgresStore, EightConcurrentRunsRecordedOnceInSomeSerialOrder) {
  check_concurrent_runs(opener());
}
TEST_F(PostgresStore, LongLivedStoreCatchesUpWithOtherWriters) {
  check_long_lived_store_catches_up(opener());
}
TEST_F(PostgresStore, FailedDecisionTeachesTheCacheNothing) {
  check_failed_decision_teaches_nothing(
      opener(), raw_sql(),
      "CREATE FUNCTION refuse_runs() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "RAISE EXCEPTION 'refused by the test'; END $$; "
      "CREATE TRIGGER refuse_runs BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION "
      "refuse_runs();",
      "DROP TRIGGER refuse_runs ON runs;");
}
TEST_F(PostgresStore, EditedHistoryIsRebuilt) {
  check_edited_history_rebuilds(opener(), raw_sql());
}
TEST_F(PostgresStore, KilledOwnerIsRecordedAsKilledByTheNextRun) { check_killed_owner(opener()); }
TEST_F(PostgresStore, KillDuringWritesLeavesItConsistent) { check_kill_during_writes(opener()); }

TEST_F(PostgresStore, NewerSchemaIsRefused) {
  { opener()(); }
  store::open_postgresql(cluster->url(database_))
      ->execute_script("UPDATE chase_schema SET version = 99");
  const auto message = error_message([&] { opener()(); }, ErrorCode::kUnavailable);
  EXPECT_NE(message.find("schema version 99"), std::string::npos) << message;
}

TEST_F(PostgresStore, ConcurrentFirstOpensMigrateOnce) {
  std::vector<std::thread> threads;
  std::vector<std::string> failures(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      try {
        opener()();
      } catch (const std::exception& e) {
        failures[t] = e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& failure : failures) EXPECT_EQ(failure, "");
}

}  // namespace
}  // namespace chase::testing

// The cluster is stopped and removed after every test, even failed ones.
class StopCluster : public ::testing::Environment {
 public:
  void TearDown() override {
    delete chase::testing::cluster;
    chase::testing::cluster = nullptr;
  }
};
const auto* const stop_cluster = ::testing::AddGlobalTestEnvironment(new StopCluster);
