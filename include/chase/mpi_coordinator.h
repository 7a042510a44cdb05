// chase/mpi_coordinator.h — the Coordinator (chase/coordinator.h) over MPI, for jobs whose ranks
// are processes on one or many nodes (docs/MULTINODE.md). Built into chase::control only when CMake
// finds MPI (find_package(chase) then sets chase_WITH_MPI; the program links MPI::MPI_CXX).
//
// Contract: an MpiCoordinator works on its own duplicate of MPI_COMM_WORLD (chase's collectives
// never mix with the application's). combine() is two MPI_Iallreduce (MAX of time and failure, SUM
// of energy) and agree() an MPI_Iallreduce to which only rank 0 contributes its value (a broadcast
// would let rank 0 finish without a dead rank), each waited for by polling until the timeout:
// MPI's blocking collectives wait forever for a dead or hung peer, so a collective that does not
// complete within `timeout` throws kUnavailable on the ranks that reached it, as the contract
// says. MPI cannot cancel a collective in flight, so after such a failure the coordinator is
// broken: every later call throws kUnavailable at once, its communicator and pending request are
// abandoned (never freed: that would need the dead peer), and an MpiSession does not call
// MPI_Finalize (which would wait for the peer); the process should restore its limits (the
// TrainingController's guard does, as it unwinds), report and exit non-zero, and mpirun then ends
// the job. The constructor is itself collective: every rank constructs its coordinator at the same
// point; it groups the ranks by node (CHASE_NODE_NAME, else the MPI processor name, so simulated
// nodes on one machine group like real ones), and the node leader is the node's lowest rank.
// all_gather() and require_same() are job-level collectives under the same timeout rule;
// require_same() throws kInvalidArgument naming the first rank whose value differs from rank 0's
// and both values, so ranks started with different GPUs or options fail at start, not later with
// a split decision.
//
// Thread safety: one thread per process uses the coordinator (MPI_THREAD_FUNNELED: the thread that
// created the MpiSession); the EnergyMonitor's own thread never calls MPI.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chase/coordinator.h"

namespace chase {

// Initialises MPI for the process unless something already did; finalises it on destruction when
// it initialised it and no collective of chase broke (see above). Not copyable.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

 private:
  bool initialised_here_ = false;
};

struct MpiCoordinatorOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
};

struct NodeRanks {
  std::string node;            // this rank's node name
  std::size_t node_index = 0;  // nodes numbered by their lowest rank
  std::size_t node_count = 1;
  std::size_t local_rank = 0;  // position among the node's ranks (by world rank)
  std::size_t local_size = 1;
  std::vector<std::size_t> node_of_rank;  // node_index of every world rank
  bool node_leader() const noexcept { return local_rank == 0; }
};

class MpiCoordinator final : public Coordinator {
 public:
  explicit MpiCoordinator(MpiCoordinatorOptions options = {});
  ~MpiCoordinator() override;
  MpiCoordinator(const MpiCoordinator&) = delete;
  MpiCoordinator& operator=(const MpiCoordinator&) = delete;

  std::size_t rank() const noexcept override;
  std::size_t size() const noexcept override;
  Window combine(const Window& local) override;
  double agree(double value) override;

  std::vector<std::string> all_gather(const std::string& local);
  void require_same(std::string_view what, const std::string& local);
  const NodeRanks& node() const noexcept;
  bool broken() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace chase
