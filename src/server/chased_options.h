// Internal (chased's command line): what `chased` adds to its serving options — the JSON --config
// file, its permission check, and the `chased token keygen|issue` subcommands.
//
// Contract: JsonConfig reads a JSON object whose keys are the long option names without "--"
// ({"socket": "/run/chased/chased.sock", "allow-control-gpus": "group:gpu", "no-state": true});
// options given on the command line win over the file; an unknown key, a nested object or a null
// is an error naming the key. check_config_file() refuses a config file that group or others may
// write (whoever writes it decides who controls the GPUs) with kPermissionDenied naming the file.
// The token subcommands print to stdout only what a script needs (the token), the rest to stderr.
//
// Thread safety: none needed (the command line is parsed once, on the main thread).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace chase::server {

class JsonConfig final : public CLI::Config {
 public:
  // `app`: whose options the keys must name (it must outlive this).
  explicit JsonConfig(const CLI::App& app) : app_(app) {}
  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

 private:
  const CLI::App& app_;
};

void check_config_file(const std::string& path);

// Adds "token" with its "keygen" and "issue" subcommands; `exit_code` receives their status.
CLI::App* add_token_commands(CLI::App& app, int& exit_code);

}  // namespace chase::server
