// Test helper: a throw-away PostgreSQL cluster (label real_server): initdb into a temporary folder,
// a server that listens only on a Unix socket in that folder (listen_addresses=''), stopped and
// removed by the destructor, even when the test fails. As root (CI) the server runs as `nobody`
// (PostgreSQL refuses root), via setpriv, in a folder that user owns. Tests skip when the server
// binaries are absent (available() is false, with why()).
#pragma once

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace chase::testing {

class PostgresCluster {
 public:
  PostgresCluster() {
    bin_ = find_bin();
    if (bin_.empty()) {
      why_ = "PostgreSQL server binaries (initdb, pg_ctl) not found in PATH or /usr/lib/postgresql";
      return;
    }
    std::string pattern = (std::filesystem::temp_directory_path() / "chase_pg_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      why_ = "mkdtemp failed";
      return;
    }
    dir_ = pattern;
    if (geteuid() == 0) {
      const passwd* nobody = getpwnam("nobody");
      if (nobody == nullptr || chown(dir_.c_str(), nobody->pw_uid, nobody->pw_gid) != 0) {
        why_ = "running as root and cannot hand the cluster folder to user nobody";
        return;
      }
      as_user_ =
          "setpriv --reuid=nobody --regid=" + std::to_string(nobody->pw_gid) + " --clear-groups ";
    }
    const auto data = dir_ / "data";
    // Two logs: initdb's is written by this process's shell, the server's by the server's user.
    const auto init_log = dir_ / "init.log";
    const auto log = dir_ / "server.log";
    if (!sh(as_user_ + bin_ + "/initdb -D " + data.string() +
            " -A trust -U chase --no-sync -E UTF8 > " + init_log.string() + " 2>&1")) {
      why_ = "initdb failed: " + slurp(init_log);
      return;
    }
    if (!sh(as_user_ + bin_ + "/pg_ctl -D " + data.string() + " -l " + log.string() +
            " -w -t 60 -o \"-c listen_addresses='' -k " + dir_.string() +
            " -c fsync=off -c max_connections=50\" start > /dev/null 2>&1")) {
      why_ = "the server did not start: " + slurp(log);
      return;
    }
    started_ = true;
  }
  ~PostgresCluster() {
    if (started_) {
      sh(as_user_ + bin_ + "/pg_ctl -D " + (dir_ / "data").string() +
         " -m immediate -w stop > /dev/null 2>&1");
    }
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  bool available() const { return started_; }
  const std::string& why() const { return why_; }
  // A libpq URI of `database` over the cluster's socket.
  std::string url(const std::string& database = "postgres") const {
    return "postgresql:///" + database + "?host=" + dir_.string() + "&user=chase";
  }

 private:
  static bool sh(const std::string& command) { return std::system(command.c_str()) == 0; }
  static std::string slurp(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  static std::string find_bin() {
    for (const char* dir : {"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
                            "/usr/lib/postgresql/17/bin", "/usr/local/bin", "/usr/bin"}) {
      if (std::filesystem::exists(std::filesystem::path(dir) / "initdb") &&
          std::filesystem::exists(std::filesystem::path(dir) / "pg_ctl")) {
        return dir;
      }
    }
    return {};
  }

  std::string bin_;
  std::filesystem::path dir_;
  std::string as_user_;
  std::string why_;
  bool started_ = false;
};

}  // namespace chase::testing
