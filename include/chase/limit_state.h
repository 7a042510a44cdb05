// chase/limit_state.h — the durable record of the GPU power limits chase has changed, per GPU UUID,
// so a limit outlives neither a SIGKILLed process nor a second process on the same GPU.
//
// Contract: a LimitStateStore is a directory holding `limits.json` (the records) and `limits.lock`
// (an flock(2) lock). Every read-modify-write happens under the exclusive lock and is written to a
// temporary file renamed over `limits.json`, so concurrent writers (threads or processes) never
// corrupt it and a process killed mid-write leaves the previous version. A record says, for one
// GPU: the limit in force before any chase process changed it (`original_w`), the limit chase set
// last (`last_set_w`) and the processes (holders) that currently hold it changed. PowerLimitGuard
// writes a record before its first change and removes it when it restores; a record whose holders
// have all died (SIGKILL, OOM killer, preemption) is "abandoned": the next guard changing that GPU
// adopts its original, and restore_abandoned_limits() (`chase limits restore`) puts it back.
//
// The directory: $CHASE_STATE_DIR if set; else $XDG_RUNTIME_DIR/chase; else /run/chase when running
// as root; else none (default_limit_state_directory() says why). A malformed limits.json is moved
// aside to limits.json.corrupt (never silently overwritten) with an error in the log.
//
// Thread safety: every method may be called concurrently from any thread or process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chase/gpu.h"

namespace chase {

// One process (and one guard in it) holding a GPU's limit changed.
struct LimitHolder {
  long pid = 0;
  std::uint64_t start_time = 0;  // the process's start time (/proc/<pid>/stat), against PID reuse
  std::uint64_t guard = 0;       // which guard inside that process
  double set_w = 0;              // the limit this holder set last
};

struct LimitRecord {
  std::string uuid;
  double original_w = 0;  // the limit before any chase process changed it
  double last_set_w = 0;  // the limit chase set last (any holder)
  std::vector<LimitHolder> holders;
};

// Two limits are "the same" when they differ by less than this (drivers may round to whole W).
inline constexpr double kLimitTolerance_w = 0.5;

// The store's directory by the rules above; nullopt with `why_none` filled when there is none.
std::optional<std::filesystem::path> default_limit_state_directory(std::string* why_none = nullptr);

// This process, as a holder (guard number `guard`, limit `set_w`).
LimitHolder this_process_holder(std::uint64_t guard, double set_w);
// False once the holder's process has ended (or its PID now belongs to another process).
bool holder_alive(const LimitHolder& holder);
// A process's start time in clock ticks since boot (/proc/<pid>/stat field 22); 0 when unknown.
std::uint64_t process_start_time(long pid);

class LimitStateStore {
 public:
  // Creates the directory (mode 0700) when missing; throws kIo / kPermissionDenied naming it.
  explicit LimitStateStore(std::filesystem::path directory);

  const std::filesystem::path& directory() const noexcept { return directory_; }
  std::filesystem::path state_file() const { return directory_ / "limits.json"; }

  // Runs `edit` on the records under the exclusive lock and writes them back when it returns true.
  // Exceptions from `edit` propagate with nothing written.
  void update(const std::function<bool(std::vector<LimitRecord>&)>& edit) const;
  // The records now (under the lock).
  std::vector<LimitRecord> read() const;

 private:
  std::filesystem::path directory_;
};

enum class RestoreTarget {
  kOriginal,  // the limit in force before chase changed it (default)
  kDefault,   // the GPU's default limit (nvidia-smi's "Default Power Limit")
};

// What restore_abandoned_limits() did with one record.
struct AbandonedLimit {
  std::string uuid;
  std::string gpu;  // describe() of the GPU, empty when it is not visible to the backend
  double original_w = 0;
  double found_w = 0;     // the limit in force when checked
  double restored_w = 0;  // what it was set to (when `restored`)
  bool restored = false;
  std::string note;  // why not restored, or what happened
};

// Restores every abandoned record (no live holder) of the backend's GPUs: to the original (or the
// default with RestoreTarget::kDefault) when the limit is still the one chase set last, otherwise
// it leaves the limit alone and says so. Records of GPUs the backend does not see, and records
// still held by a live process, are kept. Throws only when the store cannot be read or written; a
// GPU that refuses the change is reported in its entry (note) and its record kept.
std::vector<AbandonedLimit> restore_abandoned_limits(
    GpuBackend& backend, const LimitStateStore& store,
    RestoreTarget target = RestoreTarget::kOriginal);

}  // namespace chase
