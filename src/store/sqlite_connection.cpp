// The SQLite side of the store (contract: store/sql.h): one connection to a file, in WAL mode, with
// a busy timeout so concurrent writers wait for each other instead of failing.
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include "chase/error.h"
#include "store/sql.h"

namespace chase::store {
namespace {

// A writer waits this long for another one's transaction before giving up: a decision is
// milliseconds, so only a stuck process holds the lock this long.
constexpr int kBusyTimeoutMs = 60'000;

class SqliteConnection final : public SqlConnection {
 public:
  explicit SqliteConnection(std::string path) : path_(std::move(path)) {
    const int rc =
        sqlite3_open_v2(path_.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      const std::string why = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      db_ = nullptr;
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("cannot open the SQLite store '{}': {}", path_, why));
    }
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    try {
      enter_wal_mode();
      // NORMAL sync in WAL mode is durable against a process crash (what kill -9 does), and a
      // power loss can only lose the last commits, never corrupt.
      execute_script("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
    } catch (...) {
      sqlite3_close(db_);
      throw;
    }
  }
  ~SqliteConnection() override { sqlite3_close(db_); }
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  std::string backend() const override { return "sqlite"; }
  std::string location() const override { return path_; }

  void begin() override { execute_script("BEGIN IMMEDIATE"); }
  void commit() override { execute_script("COMMIT"); }
  void rollback() noexcept override {
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& values) override {
    sqlite3_stmt* raw = nullptr;
    check(sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr), sql);
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> statement(raw, sqlite3_finalize);
    for (std::size_t i = 0; i < values.size(); ++i) bind(raw, static_cast<int>(i + 1), values[i]);
    std::vector<SqlRow> rows;
    for (;;) {
      const int rc = sqlite3_step(raw);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) check(rc, sql);
      rows.emplace_back(row(raw));
    }
    return rows;
  }

  void execute_script(const std::string& sql) override {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
      const std::string why = message != nullptr ? message : sqlite3_errstr(rc);
      sqlite3_free(message);
      fail(rc, why, sql);
    }
  }

  void lock_job(const std::string&) override {}  // BEGIN IMMEDIATE excludes every other writer
  void lock_schema() override {}
  bool has_table(const std::string& name) override {
    return !query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", {name}).empty();
  }
  std::string identity_column() const override { return "INTEGER PRIMARY KEY AUTOINCREMENT"; }

 private:
  // WAL: readers never block the writer. Switching a new file to WAL needs an exclusive lock, and
  // SQLite answers SQLITE_BUSY at once, without calling the busy handler, when waiting could
  // deadlock (several processes opening one new store at the same moment do exactly that). So
  // this one statement is retried by hand, with the same patience as the busy timeout.
  void enter_wal_mode() {
    const std::string sql = "PRAGMA journal_mode=WAL";
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
    auto pause = std::chrono::microseconds(200);
    for (;;) {
      const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) return;
      const int primary = rc & 0xff;
      const bool contended = primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
      if (!contended || std::chrono::steady_clock::now() >= deadline) check(rc, sql);
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(50'000));
    }
  }

  static void bind(sqlite3_stmt* statement, int index, const SqlValue& value) {
    if (std::holds_alternative<std::nullptr_t>(value)) {
      sqlite3_bind_null(statement, index);
    } else if (const auto* integer = std::get_if<std::int64_t>(&value)) {
      sqlite3_bind_int64(statement, index, *integer);
    } else if (const auto* real = std::get_if<double>(&value)) {
      sqlite3_bind_double(statement, index, *real);
    } else {
      const auto& text = std::get<std::string>(value);
      sqlite3_bind_text(statement, index, text.data(), static_cast<int>(text.size()),
                        SQLITE_TRANSIENT);
    }
  }

  static std::vector<std::optional<std::string>> row(sqlite3_stmt* statement) {
    std::vector<std::optional<std::string>> cells;
    const int columns = sqlite3_column_count(statement);
    for (int c = 0; c < columns; ++c) {
      switch (sqlite3_column_type(statement, c)) {
        case SQLITE_NULL:
          cells.emplace_back(std::nullopt);
          break;
        case SQLITE_FLOAT:
          cells.emplace_back(fmt::format("{}", sqlite3_column_double(statement, c)));
          break;
        default: {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, c));
          cells.emplace_back(
              std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(statement, c))));
        }
      }
    }
    return cells;
  }

  void check(int rc, const std::string& sql) const {
    if (rc != SQLITE_OK) fail(rc, sqlite3_errmsg(db_), sql);
  }

  [[noreturn]] void fail(int rc, const std::string& why, const std::string& sql) const {
    const int primary = rc & 0xff;
    const auto code = primary == SQLITE_BUSY || primary == SQLITE_LOCKED ||
                              primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR ||
                              primary == SQLITE_FULL
                          ? ErrorCode::kUnavailable
                          : ErrorCode::kInternal;
    if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) {
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("the SQLite store '{}' is not a chase store (or is damaged): {}",
                              path_, why));
    }
    throw Error(code, fmt::format("SQLite store '{}': {} (in: {})", path_, why, sql.substr(0, 80)));
  }

  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace

std::string SqlRow::text(std::size_t column) const {
  const auto& cell = cells_.at(column);
  if (!cell) throw Error(ErrorCode::kInternal, "the store returned null where a value belongs");
  return *cell;
}

std::int64_t SqlRow::integer(std::size_t column) const {
  const auto cell = text(column);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  if (ec != std::errc() || end != cell.data() + cell.size()) {
    throw Error(ErrorCode::kInternal,
                fmt::format("the store holds '{}' where an integer belongs", cell));
  }
  return value;
}

double SqlRow::real(std::size_t column) const {
  const auto cell = text(column);
  if (cell == "Infinity" || cell == "inf") return INFINITY;
  if (cell == "-Infinity" || cell == "-inf") return -INFINITY;
  double value = 0;
  const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  if (ec != std::errc() || end != cell.data() + cell.size()) {
    throw Error(ErrorCode::kInternal,
                fmt::format("the store holds '{}' where a number belongs", cell));
  }
  return value;
}

std::unique_ptr<SqlConnection> open_sqlite(const std::string& path) {
  return std::make_unique<SqliteConnection>(path);
}

}  // namespace chase::store
