// The PostgreSQL side of the store (contract: store/sql.h), over libpqxx. Built only when libpqxx
// is found (CHASE_HAVE_POSTGRESQL); otherwise opening a postgresql:// URL says so.
#include <fmt/format.h>

#include "chase/error.h"
#include "store/sql.h"

#ifdef CHASE_HAVE_POSTGRESQL
#include <optional>
#include <pqxx/pqxx>
#include <unordered_map>
#endif

namespace chase::store {

#ifdef CHASE_HAVE_POSTGRESQL
namespace {

// The URI without its password, for messages.
std::string redacted(const std::string& uri) {
  const auto scheme = uri.find("://");
  const auto at = uri.find('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return uri;
  const auto colon = uri.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.substr(0, colon) + ":***" + uri.substr(at);
}

class PostgresConnection final : public SqlConnection {
 public:
  explicit PostgresConnection(const std::string& uri) : location_(redacted(uri)) {
    try {
      connection_ = std::make_unique<pqxx::connection>(uri);
    } catch (const std::exception& e) {
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("cannot connect to the PostgreSQL store '{}': {}", location_,
                              trimmed(e.what())));
    }
  }

  std::string backend() const override { return "postgresql"; }
  std::string location() const override { return location_; }

  void begin() override {
    guarded("BEGIN", [&] { work_ = std::make_unique<pqxx::work>(*connection_); });
  }
  void commit() override {
    guarded("COMMIT", [&] {
      work_->commit();
      work_.reset();
    });
  }
  void rollback() noexcept override { work_.reset(); }  // a pqxx::work aborts when destroyed

  // Prepared once per connection (the store's statements are a fixed set), values sent apart from
  // the text: the server parses and plans each statement once instead of on every call.
  std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& values) override {
    return guarded(sql, [&] {
      const auto& name = prepared(sql);
      const auto texts = value_texts(values);
      std::vector<const char*> pointers;  // null: SQL NULL
      for (const auto& text : texts) pointers.push_back(text ? text->c_str() : nullptr);
      const auto params = pqxx::prepare::make_dynamic_params(pointers);
      if (work_) return rows(work_->exec_prepared(name, params));
      pqxx::nontransaction once(*connection_);
      return rows(once.exec_prepared(name, params));
    });
  }

  void execute_script(const std::string& sql) override {
    guarded(sql, [&] {
      if (work_) {
        work_->exec(sql);
      } else {
        pqxx::nontransaction once(*connection_);
        once.exec(sql);
      }
    });
  }

  // Advisory locks: they hold for jobs that have no row yet, and are released at commit.
  void lock_job(const std::string& job) override {
    query("SELECT pg_advisory_xact_lock(hashtext(?))", {"chase job " + job});
  }
  void lock_schema() override {
    query("SELECT pg_advisory_xact_lock(hashtext('chase schema'))", {});
  }
  bool has_table(const std::string& name) override {
    return !query("SELECT to_regclass(?)::text", {name}).front().is_null(0);
  }
  std::string identity_column() const override {
    return "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY";
  }

 private:
  static std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }

  // The statement's name on this connection, preparing it on first use with `?` turned into
  // PostgreSQL's numbered placeholders.
  const std::string& prepared(const std::string& sql) {
    if (const auto it = statements_.find(sql); it != statements_.end()) return it->second;
    std::string numbered;
    int next = 0;
    for (const char c : sql) {
      if (c == '?') {
        numbered += fmt::format("${}", ++next);
      } else {
        numbered += c;
      }
    }
    const auto name = fmt::format("chase_{}", statements_.size());
    connection_->prepare(name, numbered);
    return statements_.emplace(sql, name).first->second;
  }

  // Each value as the text PostgreSQL parses (a double as its shortest round-trip text: every bit
  // kept); none for NULL.
  static std::vector<std::optional<std::string>> value_texts(const std::vector<SqlValue>& values) {
    std::vector<std::optional<std::string>> texts;
    for (const auto& value : values) {
      if (std::holds_alternative<std::nullptr_t>(value)) {
        texts.emplace_back(std::nullopt);
      } else if (const auto* integer = std::get_if<std::int64_t>(&value)) {
        texts.emplace_back(std::to_string(*integer));
      } else if (const auto* real = std::get_if<double>(&value)) {
        texts.emplace_back(fmt::format("{}", *real));
      } else {
        texts.emplace_back(std::get<std::string>(value));
      }
    }
    return texts;
  }

  static std::vector<SqlRow> rows(const pqxx::result& result) {
    std::vector<SqlRow> out;
    for (const auto& row : result) {
      std::vector<std::optional<std::string>> cells;
      for (const auto& field : row) {
        if (field.is_null()) {
          cells.emplace_back(std::nullopt);
        } else {
          cells.emplace_back(std::string(field.c_str(), field.size()));
        }
      }
      out.emplace_back(std::move(cells));
    }
    return out;
  }

  template <typename Work>
  auto guarded(const std::string& sql, Work&& work) -> decltype(work()) {
    try {
      return work();
    } catch (const pqxx::broken_connection& e) {
      work_.reset();
      throw Error(ErrorCode::kUnavailable, fmt::format("the PostgreSQL store '{}' went away: {}",
                                                       location_, trimmed(e.what())));
    } catch (const pqxx::sql_error& e) {
      throw Error(ErrorCode::kInternal, fmt::format("PostgreSQL store '{}': {} (in: {})", location_,
                                                    trimmed(e.what()), sql.substr(0, 80)));
    }
  }

  std::string location_;
  std::unique_ptr<pqxx::connection> connection_;
  std::unique_ptr<pqxx::work> work_;
  std::unordered_map<std::string, std::string> statements_;  // SQL → prepared statement's name
};

}  // namespace

std::unique_ptr<SqlConnection> open_postgresql(const std::string& uri) {
  return std::make_unique<PostgresConnection>(uri);
}

#else

std::unique_ptr<SqlConnection> open_postgresql(const std::string&) {
  throw Error(ErrorCode::kUnavailable,
              "this chase was built without PostgreSQL (libpqxx-dev was not found); install it "
              "and rebuild, or use a sqlite:PATH store");
}

#endif

}  // namespace chase::store
