// The SQLite side of the store (contract: store/sql.h): one connection to a file, in WAL mode, with
// a busy timeout so concurrent writers wait for each other instead of failing.
// Within one process (the threads of `chase serve`), the writers of one file queue on a mutex
// before BEGIN IMMEDIATE: SQLite's busy handler waits by sleeping (1 ms, 2 ms, 5 ms ... 100 ms),
// so threads that only wait on each other would sleep past the moment the lock is free, which is
// what made served decisions' p99 tens of ms. Other processes still meet the busy timeout. The WAL
// is checkpointed by a thread of its own instead of by whichever commit crosses the threshold,
// which would stall that decision for the whole copy (see Checkpointer).
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "chase/error.h"
#include "store/sql.h"

namespace chase::store {
namespace {

// A writer waits this long for another one's transaction before giving up: a decision is
// milliseconds, so only a stuck process holds the lock this long.
constexpr int kBusyTimeoutMs = 60'000;

// SQLite's own threshold: a checkpoint once the WAL holds this many pages (4 MiB at 4 KiB pages).
constexpr int kCheckpointPages = 1000;

// Copies the WAL back into the database file on a thread of its own when a commit asks for it.
// Passive: it copies what no reader still needs and never waits for a lock; writers wait for it
// only while it copies the few pages they wrote during its copy (see checkpoint()).
class Checkpointer {
 public:
  Checkpointer(std::string path, std::mutex& writer)
      : path_(std::move(path)), writer_(writer), owner_(getpid()) {}
  ~Checkpointer() {
    if (!thread_) return;
    if (getpid() != owner_) {
      (void)thread_.release();  // a forked child's copy: the thread lives only in the parent
      return;
    }
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_->join();
  }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  void request() {
    std::lock_guard lock(mutex_);
    requested_ = true;
    if (!thread_) thread_ = std::make_unique<std::thread>([this] { run(); });
    wake_.notify_one();
  }

 private:
  void run() {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      // Left to the commits past kInlineCheckpointPages, and to SQLite's checkpoint at close.
      sqlite3_close(db);
      return;
    }
    // A connection finds the file in WAL mode only once it read it; until then a checkpoint on
    // it does nothing.
    sqlite3_exec(db, "SELECT COUNT(*) FROM sqlite_master", nullptr, nullptr, nullptr);
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return requested_ || stopping_; });
      // A request is served even when stopping: a short-lived process (one `chase run`) that
      // asked must still checkpoint, or a stream of them would grow the WAL without end.
      if (!requested_) break;
      requested_ = false;
      lock.unlock();
      checkpoint(db);
      lock.lock();
    }
    lock.unlock();
    sqlite3_close(db);
  }

  // The WAL starts over from its beginning (instead of growing) only at a write that finds every
  // page of it copied. Writers that went on during the copy left a few pages behind (the copy
  // takes what was there when it began), so those are copied with this process's writers held
  // for that moment: a pause of a few pages and one sync, never a whole copy.
  void checkpoint(sqlite3* db) {
    int pages = 0;
    int copied = 0;
    sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &pages, &copied);
    if (pages <= 0) return;
    std::lock_guard writer(writer_);
    sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &pages, &copied);
  }

  std::string path_;
  std::mutex& writer_;
  pid_t owner_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool requested_ = false;
  bool stopping_ = false;
  std::unique_ptr<std::thread> thread_;
};

// What the connections of one process to one database file share.
struct SharedFile {
  explicit SharedFile(const std::string& path) : checkpointer(path, writer) {}
  std::mutex writer;  // held from BEGIN IMMEDIATE to COMMIT / ROLLBACK
  Checkpointer checkpointer;
};

// The file's shared state in this process, found by device and inode (two paths, one file). The
// process id is part of the key: a forked child must not take over its parent's mutexes.
std::shared_ptr<SharedFile> shared_file(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return std::make_shared<SharedFile>(path);
  using Key = std::tuple<dev_t, ino_t, pid_t>;
  static std::mutex mutex;
  static std::map<Key, std::weak_ptr<SharedFile>> files;
  std::lock_guard lock(mutex);
  auto& entry = files[Key{info.st_dev, info.st_ino, getpid()}];
  auto shared = entry.lock();
  if (!shared) {
    shared = std::make_shared<SharedFile>(path);
    entry = shared;
  }
  return shared;
}

// The checkpointer is a thread, and a starved thread (a loaded machine) can fall behind writers
// that go on back to back. Past this many pages the committing connection checkpoints itself,
// as SQLite does by default, so the WAL stays bounded whatever the scheduler does.
constexpr int kInlineCheckpointPages = 4 * kCheckpointPages;

int on_commit(void* file, sqlite3* db, const char* schema, int wal_pages) {
  if (wal_pages >= kInlineCheckpointPages) {
    // Still inside COMMIT, with this process's writers held: the WAL starts over after it.
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  } else if (wal_pages >= kCheckpointPages) {
    static_cast<SharedFile*>(file)->checkpointer.request();
  }
  return SQLITE_OK;
}

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
    file_ = shared_file(path_);
    sqlite3_wal_hook(db_, on_commit, file_.get());  // replaces SQLite's checkpoint at commit
  }
  ~SqliteConnection() override {
    for (auto& [sql, statement] : statements_) sqlite3_finalize(statement);
    sqlite3_close(db_);
  }
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  std::string backend() const override { return "sqlite"; }
  std::string location() const override { return path_; }

  void begin() override {
    std::unique_lock writer(file_->writer);
    execute_script("BEGIN IMMEDIATE");
    writer_ = std::move(writer);
  }
  void commit() override {
    execute_script("COMMIT");  // when it throws, the caller's rollback() lets the writer go
    if (writer_.owns_lock()) writer_.unlock();
  }
  void rollback() noexcept override {
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    if (writer_.owns_lock()) writer_.unlock();
  }

  std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& values) override {
    sqlite3_stmt* raw = prepared(sql);
    // Reset after use, whatever happens, so the statement holds no lock and is ready again.
    struct Reset {
      sqlite3_stmt* statement;
      ~Reset() {
        sqlite3_reset(statement);
        sqlite3_clear_bindings(statement);
      }
    } reset{raw};
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
  // Each statement is compiled once per connection (the store's statements are a fixed set).
  sqlite3_stmt* prepared(const std::string& sql) {
    if (const auto it = statements_.find(sql); it != statements_.end()) return it->second;
    sqlite3_stmt* raw = nullptr;
    check(sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                             SQLITE_PREPARE_PERSISTENT, &raw, nullptr),
          sql);
    statements_.emplace(sql, raw);
    return raw;
  }

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
  std::shared_ptr<SharedFile> file_;
  std::unique_lock<std::mutex> writer_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
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
