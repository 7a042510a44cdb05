// Internal (store): the few things the recurring store needs from a SQL database, so one store
// (sql_recurring_store.cpp) runs over SQLite and PostgreSQL alike. Statements use `?` placeholders;
// values travel typed (a double keeps every bit: SQLite binds it as REAL, PostgreSQL gets its
// shortest round-trip text), and every cell comes back as text or null (a REAL as its shortest
// round-trip text), parsed by SqlRow's accessors.
//
// Thread safety: a connection is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "chase/recurring_store.h"

namespace chase::store {

using SqlValue = std::variant<std::nullptr_t, std::int64_t, double, std::string>;

class SqlRow {
 public:
  explicit SqlRow(std::vector<std::optional<std::string>> cells) : cells_(std::move(cells)) {}
  bool is_null(std::size_t column) const { return !cells_.at(column).has_value(); }
  std::string text(std::size_t column) const;
  std::int64_t integer(std::size_t column) const;
  double real(std::size_t column) const;

 private:
  std::vector<std::optional<std::string>> cells_;
};

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  virtual std::string backend() const = 0;   // "sqlite" or "postgresql"
  virtual std::string location() const = 0;  // for messages: the file or the database, no password
  // A write transaction: SQLite BEGIN IMMEDIATE (waits for the writer lock up to a busy timeout);
  // PostgreSQL BEGIN (READ COMMITTED; lock_job serialises a job's writers).
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  virtual std::vector<SqlRow> query(const std::string& sql,
                                    const std::vector<SqlValue>& values = {}) = 0;
  // Several statements, no values (schema changes).
  virtual void execute_script(const std::string& sql) = 0;
  // Inside a transaction: hold the job's row until commit (no-op where begin() already excludes
  // every other writer).
  virtual void lock_job(const std::string& job) = 0;
  // Inside a transaction: hold the schema lock (migrations of concurrent openers take turns).
  virtual void lock_schema() = 0;
  virtual bool has_table(const std::string& name) = 0;
  // The DDL dialect: the type of an auto-numbered 64-bit key column.
  virtual std::string identity_column() const = 0;
};

std::unique_ptr<SqlConnection> open_sqlite(const std::string& path);
// Throws kUnavailable when chase was built without libpqxx.
std::unique_ptr<SqlConnection> open_postgresql(const std::string& uri);

// The recurring store over a connection (sql_recurring_store.cpp): migrates the schema at once.
std::unique_ptr<RecurringStore> make_sql_recurring_store(std::unique_ptr<SqlConnection> db);

// Runs `work` in one transaction: commits when it returns, rolls back when it throws.
template <typename Work>
auto in_transaction(SqlConnection& db, Work&& work) -> decltype(work()) {
  db.begin();
  try {
    if constexpr (std::is_void_v<decltype(work())>) {
      work();
      db.commit();
    } else {
      auto result = work();
      db.commit();
      return result;
    }
  } catch (...) {
    db.rollback();
    throw;
  }
}

}  // namespace chase::store
