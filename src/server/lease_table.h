// Internal (chased): the leases on GPU power limits — who changed which limit, what to put back
// when they go. Pure bookkeeping (no device calls), so the rules are tested on their own.
//
// The rules (docs/DAEMON.md, "Leases"):
//  - A lease belongs to an owner: a connection (the default: it ends when the connection closes,
//    which the kernel does when the client exits, crashes or is killed) or a process named in the
//    request (it ends when that process ends; the daemon checks every 200 ms).
//  - The first lease on a GPU records the limit in force before it (the original).
//  - An owner has at most one lease per GPU; setting again replaces its value and makes it the most
//    recent.
//  - The limit in force is the value of the most recent live lease. When a lease ends and others
//    remain, the most recent remaining one's value is applied; when the last one ends, the
//    original is restored.
//
// Thread safety: none; the daemon uses it from its event loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace chase::server {

struct LeaseOwner {
  std::uint64_t connection = 0;  // non-zero: the connection holds it
  long pid = 0;                  // non-zero (and connection 0): that process holds it
  std::uint64_t start_time = 0;  // the process's start time, against PID reuse

  bool operator==(const LeaseOwner&) const = default;
  std::string describe() const;  // "connection 7" or "process 1234"
};

struct Lease {
  std::uint64_t id = 0;
  LeaseOwner owner;
  std::size_t gpu = 0;
  double limit_w = 0;
  std::uint64_t sequence = 0;  // larger: more recent
  unsigned uid = 0;            // who asked
};

// A change the daemon must make on the device after leases ended.
struct LimitChange {
  std::size_t gpu = 0;
  double limit_w = 0;        // what to set
  double expected_w = 0;     // what the daemon set last (check the device still has it)
  bool to_original = false;  // the last lease ended: back to the original
};

class LeaseTable {
 public:
  // Records `owner`'s lease of `gpu` at `limit_w`; `current_limit_w` (the device's limit now) is
  // kept as the original when this is the GPU's first lease.
  const Lease& acquire(const LeaseOwner& owner, std::size_t gpu, double limit_w,
                       double current_limit_w, unsigned uid);
  // Ends `owner`'s leases (on one GPU, or all) and returns the changes to make.
  std::vector<LimitChange> release(const LeaseOwner& owner,
                                   std::optional<std::size_t> gpu = std::nullopt);
  // Ends every lease: each leased GPU goes back to its original.
  std::vector<LimitChange> release_all();

  std::optional<double> original_w(std::size_t gpu) const;
  // The limit the leases put in force on `gpu` (the most recent lease's), if leased.
  std::optional<double> leased_w(std::size_t gpu) const;
  std::size_t count(std::size_t gpu) const;
  std::size_t size() const;
  std::vector<Lease> leases() const;
  // Distinct process owners (for the liveness check).
  std::vector<LeaseOwner> process_owners() const;

 private:
  struct GpuLeases {
    double original_w = 0;
    double applied_w = 0;
    std::vector<Lease> leases;
  };
  static const Lease& most_recent(const GpuLeases& gpu);

  std::map<std::size_t, GpuLeases> gpus_;
  std::uint64_t next_id_ = 1;
  std::uint64_t next_sequence_ = 1;
};

}  // namespace chase::server
