// chased's API over TCP (--listen with --token-key) over the fake NVML: bearer tokens with scopes
// and expiry, leases that end with their TCP connection, the token subcommands, and the start-up
// refusals (no key, a key others may read, a config file others may write).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "chase/daemon_client.h"
#include "chase/error.h"
#include "server/chased_fixture.h"
#include "server/token.h"
#include "support/scoped_env.h"

#ifndef CHASED_CLIENT_HELPER_PATH
#error "CHASED_CLIENT_HELPER_PATH must name tests/server/chased_client_helper"
#endif

namespace chase::testing {
namespace {

using namespace std::chrono_literals;
using server::TokenClaims;
using server::TokenKey;

constexpr const char* kSetLimitBody = R"({"power_limit_w": 150})";

// A new key file of mode 0600 in a new temporary directory.
std::filesystem::path new_key_file(const TokenKey& key) {
  std::string pattern = (std::filesystem::temp_directory_path() / "chased-key-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  const auto path = std::filesystem::path(pattern) / "token.key";
  key.create_key_file(path);
  return path;
}

// chased over the fake NVML with the API also on 127.0.0.1:<free port>, and its token key.
class TcpDaemon {
 public:
  explicit TcpDaemon(std::size_t gpus = 4)
      : key_(TokenKey::generate()),
        key_path_(new_key_file(key_)),
        daemon_(gpus, {"--listen", "127.0.0.1:0", "--token-key", key_path_.string()}) {
    std::smatch match;
    const std::string out = daemon_.process().stdout_so_far();
    if (std::regex_search(out, match, std::regex("API with tokens on 127\\.0\\.0\\.1:(\\d+)"))) {
      port_ = std::stoi(match[1]);
    }
    EXPECT_GT(port_, 0) << out;
  }
  ~TcpDaemon() { std::filesystem::remove_all(key_path_.parent_path()); }
  TcpDaemon(const TcpDaemon&) = delete;
  TcpDaemon& operator=(const TcpDaemon&) = delete;

  std::string token(std::vector<std::string> scopes, std::chrono::seconds ttl = 1h,
                    std::chrono::seconds age = 0s) const {
    const std::int64_t now = server::unix_now() - age.count();
    return key_.issue(TokenClaims{"test-client", std::move(scopes), now, now + ttl.count()});
  }
  int port() const { return port_; }
  std::string address() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  const std::filesystem::path& key_path() const { return key_path_; }
  ChasedDaemon& daemon() { return daemon_; }

 private:
  TokenKey key_;
  std::filesystem::path key_path_;
  ChasedDaemon daemon_;
  int port_ = 0;
};

TEST(ChasedTcp, AClientKilledWithSigkillHasItsLimitRestoredWithinTwoSeconds) {
  TcpDaemon tcp;
  ScopedEnv address("CHASE_DAEMON", tcp.address());
  ScopedEnv token("CHASE_DAEMON_TOKEN", tcp.token({"read-gpus", "control-gpus"}));
  Process client({CHASED_CLIENT_HELPER_PATH, "2", "150"});
  ASSERT_TRUE(client.wait_for_output("limit set", 10s)) << client.stderr_so_far();
  EXPECT_EQ(tcp.daemon().limit_w(2), 150.0);
  ::kill(client.pid(), SIGKILL);
  const auto restored = tcp.daemon().wait_for_limit(2, 300, 2s);
  ASSERT_TRUE(restored) << "GPU 2 is still at " << tcp.daemon().limit_w(2) << " W";
  RecordProperty("restore_ms", static_cast<int>(restored->count()));
}

TEST(ChasedTcp, ADroppedConnectionEndsItsLease) {
  TcpDaemon tcp;
  TcpConnection connection(tcp.port());
  ASSERT_TRUE(connection.connected());
  const auto reply =
      connection.request("POST", "/gpus/1/power_limit", tcp.token({"control-gpus"}), kSetLimitBody);
  ASSERT_EQ(status_of(reply), 200) << reply;
  EXPECT_EQ(tcp.daemon().limit_w(1), 150.0);
  connection.close();
  EXPECT_TRUE(tcp.daemon().wait_for_limit(1, 300, 2s)) << tcp.daemon().limit_w(1);
}

TEST(ChasedTcp, AWrongScopeIs403NamingThePermissionAndChangesNothing) {
  TcpDaemon tcp;
  TcpConnection connection(tcp.port());
  const std::string reader = tcp.token({"read-gpus"});
  const auto reply = connection.request("POST", "/gpus/0/power_limit", reader, kSetLimitBody);
  EXPECT_EQ(status_of(reply), 403) << reply;
  EXPECT_NE(reply.find("permission 'control-gpus' is missing"), std::string::npos) << reply;
  EXPECT_NE(reply.find("test-client"), std::string::npos) << reply;
  EXPECT_EQ(tcp.daemon().limit_w(0), 300.0);
  // The same token reads (its scope), on the same connection.
  EXPECT_EQ(status_of(connection.request("GET", "/gpus", reader)), 200);
  const auto cpus = connection.request("GET", "/cpus", reader);
  EXPECT_EQ(status_of(cpus), 403) << cpus;
  EXPECT_NE(cpus.find("read-cpus"), std::string::npos) << cpus;
}

TEST(ChasedTcp, AnExpiredTokenIs401AndChangesNothing) {
  TcpDaemon tcp;
  TcpConnection connection(tcp.port());
  const std::string expired = tcp.token({"control-gpus"}, 1h, 2h);
  const auto reply = connection.request("POST", "/gpus/0/power_limit", expired, kSetLimitBody);
  EXPECT_EQ(status_of(reply), 401) << reply;
  EXPECT_NE(reply.find("expired at"), std::string::npos) << reply;
  EXPECT_NE(reply.find("WWW-Authenticate: Bearer"), std::string::npos) << reply;
  EXPECT_EQ(tcp.daemon().limit_w(0), 300.0);
}

TEST(ChasedTcp, MissingMalformedOrForeignTokensAre401) {
  TcpDaemon tcp;
  TcpConnection connection(tcp.port());
  const std::string foreign = TokenKey::generate().issue(
      {"mallory", {"control-gpus"}, server::unix_now(), server::unix_now() + 60});
  std::string tampered = tcp.token({"read-gpus"});
  tampered[12] = tampered[12] == 'A' ? 'B' : 'A';
  for (const std::string& token : {std::string(), std::string("nonsense"), foreign, tampered}) {
    const auto reply = connection.request("POST", "/gpus/0/power_limit", token, kSetLimitBody);
    EXPECT_EQ(status_of(reply), 401) << token << "\n" << reply;
  }
  EXPECT_EQ(status_of(connection.request("GET", "/metrics", "")), 401);  // everything needs one
  EXPECT_EQ(tcp.daemon().limit_w(0), 300.0);
  EXPECT_EQ(status_of(connection.request("GET", "/health", tcp.token({"read-gpus"}))), 200);
}

TEST(ChasedTcp, TheLibraryWorksOverTcpWithATokenFile) {
  TcpDaemon tcp(2);
  const auto token_file = tcp.daemon().env().directory() / "token";
  std::ofstream(token_file) << tcp.token({"read-gpus", "control-gpus"}) << "\n";
  ScopedEnv token("CHASE_DAEMON_TOKEN", std::nullopt);
  ScopedEnv file("CHASE_DAEMON_TOKEN_FILE", token_file.string());
  auto gpus = open_daemon_gpus(tcp.address());
  ASSERT_EQ(gpus->gpu_count(), 2u);
  gpus->set_power_limit_w(1, 250);
  EXPECT_EQ(gpus->power_limit_w(1), 250.0);
  gpus.reset();
  EXPECT_TRUE(tcp.daemon().wait_for_limit(1, 300, 2s));
}

TEST(ChasedTcp, MeasurePowerLimitWorksOverTcp) {
  TcpDaemon tcp(1);
  ScopedEnv address("CHASE_DAEMON", tcp.address());
  ScopedEnv token("CHASE_DAEMON_TOKEN", tcp.token({"read-gpus", "control-gpus"}));
  const auto seen = tcp.daemon().env().directory() / "seen.json";
  const auto result =
      run_process({CHASE_CLI_PATH, "measure", "--no-cpu", "--power-limit", "175", "--", "/bin/sh",
                   "-c", "cat \"$FAKE_NVML_STATE\" > " + seen.string()},
                  60s);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::ifstream in(seen);
  EXPECT_EQ(nlohmann::json::parse(in)["gpus"][0]["limit_mw"], 175000);
  EXPECT_TRUE(tcp.daemon().wait_for_limit(0, 300, 2s));
}

TEST(ChasedTcp, AClientWithoutATokenGetsAClearError) {
  TcpDaemon tcp(1);
  ScopedEnv token("CHASE_DAEMON_TOKEN", std::nullopt);
  ScopedEnv file("CHASE_DAEMON_TOKEN_FILE", std::nullopt);
  try {
    open_daemon_gpus(tcp.address());
    ADD_FAILURE() << "opened without a token";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
    EXPECT_NE(std::string(e.what()).find("CHASE_DAEMON_TOKEN"), std::string::npos) << e.what();
  }
  try {
    open_daemon_gpus(tcp.address(), tcp.token({"read-cpus"}));
    ADD_FAILURE() << "a token without read-gpus listed the GPUs";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
    EXPECT_NE(std::string(e.what()).find("read-gpus"), std::string::npos) << e.what();
  }
}

// chased started with `args` (plus a socket in `dir`); its exit and stderr.
ProcessResult start_refused(const std::filesystem::path& dir, std::vector<std::string> args) {
  std::vector<std::string> argv = {CHASED_PATH, "--socket", (dir / "s.sock").string(),
                                   "--no-state"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, 20s);
}

TEST(ChasedTcp, ListenWithoutAKeyOrWithAReadableKeyIsRefusedAtStart) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  auto result = start_refused(env.directory(), {"--listen", "127.0.0.1:0"});
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_NE(result.err.find("--listen needs --token-key"), std::string::npos) << result.err;
  const auto key = env.directory() / "key";
  TokenKey::generate().create_key_file(key);
  ::chmod(key.c_str(), 0644);
  result = start_refused(env.directory(), {"--listen", "127.0.0.1:0", "--token-key", key.string()});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.err.find("chmod 600"), std::string::npos) << result.err;
}

TEST(ChasedTcp, AConfigFileOthersMayWriteIsRefusedAndAGoodOneApplies) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  const auto config = env.directory() / "chased.json";
  std::ofstream(config) << R"({"listen": "127.0.0.1:0"})";
  ::chmod(config.c_str(), 0666);
  auto result = start_refused(env.directory(), {"--config", config.string()});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.err.find("chmod go-w"), std::string::npos) << result.err;
  ::chmod(config.c_str(), 0644);
  // Its "listen" applies: without a token key that is refused, which shows it was read.
  result = start_refused(env.directory(), {"--config", config.string()});
  EXPECT_NE(result.err.find("--listen needs --token-key"), std::string::npos) << result.err;
  std::ofstream(config) << R"({"no-such-option": 1})";
  result = start_refused(env.directory(), {"--config", config.string()});
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_NE(result.err.find("\"no-such-option\" is not an option of chased"), std::string::npos)
      << result.err;

  // A full config: the daemon starts with the options it names.
  const auto key = env.directory() / "key";
  TokenKey::generate().create_key_file(key);
  std::ofstream(config) << nlohmann::json{
      {"socket", (env.directory() / "c.sock").string()},
      {"no-state", true},
      {"listen", "127.0.0.1:0"},
      {"token-key",
       key.string()}}.dump();
  Process daemon({CHASED_PATH, "--config", config.string()});
  EXPECT_TRUE(daemon.wait_for_output("API with tokens on 127.0.0.1:", 20s))
      << daemon.stderr_so_far();
  EXPECT_TRUE(std::filesystem::exists(env.directory() / "c.sock"));
}

