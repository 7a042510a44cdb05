// chase/cpu.h — the CPU energy backend interface, and the RAPL (Linux powercap) implementation.
//
// Contract: a CpuBackend exposes a fixed list of energy zones: one "package" zone per CPU package
// (one per die on multi-die parts that report zones "package-N-die-M", or per CCD where a kernel
// names them so) and, where the hardware reports it, one "dram" zone per package (DRAM energy is
// not part of the package zone, so the zones add up without double counting; core/uncore sub-zones
// are inside the package and are therefore not listed, and neither are psys, which covers the whole
// platform, nor intel-rapl-mmio, which duplicates the package zones). energy_j() is cumulative and
// monotonic: the RAPL backend unrolls the counter's wraparound at max_energy_range_uj, which it can
// only see when it reads the counter at least once per wrap period (minutes at full load) — the
// EnergyMonitor's background thread does that while windows are open.
//
// open_rapl() reads <sysfs root>/class/powercap, with the sysfs root taken from $CHASE_SYSFS_ROOT
// (default /sys) unless RaplOptions says otherwise: the MSR zones intel-rapl:N (N in hex, as the
// kernel numbers them: intel-rapl:a follows intel-rapl:9) and the TPMI zones intel-rapl-tpmi:N of
// Xeon 6 (used for packages the MSR zones do not cover). A machine without RAPL gives a backend
// with no zones (not an error). An unreadable energy_uj (root-only since Linux 5.10) throws
// kPermissionDenied naming the file and how to grant access — never a silent zero. A zone that
// cannot be read for another reason (an I/O error, a malformed file) is skipped, and notes() says
// which and why; a max_energy_range_uj of 0 (some firmware) is accepted, with a note: a wraparound
// then counts from 0, which may miss part of the energy of that interval.
//
// Thread safety: every method may be called concurrently.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace chase {

struct CpuZone {
  std::size_t package = 0;  // CPU package (socket) number
  std::string kind;         // "package" or "dram"
  std::string label;        // e.g. "package-0", "package-0/dram", "package-0-die-1"
  std::string part;         // a part of the package ("die-1", "ccd-3"); empty for the whole one
};

class CpuBackend {
 public:
  virtual ~CpuBackend() = default;
  virtual std::string_view backend_name() const noexcept = 0;
  virtual const std::vector<CpuZone>& zones() const noexcept = 0;
  // Cumulative energy of zone `zone` in J (monotonic: wraparound already unrolled).
  virtual double energy_j(std::size_t zone) = 0;
  // What the user should know about the zones found: zones skipped and why, unusual counters.
  virtual std::vector<std::string> notes() const { return {}; }
};

struct RaplOptions {
  // The sysfs root holding class/powercap; empty: $CHASE_SYSFS_ROOT, else /sys.
  std::filesystem::path sysfs_root;
};

std::unique_ptr<CpuBackend> open_rapl(const RaplOptions& options = {});

}  // namespace chase
