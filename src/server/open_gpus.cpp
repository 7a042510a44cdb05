// The GPUs through chased when CHASE_DAEMON says so, else NVML (contract: chase/open_gpus.h).
#include "chase/open_gpus.h"

#include "chase/daemon_client.h"

namespace chase {

std::shared_ptr<GpuBackend> open_gpus(const NvmlOptions& options) {
  if (const auto daemon = daemon_address_from_environment()) return open_daemon_gpus(*daemon);
  return open_nvml(options);
}

}  // namespace chase