TEST(ChasedTcp, TheTokenSubcommandsMakeAKeyAndIssueTokensItVerifies) {
  FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(1));
  const auto key = env.directory() / "made.key";
  auto result = run_process({CHASED_PATH, "token", "keygen", "--key", key.string()}, 20s);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  struct stat status {};
  ASSERT_EQ(::stat(key.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
  result = run_process({CHASED_PATH, "token", "keygen", "--key", key.string()}, 20s);
  EXPECT_NE(result.exit_code, 0);  // never overwrites a key
  EXPECT_NE(result.err.find("remove it first"), std::string::npos) << result.err;

  result = run_process({CHASED_PATH, "token", "issue", "--key", key.string(), "--subject", "bob",
                        "--scope", "read-gpus,control-gpus", "--ttl", "8h"},
                       20s);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::string token = result.out;
  while (!token.empty() && token.back() == '\n') token.pop_back();
  const auto claims = TokenKey::load(key).verify(token);
  EXPECT_EQ(claims.subject, "bob");
  EXPECT_EQ(claims.scopes, (std::vector<std::string>{"read-gpus", "control-gpus"}));
  EXPECT_EQ(claims.expires_at - claims.issued_at, 8 * 3600);

  result = run_process(
      {CHASED_PATH, "token", "issue", "--key", key.string(), "--subject", "bob", "--scope", "root"},
      20s);
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_NE(result.err.find("unknown scope"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace chase::testing
