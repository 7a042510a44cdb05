// chase — command-line entry point.
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "chase/error.h"
#include "cli/commands.h"
#include "common/exit_status.h"
#include "common/text.h"

namespace {

// %E: the message with its control bytes escaped. Log messages quote files and services (a CSV
// cell, a provider's answer); none of that may drive the terminal.
class EscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const auto escaped =
        chase::escape_untrusted(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessage>();
  }
};

void configure_logging(const std::string& level) {
  // Diagnostics go to stderr so stdout stays clean for reports and JSON.
  auto logger = spdlog::stderr_color_mt("chase");
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<EscapedMessage>('E').set_pattern("chase: %l: %E");
  logger->set_formatter(std::move(formatter));
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

// The commands write their results through checked outputs (cli/output_file.h); this catches what
// else reached std::cout (help and version text), so `chase ... > /dev/full` never exits 0.
int checked_standard_output(int code) {
  std::cout.flush();
  if (std::cout.good() && std::fflush(stdout) == 0) return code;
  std::cerr << "chase: error: writing standard output failed: " << std::strerror(errno) << '\n';
  return code != 0 ? code : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chase: measure and cut the energy and carbon of GPU training"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(CHASE_VERSION));
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();

  int exit_code = 0;
  chase::cli::add_devices_command(app, exit_code);
  chase::cli::add_measure_command(app, exit_code);
  chase::cli::add_demo_command(app, exit_code);
  chase::cli::add_select_command(app, exit_code);
  chase::cli::add_forecast_command(app, exit_code);
  chase::cli::add_simulate_command(app, exit_code);
  chase::cli::add_limits_command(app, exit_code);
  chase::cli::add_run_command(app, exit_code);
  chase::cli::add_run_report_command(app, exit_code);
  chase::cli::add_serve_command(app, exit_code);
  app.parse_complete_callback([&] { configure_logging(log_level); });

  int code = exit_code;
  try {
    app.parse(argc, argv);
    code = exit_code;
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a bad command line is bad input, exit 2 like kInvalidArgument
    // (CLI11's own codes, 101-115, would make the same mistake exit differently per option).
    code = app.exit(e) == 0 ? 0 : 2;
  } catch (const chase::Error& e) {
    // Escaped here too, whatever built the message: it may quote a file or a service.
    std::cerr << "chase: error: " << chase::escape_untrusted(e.what()) << '\n';
    code = chase::exit_status_for(e.code());
  } catch (const std::exception& e) {
    std::cerr << "chase: internal error: " << chase::escape_untrusted(e.what()) << '\n';
    code = 1;
  }
  return checked_standard_output(code);
}
