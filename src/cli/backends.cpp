#include <fmt/format.h>

#include "chase/daemon_client.h"
#include "chase/error.h"
#include "chase/nvml.h"
#include "cli/commands.h"

namespace chase::cli {

OpenedGpus open_gpus() {
  // CHASE_DAEMON: the GPUs as chased serves them (limits without root). A daemon that does not
  // answer is an error, not "no GPUs": the user asked for it by name.
  if (const auto daemon = daemon_address_from_environment())
    return {open_daemon_gpus(*daemon), "", false};
  try {
    return {open_nvml(), "", false};
  } catch (const Error& e) {
    return {nullptr, e.what(), e.code() == ErrorCode::kDeviceLost};
  }
}

OpenedCpus open_cpus() {
  try {
    auto backend = open_rapl();
    if (backend->zones().empty() && !backend->notes().empty()) {
      std::string why = "no readable RAPL package zone";
      for (const auto& note : backend->notes()) why += "; " + note;
      return {nullptr, why};
    }
    if (backend->zones().empty()) {
      return {nullptr,
              "no RAPL energy counters on this machine (no /sys/class/powercap/intel-rapl "
              "package zones; virtual machines usually hide them)"};
    }
    return {std::move(backend), ""};
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kPermissionDenied && e.code() != ErrorCode::kUnavailable) throw;
    return {nullptr, e.what()};
  }
}

}  // namespace chase::cli
