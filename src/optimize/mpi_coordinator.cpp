// The Coordinator over MPI, with timeouts built from non-blocking collectives (contract:
// chase/mpi_coordinator.h).
#include "chase/mpi_coordinator.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <map>
#include <thread>

#include "chase/error.h"
#include "common/text.h"

// The C API only: Open MPI's deprecated C++ bindings do not build cleanly with -Wold-style-cast.
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

namespace chase {
namespace {

// Set once a collective of any coordinator timed out: MPI_Finalize would then wait for the peer
// that never came, so the session leaves MPI unfinalised.
std::atomic<bool> g_collective_broke{false};

// Polling a pending collective: spin (yielding) for the first stretch, where a healthy round
// completes in tens of µs, then sleep in growing steps up to 1 ms so a dead peer does not cost
// the survivors a core while they wait for the timeout.
constexpr auto kSpinFor = std::chrono::microseconds(2000);
constexpr auto kLongestSleep = std::chrono::microseconds(1000);

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(ErrorCode::kInternal, fmt::format("{} failed: {}", call, text));
}

std::string processor_name() {
  if (const char* simulated = std::getenv("CHASE_NODE_NAME"); simulated && *simulated) {
    return simulated;
  }
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  check_mpi(MPI_Get_processor_name(name, &length), "MPI_Get_processor_name");
  return std::string(name, static_cast<std::size_t>(length));
}

}  // namespace

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (initialised) return;
  int provided = 0;
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  initialised_here_ = true;
}

MpiSession::~MpiSession() {
  if (!initialised_here_ || g_collective_broke.load()) return;
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised) MPI_Finalize();
}

struct MpiCoordinator::State {
  MpiCoordinatorOptions options;
  MPI_Comm comm = MPI_COMM_NULL;
  std::size_t rank = 0;
  std::size_t size = 1;
  bool broken = false;
  std::string broken_because;
  NodeRanks node;

  // Waits for `requests` until the timeout; on timeout the coordinator breaks (see the header).
  void wait(MPI_Request* requests, int count, const char* what) {
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + options.timeout;
    auto pause = std::chrono::microseconds(10);
    while (true) {
      int done = 0;
      check_mpi(MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE), "MPI_Testall");
      if (done) return;
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) break;
      if (now - start < kSpinFor) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, kLongestSleep);
      }
    }
    broken = true;
    g_collective_broke = true;
    broken_because = fmt::format(
        "{} of {} MPI ranks did not complete within {} ms on rank {}: a rank died, hung or "
        "stopped calling chase",
        what, size, options.timeout.count(), rank);
    throw unavailable();
  }

  Error unavailable() const {
    return Error(ErrorCode::kUnavailable,
                 broken_because +
                     "; chase's communicator is unusable from now on (MPI cannot "
                     "cancel a collective): restore the limits, report and exit");
  }

  void check_usable() const {
    if (broken) throw unavailable();
  }

  std::vector<std::string> all_gather(const std::string& local) {
    check_usable();
    if (local.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      throw Error(ErrorCode::kInvalidArgument, "all_gather: value too long for MPI");
    }
    const int length = static_cast<int>(local.size());
    std::vector<int> lengths(size);
    MPI_Request request;
    check_mpi(MPI_Iallgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, comm, &request),
              "MPI_Iallgather");
    wait(&request, 1, "all_gather");
    std::vector<int> offsets(size);
    long long total = 0;
    for (std::size_t i = 0; i < size; ++i) {
      offsets[i] = static_cast<int>(total);
      total += lengths[i];
    }
    std::string joined(static_cast<std::size_t>(total), '\0');
    check_mpi(MPI_Iallgatherv(local.data(), length, MPI_CHAR, joined.data(), lengths.data(),
                              offsets.data(), MPI_CHAR, comm, &request),
              "MPI_Iallgatherv");
    wait(&request, 1, "all_gather");
    std::vector<std::string> values;
    for (std::size_t i = 0; i < size; ++i) {
      values.push_back(joined.substr(static_cast<std::size_t>(offsets[i]),
                                     static_cast<std::size_t>(lengths[i])));
    }
    return values;
  }

  // Nodes by name, numbered in the order of their lowest rank.
  void group_by_node() {
    node.node = processor_name();
    const auto names = all_gather(node.node);
    std::map<std::string, std::size_t> index_of;
    node.node_of_rank.clear();
    for (std::size_t r = 0; r < size; ++r) {
      const auto [it, added] = index_of.emplace(names[r], index_of.size());
      node.node_of_rank.push_back(it->second);
    }
    node.node_index = index_of.at(node.node);
    node.node_count = index_of.size();
    node.local_rank = 0;
    node.local_size = 0;
    for (std::size_t r = 0; r < size; ++r) {
      if (node.node_of_rank[r] != node.node_index) continue;
      if (r < rank) ++node.local_rank;
      ++node.local_size;
    }
  }
};

