// chase/coordinator.h — how the ranks (processes or threads) of a data-parallel job agree.
//
// Contract: every rank of a job calls the same collective operations in the same order, as they do
// for gradients. combine() returns, on every rank, the job's profiling window: the longest time of
// any rank (the job waits for its slowest GPU), the sum of the ranks' energies, and `failed` when
// any rank failed to measure. agree() returns rank 0's value on every rank, so floating-point noise
// or a late forecast on one rank can never make the ranks run different limits. A collective that
// not every rank reaches within the timeout (a rank died or stopped profiling) throws kUnavailable
// on the ranks that did; the group is unusable after that. The single-process coordinator (one rank
// driving all of a job's GPUs) returns its input. make_in_process_coordinators() gives n ranks that
// meet in one process (threads); chase/mpi_coordinator.h implements the same interface over MPI.
//
// Thread safety: each rank's Coordinator is used by that rank's thread; different ranks' objects
// may be used concurrently (that is the point).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

namespace chase {

class Coordinator {
 public:
  struct Window {
    double time_s = 0;
    double energy_j = 0;
    bool failed = false;
  };

  virtual ~Coordinator() = default;
  virtual std::size_t rank() const noexcept = 0;
  virtual std::size_t size() const noexcept = 0;
  virtual Window combine(const Window& local) = 0;
  virtual double agree(double value) = 0;
};

std::shared_ptr<Coordinator> make_single_process_coordinator();
std::vector<std::shared_ptr<Coordinator>> make_in_process_coordinators(
    std::size_t ranks, std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace chase
