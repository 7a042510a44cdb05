// chase/open_gpus.h — the GPUs of this machine, directly or through chased, as the environment
// says: the open path for programs (and the Python package) that should work unchanged without
// root on a node that runs the chase daemon (docs/DAEMON.md).
//
// Contract: open_gpus() returns open_daemon_gpus($CHASE_DAEMON) when CHASE_DAEMON is set and not
// empty (chase/daemon_client.h: limits become leases of the daemon, restored when the backend or
// the process goes), else open_nvml(options). A daemon that does not answer is an error
// (kUnavailable naming the address), never a silent fall back to NVML: the user asked for the
// daemon by name, and NVML would then refuse every limit change without root. The CLI opens its
// GPUs the same way.
//
// Part of the daemon's client library (chase_server, linked by the CLI and the Python module),
// not of the four installed chase components.
//
// Thread safety: reentrant (reads the environment).
#pragma once

#include <memory>

#include "chase/gpu.h"
#include "chase/nvml.h"

namespace chase {

std::shared_ptr<GpuBackend> open_gpus(const NvmlOptions& options = {});

}  // namespace chase
