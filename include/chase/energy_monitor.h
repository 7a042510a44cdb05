// chase/energy_monitor.h — time and energy of named code windows, per GPU and per CPU zone.
//
// Contract: begin_window(name) starts a window, end_window(name) finishes it and returns its
// Measurement; any number of windows may be open at once, nested or overlapping, and a window can
// be cancelled. Opening a name that is open, or ending/cancelling one that is not, throws
// (kAlreadyExists / kNotFound) naming the window. A GPU with an energy counter is measured by the
// counter's difference (method kCounter). A GPU without one is measured by a background thread that
// samples its power every `polling_period` (≤ 100 ms) and integrates it with the trapezoid rule
// (kPolling); a window too short to hold a sample between its ends is estimated from the power at
// its two ends × Δt and marked kEstimate. CPU zones are measured by their RAPL counters, which the
// background thread also reads every `cpu_refresh_period` so counter wraparound is never missed.
//
// Resolution: a GPU's reading changes only every so often — the energy counter every 20–100 ms
// (EnergyMonitorOptions::counter_update_period, 100 ms by default: NVML does not say), a polled
// power every polling_period, and a 1-second-averaged power (GpuInfo::power_reading) lags by up to
// 1 s. Each GPU entry gives resolution_s, the shortest window measured to within about ±20 %
// (10 update periods: either end may be off by up to one period's energy), and below_resolution
// when the window is shorter: its energy is then a rough figure, never exact.
//
// Failures: begin_window() throws when a device cannot be read (nothing is lost yet), except a GPU
// the backend reports lost (kDeviceLost): one lost GPU never stops the others. end_window() never
// loses a window to one failing device: that device's entry carries the error text and NaN energy,
// the others are measured, and Measurement::complete() is false. A GPU lost during a window keeps
// the energy measured up to its last good reading (every read is remembered — window ends, power
// samples and, with `counter_refresh_period`, periodic counter reads): its entry has the error,
// that energy and `lost_after_s`, the part of the window it covers. Once lost, a GPU stays lost
// for the monitor: later windows report it with NaN energy without calling the backend again.
// Unhealthy GPUs (GpuInfo::state) are left out of "all GPUs"; selecting one explicitly throws the
// GPU's problem. An energy counter that went backwards during the window (reset by a driver
// reload, or wrapped) is a failure too. A CPU zone that fails during the window is reported with
// its energy up to its last good reading inside the window (`partial`; the background thread
// reads CPU zones every cpu_refresh_period) and that energy counts in the totals.
//
// With `csv_log` set, every finished window is appended (and flushed) to a CSV file whose columns
// extend the Zeus monitor-log format: start_time (UTC, Unix seconds), window_name, elapsed_time,
// gpu<i>_energy..., cpu<p>_package_energy / cpu<p>_dram_energy... (J); a zone of part of a package
// is cpu<p>_<part>_package_energy (e.g. cpu0_die1_package_energy). The log is opened, and a
// new log's header written, by the constructor (which throws kIo when either fails, before anything
// is measured); a window that cannot be appended later (a full disk) is still returned, with
// Measurement::log_error saying why, never lost to the log.
//
// Thread safety: all methods may be called concurrently from several threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chase/cpu.h"
#include "chase/gpu.h"
#include "chase/time.h"

namespace chase {

enum class EnergyMethod {
  kCounter,   // hardware energy counter difference
  kPolling,   // integrated power samples (trapezoid)
  kEstimate,  // too few samples: mean of the end powers × elapsed time
};
std::string_view to_string(EnergyMethod method) noexcept;

struct GpuEnergy {
  std::size_t index = 0;  // backend GPU index
  std::string name;
  double energy_j = 0;  // NaN when `error` is set, unless lost_after_s is
  EnergyMethod method = EnergyMethod::kCounter;
  PowerReading power_reading = PowerReading::kInstant;  // the power polled (polling, estimate)
  double resolution_s = 0;        // the shortest window measured to within about ±20 %
  bool below_resolution = false;  // this window was shorter than resolution_s
  std::string error;
  // Set when the GPU was lost during the window: energy_j covers only its first lost_after_s
  // seconds (up to the last good reading), and `error` says what happened.
  std::optional<double> lost_after_s;
};

struct CpuEnergy {
  std::size_t zone = 0;  // CpuBackend zone index
  std::size_t package = 0;
  std::string kind;      // "package" or "dram"
  std::string part;      // "die-1" on multi-die parts; empty for a whole package
  double energy_j = 0;   // NaN when `error` is set, unless `partial`
  bool partial = false;  // the zone failed: energy up to its last good reading in the window
  std::string error;
};

struct Measurement {
  std::string name;
  UtcTime start_utc;
  UtcTime end_utc;
  double time_s = 0;
  std::vector<GpuEnergy> gpus;
  std::vector<CpuEnergy> cpus;
  // Why this window is missing from EnergyMonitorOptions::csv_log; empty when logged or no log.
  std::string log_error;

  // Sums over the devices that were measured (entries with an error are left out, except the
  // energy a lost GPU used before it was lost and partial CPU zones' energy up to their failure).
  double gpu_energy_j() const;
  double cpu_energy_j() const;
  double total_energy_j() const { return gpu_energy_j() + cpu_energy_j(); }
  // True when no device failed.
  bool complete() const;
  // True when some GPU's window was shorter than its resolution_s.
  bool below_resolution() const;
};

struct EnergyMonitorOptions {
  // Backend GPU indices to measure; empty: all of them.
  std::vector<std::size_t> gpus;
  // Measure every GPU by power polling, even those with an energy counter (to validate one path
  // against the other on real hardware).
  bool force_polling = false;
  // Power sampling period for GPUs without an energy counter: (0, 100] ms.
  std::chrono::milliseconds polling_period{50};
  // How often a GPU energy counter advances (20–100 ms on current GPUs; NVML does not report it):
  // sets the counter path's resolution_s. Must be positive.
  std::chrono::milliseconds counter_update_period{100};
  // How often the background thread reads CPU counters to follow their wraparound.
  std::chrono::milliseconds cpu_refresh_period{1000};
  // How often the background thread reads GPU energy counters while a window is open, so a GPU
  // lost mid-window is reported with its energy up to at most this long before the loss; 0: never
  // (a lost GPU then keeps the energy up to the last read of any window).
  std::chrono::milliseconds counter_refresh_period{0};
  // Append finished windows to this CSV file; empty: no log.
  std::filesystem::path csv_log;
  // Time source; null: the system clock.
  std::shared_ptr<Clock> clock;
};

class EnergyMonitor {
 public:
  // Either backend may be null (no GPUs / no CPU measurement).
  EnergyMonitor(std::shared_ptr<GpuBackend> gpus, std::shared_ptr<CpuBackend> cpus,
                EnergyMonitorOptions options = {});
  ~EnergyMonitor();
  EnergyMonitor(const EnergyMonitor&) = delete;
  EnergyMonitor& operator=(const EnergyMonitor&) = delete;

  void begin_window(std::string_view name);
  Measurement end_window(std::string_view name);
  void cancel_window(std::string_view name);
  bool is_window_open(std::string_view name) const;
  std::vector<std::string> open_windows() const;

  // The backend GPU indices this monitor measures, in report order.
  const std::vector<std::size_t>& monitored_gpus() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chase
