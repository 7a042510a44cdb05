// chase limits show|restore: the durable record of GPU power limits chase changed
// (chase/limit_state.h), and putting back the limits a killed chase process left lowered.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "chase/error.h"
#include "chase/limit_state.h"
#include "cli/commands.h"

namespace chase::cli {
namespace {

LimitStateStore open_store() {
  std::string why_none;
  const auto directory = default_limit_state_directory(&why_none);
  if (!directory) {
    throw Error(ErrorCode::kUnavailable,
                why_none +
                    ": set CHASE_STATE_DIR to the directory the chase run used, or run as "
                    "root (which uses /run/chase)");
  }
  return LimitStateStore(*directory);
}

nlohmann::json holders_json(const LimitRecord& record) {
  nlohmann::json holders = nlohmann::json::array();
  for (const auto& holder : record.holders) {
    holders.push_back(
        {{"pid", holder.pid}, {"set_w", holder.set_w}, {"alive", holder_alive(holder)}});
  }
  return holders;
}

int show(bool json) {
  const LimitStateStore store = open_store();
  const auto records = store.read();
  if (json) {
    nlohmann::json gpus = nlohmann::json::array();
    for (const auto& r : records) {
      gpus.push_back({{"uuid", r.uuid},
                      {"original_w", r.original_w},
                      {"last_set_w", r.last_set_w},
                      {"holders", holders_json(r)}});
    }
    std::cout << nlohmann::json{{"state_file", store.state_file().string()}, {"gpus", gpus}}.dump(2)
              << '\n';
    return 0;
  }
  std::cout << fmt::format("GPU power limits changed by chase ({}):\n",
                           store.state_file().string());
  if (records.empty()) std::cout << "  none\n";
  for (const auto& r : records) {
    std::string holders;
    for (const auto& h : r.holders) {
      holders += fmt::format(" pid {} ({})", h.pid, holder_alive(h) ? "running" : "ended");
    }
    std::cout << fmt::format("  {}: original {} W, set {} W, held by{}\n", r.uuid, r.original_w,
                             r.last_set_w, holders.empty() ? " nobody" : holders);
  }
  return 0;
}

int restore(bool to_default, bool json) {
  const LimitStateStore store = open_store();
  auto gpus = open_gpus();
  if (!gpus.backend) throw Error(ErrorCode::kUnavailable, gpus.note);
  const auto results = restore_abandoned_limits(
      *gpus.backend, store, to_default ? RestoreTarget::kDefault : RestoreTarget::kOriginal);
  bool all_settled = true;
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& r : results) {
    const bool failed = !r.restored && r.note.starts_with("not restored");
    all_settled = all_settled && !failed;
    entries.push_back({{"uuid", r.uuid},
                       {"gpu", r.gpu},
                       {"original_w", r.original_w},
                       {"found_w", r.found_w},
                       {"restored", r.restored},
                       {"restored_w", r.restored ? nlohmann::json(r.restored_w) : nullptr},
                       {"note", r.note}});
  }
  if (json) {
    std::cout
        << nlohmann::json{{"state_file", store.state_file().string()}, {"gpus", entries}}.dump(2)
        << '\n';
  } else if (results.empty()) {
    std::cout << "no GPU power limit left changed by an ended chase process\n";
  } else {
    for (const auto& r : results) {
      std::cout << fmt::format(
          "{}: {}{}\n", r.gpu, r.note,
          r.restored ? fmt::format(" ({} W → {} W)", r.found_w, r.restored_w) : "");
    }
  }
  return all_settled ? 0 : 1;
}

}  // namespace

void add_limits_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "limits", "The GPU power limits chase changed: show them, restore those a killed run left");
  cmd->require_subcommand(1);
  auto json = std::make_shared<bool>(false);
  auto to_default = std::make_shared<bool>(false);

  auto* show_cmd = cmd->add_subcommand("show", "List the recorded changes and their processes");
  show_cmd->add_flag("--json", *json, "Print JSON instead of text");
  show_cmd->callback([json, &exit_code] { exit_code = show(*json); });

  auto* restore_cmd = cmd->add_subcommand(
      "restore",
      "Restore the limits left changed by chase processes that ended without restoring them "
      "(SIGKILL, OOM killer, preemption); a limit someone else changed since is left alone");
  restore_cmd->add_flag("--to-default", *to_default,
                        "Restore the GPUs' default limits instead of the limits found before");
  restore_cmd->add_flag("--json", *json, "Print JSON instead of text");
  restore_cmd->callback(
      [json, to_default, &exit_code] { exit_code = restore(*to_default, *json); });
}

}  // namespace chase::cli