MpiCoordinator::MpiCoordinator(MpiCoordinatorOptions options) : state_(std::make_unique<State>()) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    throw Error(ErrorCode::kInvalidArgument,
                "MpiCoordinator: MPI is not initialised; create an MpiSession first");
  }
  if (options.timeout.count() <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "MpiCoordinator: the timeout must be positive");
  }
  state_->options = options;
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &state_->comm), "MPI_Comm_dup");
  int rank = 0, size = 1;
  MPI_Comm_rank(state_->comm, &rank);
  MPI_Comm_size(state_->comm, &size);
  state_->rank = static_cast<std::size_t>(rank);
  state_->size = static_cast<std::size_t>(size);
  state_->group_by_node();
}

MpiCoordinator::~MpiCoordinator() {
  if (!state_->broken && state_->comm != MPI_COMM_NULL) {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) MPI_Comm_free(&state_->comm);
  }
}

std::size_t MpiCoordinator::rank() const noexcept { return state_->rank; }
std::size_t MpiCoordinator::size() const noexcept { return state_->size; }
const NodeRanks& MpiCoordinator::node() const noexcept { return state_->node; }
bool MpiCoordinator::broken() const noexcept { return state_->broken; }

Coordinator::Window MpiCoordinator::combine(const Window& local) {
  state_->check_usable();
  double longest[2] = {local.time_s, local.failed ? 1.0 : 0.0};
  double energy = local.energy_j;
  double longest_out[2] = {0, 0};
  double energy_out = 0;
  MPI_Request requests[2];
  check_mpi(
      MPI_Iallreduce(longest, longest_out, 2, MPI_DOUBLE, MPI_MAX, state_->comm, &requests[0]),
      "MPI_Iallreduce");
  check_mpi(
      MPI_Iallreduce(&energy, &energy_out, 1, MPI_DOUBLE, MPI_SUM, state_->comm, &requests[1]),
      "MPI_Iallreduce");
  state_->wait(requests, 2, "combine");
  return Window{longest_out[0], energy_out, longest_out[1] != 0};
}

// Rank 0's value, as a sum to which the other ranks add 0 (exact: x + 0 == x). Not a broadcast:
// in a broadcast tree rank 0 and the ranks below live parents finish without waiting for a dead
// rank, so the loss would only show in some later collective; a reduction completes on no rank
// before every rank has joined it.
double MpiCoordinator::agree(double value) {
  state_->check_usable();
  const double contribution = state_->rank == 0 ? value : 0.0;
  double agreed = 0;
  MPI_Request request;
  check_mpi(MPI_Iallreduce(&contribution, &agreed, 1, MPI_DOUBLE, MPI_SUM, state_->comm, &request),
            "MPI_Iallreduce");
  state_->wait(&request, 1, "agree");
  return agreed;
}

std::vector<std::string> MpiCoordinator::all_gather(const std::string& local) {
  return state_->all_gather(local);
}

void MpiCoordinator::require_same(std::string_view what, const std::string& local) {
  const auto values = all_gather(local);
  for (std::size_t r = 1; r < values.size(); ++r) {
    if (values[r] == values[0]) continue;
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("the ranks disagree about {}: rank 0 has \"{}\" but rank {} has "
                    "\"{}\"; start every rank with the same options and GPUs",
                    what, escape_untrusted(values[0], 200), r, escape_untrusted(values[r], 200)));
  }
}

}  // namespace chase
