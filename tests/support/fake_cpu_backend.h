// Test double for chase::CpuBackend: zones whose cumulative energy the test sets directly.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "chase/cpu.h"
#include "chase/error.h"

namespace chase::testing {

class FakeCpuBackend : public CpuBackend {
 public:
  // One package zone and one DRAM zone per package.
  explicit FakeCpuBackend(std::size_t packages) {
    for (std::size_t p = 0; p < packages; ++p) {
      zones_.push_back({p, "package", "package-" + std::to_string(p), ""});
      zones_.push_back({p, "dram", "package-" + std::to_string(p) + "/dram", ""});
    }
    energy_.assign(zones_.size(), 0.0);
    fail_.assign(zones_.size(), false);
  }

  std::string_view backend_name() const noexcept override { return "fake"; }
  const std::vector<CpuZone>& zones() const noexcept override { return zones_; }
  double energy_j(std::size_t zone) override {
    std::lock_guard lock(mutex_);
    if (fail_.at(zone))
      throw Error(ErrorCode::kIo, "zone " + zones_[zone].label + ": injected failure");
    return energy_.at(zone);
  }

  void add_energy(std::size_t zone, double joules) {
    std::lock_guard lock(mutex_);
    energy_.at(zone) += joules;
  }
  void fail(std::size_t zone, bool fail) {
    std::lock_guard lock(mutex_);
    fail_.at(zone) = fail;
  }

 private:
  std::mutex mutex_;
  std::vector<CpuZone> zones_;
  std::vector<double> energy_;
  std::vector<bool> fail_;
};

}  // namespace chase::testing
