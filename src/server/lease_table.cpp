// Lease bookkeeping (contract and rules: server/lease_table.h).
#include "server/lease_table.h"

#include <fmt/format.h>

#include <algorithm>

namespace chase::server {

std::string LeaseOwner::describe() const {
  return connection != 0 ? fmt::format("connection {}", connection)
                         : fmt::format("process {}", pid);
}

const Lease& LeaseTable::most_recent(const GpuLeases& gpu) {
  return *std::max_element(gpu.leases.begin(), gpu.leases.end(),
                           [](const Lease& a, const Lease& b) { return a.sequence < b.sequence; });
}

const Lease& LeaseTable::acquire(const LeaseOwner& owner, std::size_t gpu, double limit_w,
                                 double current_limit_w, unsigned uid) {
  auto [entry, first] = gpus_.try_emplace(gpu);
  GpuLeases& leases = entry->second;
  if (first) leases.original_w = current_limit_w;
  leases.applied_w = limit_w;
  auto existing = std::find_if(leases.leases.begin(), leases.leases.end(),
                               [&](const Lease& lease) { return lease.owner == owner; });
  if (existing == leases.leases.end()) {
    leases.leases.push_back({next_id_++, owner, gpu, limit_w, 0, uid});
    existing = std::prev(leases.leases.end());
  }
  existing->limit_w = limit_w;
  existing->sequence = next_sequence_++;
  existing->uid = uid;
  return *existing;
}

std::vector<LimitChange> LeaseTable::release(const LeaseOwner& owner,
                                             std::optional<std::size_t> gpu) {
  std::vector<LimitChange> changes;
  for (auto entry = gpus_.begin(); entry != gpus_.end();) {
    GpuLeases& leases = entry->second;
    const bool selected = !gpu || *gpu == entry->first;
    const auto removed =
        selected ? std::erase_if(leases.leases, [&](const Lease& l) { return l.owner == owner; })
                 : 0;
    if (removed == 0) {
      ++entry;
      continue;
    }
    if (leases.leases.empty()) {
      changes.push_back({entry->first, leases.original_w, leases.applied_w, true});
      entry = gpus_.erase(entry);
      continue;
    }
    const double next_w = most_recent(leases).limit_w;
    if (next_w != leases.applied_w) {
      changes.push_back({entry->first, next_w, leases.applied_w, false});
      leases.applied_w = next_w;
    }
    ++entry;
  }
  return changes;
}

std::vector<LimitChange> LeaseTable::release_all() {
  std::vector<LimitChange> changes;
  for (const auto& [gpu, leases] : gpus_) {
    changes.push_back({gpu, leases.original_w, leases.applied_w, true});
  }
  gpus_.clear();
  return changes;
}

std::optional<double> LeaseTable::original_w(std::size_t gpu) const {
  const auto entry = gpus_.find(gpu);
  return entry == gpus_.end() ? std::nullopt : std::optional(entry->second.original_w);
}

std::optional<double> LeaseTable::leased_w(std::size_t gpu) const {
  const auto entry = gpus_.find(gpu);
  return entry == gpus_.end() ? std::nullopt : std::optional(entry->second.applied_w);
}

std::size_t LeaseTable::count(std::size_t gpu) const {
  const auto entry = gpus_.find(gpu);
  return entry == gpus_.end() ? 0 : entry->second.leases.size();
}

std::size_t LeaseTable::size() const {
  std::size_t total = 0;
  for (const auto& [gpu, leases] : gpus_) total += leases.leases.size();
  return total;
}

std::vector<Lease> LeaseTable::leases() const {
  std::vector<Lease> all;
  for (const auto& [gpu, leases] : gpus_)
    all.insert(all.end(), leases.leases.begin(), leases.leases.end());
  return all;
}

std::vector<LeaseOwner> LeaseTable::process_owners() const {
  std::vector<LeaseOwner> owners;
  for (const auto& [gpu, leases] : gpus_) {
    for (const auto& lease : leases.leases) {
      if (lease.owner.connection == 0 &&
          std::find(owners.begin(), owners.end(), lease.owner) == owners.end()) {
        owners.push_back(lease.owner);
      }
    }
  }
  return owners;
}

}  // namespace chase::server
