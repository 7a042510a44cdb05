// The lease rules of chased (server/lease_table.h, docs/DAEMON.md "Leases").
#include "server/lease_table.h"

#include <gtest/gtest.h>

namespace chase::server {
namespace {

const LeaseOwner kA{1, 0, 0};
const LeaseOwner kB{2, 0, 0};
const LeaseOwner kProcess{0, 4242, 99};

TEST(LeaseTable, TheLastLeaseToEndRestoresTheOriginal) {
  LeaseTable table;
  table.acquire(kA, 0, 200, 300, 1000);
  EXPECT_EQ(table.original_w(0), 300);
  const auto changes = table.release(kA);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].limit_w, 300);
  EXPECT_EQ(changes[0].expected_w, 200);
  EXPECT_TRUE(changes[0].to_original);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_FALSE(table.original_w(0));
}

TEST(LeaseTable, TheMostRecentLiveLeaseStands) {
  LeaseTable table;
  table.acquire(kA, 0, 200, 300, 1);
  table.acquire(kB, 0, 150, 200, 2);  // the original stays the one before the first lease
  EXPECT_EQ(table.original_w(0), 300);
  EXPECT_EQ(table.leased_w(0), 150);
  // B (the most recent) goes: A's 200 W comes back, not the original.
  auto changes = table.release(kB);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].limit_w, 200);
  EXPECT_EQ(changes[0].expected_w, 150);
  EXPECT_FALSE(changes[0].to_original);
  changes = table.release(kA);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].limit_w, 300);
}

TEST(LeaseTable, AnOlderLeaseEndingChangesNothing) {
  LeaseTable table;
  table.acquire(kA, 0, 200, 300, 1);
  table.acquire(kB, 0, 150, 200, 2);
  EXPECT_TRUE(table.release(kA).empty());  // B's 150 W still stands
  EXPECT_EQ(table.leased_w(0), 150);
}

TEST(LeaseTable, SettingAgainReplacesTheOwnersLeaseAndMakesItMostRecent) {
  LeaseTable table;
  table.acquire(kA, 0, 200, 300, 1);
  table.acquire(kB, 0, 150, 200, 2);
  table.acquire(kA, 0, 180, 150, 1);
  EXPECT_EQ(table.count(0), 2u);
  EXPECT_EQ(table.leased_w(0), 180);
  const auto changes = table.release(kA);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].limit_w, 150);
}

TEST(LeaseTable, ReleasesOnlyTheGpuAskedFor) {
  LeaseTable table;
  table.acquire(kA, 0, 200, 300, 1);
  table.acquire(kA, 1, 250, 300, 1);
  const auto changes = table.release(kA, 1);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].gpu, 1u);
  EXPECT_EQ(table.count(0), 1u);
}

TEST(LeaseTable, ReleaseAllRestoresEveryOriginal) {
  LeaseTable table;
  table.acquire(kA, 0, 200, 300, 1);
  table.acquire(kProcess, 2, 120, 250, 1);
  auto changes = table.release_all();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].limit_w, 300);
  EXPECT_EQ(changes[1].limit_w, 250);
  EXPECT_EQ(table.size(), 0u);
}

TEST(LeaseTable, ListsProcessOwnersOnce) {
  LeaseTable table;
  table.acquire(kProcess, 0, 200, 300, 1);
  table.acquire(kProcess, 1, 200, 300, 1);
  table.acquire(kA, 1, 210, 200, 1);
  ASSERT_EQ(table.process_owners().size(), 1u);
  EXPECT_EQ(table.process_owners()[0].pid, 4242);
}

}  // namespace
}  // namespace chase::server
