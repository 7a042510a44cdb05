// chased's config file and token subcommands (contract: server/chased_options.h).
#include "server/chased_options.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chase/error.h"
#include "chase/time.h"
#include "common/exit_status.h"
#include "common/text.h"
#include "server/access_policy.h"
#include "server/token.h"

namespace chase::server {
namespace {

using json = nlohmann::json;

// Scopes a token may carry: chased's capabilities and chase serve's recurring-store rights.
constexpr std::string_view kKnownScopes[] = {"read-gpus", "control-gpus", "read-cpus",
                                             "recurring:read", "recurring:write"};

std::string config_value(const std::string& key, const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number()) return value.dump();
  throw CLI::ConversionError(
      fmt::format("--config: the value of \"{}\" must be a string, a number or true/false",
                  escape_untrusted(key, 60)));
}

std::vector<std::string> parse_scopes(const std::string& text) {
  std::vector<std::string> scopes;
  std::istringstream list(text);
  std::string scope;
  while (std::getline(list, scope, ',')) {
    if (scope.empty()) continue;
    if (std::find(std::begin(kKnownScopes), std::end(kKnownScopes), scope) ==
        std::end(kKnownScopes)) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("--scope '{}': unknown scope; give a comma-separated list of "
                              "read-gpus, control-gpus, read-cpus (chased) or recurring:read, "
                              "recurring:write (chase serve)",
                              escape_untrusted(scope, 60)));
    }
    if (std::find(scopes.begin(), scopes.end(), scope) == scopes.end()) scopes.push_back(scope);
  }
  if (scopes.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "--scope: give at least one scope, e.g. read-gpus");
  }
  return scopes;
}

struct IssueOptions {
  std::string key;
  std::string subject;
  std::string scopes;
  std::string ttl = "8h";
};

int issue(const IssueOptions& options) {
  const TokenKey key = TokenKey::load(options.key);
  TokenClaims claims;
  claims.subject = options.subject;
  claims.scopes = parse_scopes(options.scopes);
  claims.issued_at = unix_now();
  claims.expires_at = claims.issued_at + parse_duration_option(options.ttl, "--ttl").count();
  std::cout << key.issue(claims) << std::endl;
  std::cerr << fmt::format("chased: token for '{}' ({}) valid until {}\n", claims.subject,
                           fmt::join(claims.scopes, ","),
                           format_utc_time(UtcTime(std::chrono::seconds(claims.expires_at))));
  return 0;
}

// Runs a subcommand's action, turning a chase::Error into its message and the exit status every
// chase program gives it (2 bad input, 77 permission, 69 unavailable, else 1).
template <typename Action>
int report_errors(Action action) {
  try {
    return action();
  } catch (const Error& e) {
    std::cerr << "chased: " << e.what() << '\n';
    return exit_status_for(e.code());
  }
}

}  // namespace

std::string JsonConfig::to_config(const CLI::App* app, bool default_also, bool, std::string) const {
  json config = json::object();
  for (const CLI::Option* option : app->get_options()) {
    if (option->get_lnames().empty() || !option->get_configurable()) continue;
    const auto& name = option->get_lnames().front();
    if (option->count() > 0) {
      config[name] = option->as<std::string>();
    } else if (default_also && !option->get_default_str().empty()) {
      config[name] = option->get_default_str();
    }
  }
  return config.dump(2) + "\n";
}

std::vector<CLI::ConfigItem> JsonConfig::from_config(std::istream& input) const {
  const std::string text{std::istreambuf_iterator<char>(input), std::istreambuf_iterator<char>()};
  const json config = json::parse(text, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    throw CLI::ConversionError(
        "--config: the file must hold one JSON object whose keys are long option names, e.g. "
        "{\"socket\": \"/run/chased/chased.sock\"}");
  }
  std::vector<CLI::ConfigItem> parsed;
  for (const auto& [key, value] : config.items()) {
    if (key.empty() || key.starts_with("-") || app_.get_option_no_throw("--" + key) == nullptr) {
      throw CLI::ConfigError(fmt::format(
          "--config: \"{}\" is not an option of chased; keys are the long option names without "
          "the dashes, e.g. \"socket\", \"allow-control-gpus\" (chased --help lists them)",
          escape_untrusted(key, 60)));
    }
    CLI::ConfigItem item;
    item.name = key;
    item.inputs.push_back(config_value(key, value));
    parsed.push_back(std::move(item));
  }
  return parsed;
}

void check_config_file(const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    throw Error(ErrorCode::kNotFound, fmt::format("--config '{}': {}", path, std::strerror(errno)));
  }
  if ((status.st_mode & 0022) != 0) {
    throw Error(ErrorCode::kPermissionDenied,
                fmt::format("--config '{}' has mode {:04o}: group or others may write it, and "
                            "whoever writes it decides who controls the GPUs; run `chmod go-w {}`",
                            path, status.st_mode & 07777, path));
  }
}

CLI::App* add_token_commands(CLI::App& app, int& exit_code) {
  auto* token = app.add_subcommand("token", "Signed bearer tokens for the TCP API (--listen)");
  token->require_subcommand(1);

  auto key_path = std::make_shared<std::string>();
  auto* keygen = token->add_subcommand(
      "keygen", "Create a new signing key (32 random bytes, a file of mode 0600)");
  keygen->add_option("--key", *key_path, "The key file to create (it must not exist)")->required();
  keygen->callback([key_path, &exit_code] {
    exit_code = report_errors([&] {
      TokenKey::generate().create_key_file(*key_path);
      std::cerr << fmt::format("chased: created token key '{}' (mode 0600)\n", *key_path);
      return 0;
    });
  });

  auto options = std::make_shared<IssueOptions>();
  auto* issue_cmd = token->add_subcommand("issue", "Issue a token; prints it on stdout");
  issue_cmd->add_option("--key", options->key, "The signing key (chased token keygen)")->required();
  issue_cmd->add_option("--subject", options->subject, "Whom the token is for (shown in the log)")
      ->required();
  issue_cmd
      ->add_option("--scope", options->scopes,
                   "Comma-separated: read-gpus, control-gpus, read-cpus (chased); "
                   "recurring:read, recurring:write (chase serve)")
      ->required();
  issue_cmd->add_option("--ttl", options->ttl, "How long it is valid, e.g. 30m, 8h, 7d")
      ->capture_default_str();
  issue_cmd->callback(
      [options, &exit_code] { exit_code = report_errors([&] { return issue(*options); }); });
  return token;
}

}  // namespace chase::server
