// Internal: the on-disk cache of provider responses.
//
// An entry is one response body, keyed by provider + endpoint + parameters (never a secret), stored
// as <dir>/<provider>-<64-bit FNV-1a of the key>.json holding {"key", "stored_at", "body"}. get()
// returns a body younger than the TTL asked for (the caller picks it per endpoint: long for a past
// that cannot change, short for latest values and forecasts). put() writes a temporary file in the
// same directory and renames it over the entry, so a crash leaves the old entry or the new one,
// never half of one. An unreadable or corrupt entry is ignored with a warning (and overwritten by
// the next put). put() also records when the entry expires (the TTL it is given), and creating a
// cache removes this provider's expired entries, so the directory does not grow without bound.
// Ages are read from the injected Clock's UTC time.
//
// Thread safety: get() and put() may run concurrently, also from several processes.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "chase/time.h"

namespace chase::detail {

class ProviderCache {
 public:
  // An empty `dir` makes a cache that stores nothing.
  ProviderCache(std::filesystem::path dir, std::string provider, std::shared_ptr<Clock> clock);

  bool enabled() const noexcept { return !dir_.empty(); }
  std::optional<std::string> get(const std::string& key, std::chrono::seconds ttl) const;
  void put(const std::string& key, const std::string& body, std::chrono::seconds ttl) const;
  // Removes this provider's entries whose TTL has passed; returns how many.
  std::size_t prune() const;
  std::filesystem::path path_for(const std::string& key) const;

 private:
  std::filesystem::path dir_;
  std::string provider_;
  std::shared_ptr<Clock> clock_;
};

}  // namespace chase::detail
