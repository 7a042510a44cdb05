#include "carbon/provider_cache.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "chase/error.h"
#include "common/bounded_input.h"

namespace chase::detail {

namespace {

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 14695981039346656037ULL;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

}  // namespace

ProviderCache::ProviderCache(std::filesystem::path dir, std::string provider,
                             std::shared_ptr<Clock> clock)
    : dir_(std::move(dir)), provider_(std::move(provider)), clock_(std::move(clock)) {
  if (!clock_) clock_ = system_clock();
  if (enabled()) prune();
}

std::size_t ProviderCache::prune() const {
  std::size_t removed = 0;
  std::error_code error;
  const std::string prefix = provider_ + "-";
  const UtcTime now = clock_->utc_now();
  for (auto it = std::filesystem::directory_iterator(dir_, error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix) || !name.ends_with(".json")) continue;
    std::string content;
    try {
      content = detail::read_bounded_file(it->path());
    } catch (const Error&) {
      continue;  // unreadable or past the input limit: get() warns about it
    }
    const auto entry = nlohmann::json::parse(content, nullptr, false);
    if (!entry.is_object() || !entry.contains("expires_at") || !entry["expires_at"].is_string()) {
      continue;  // corrupt or old: get() warns about it, the next put() replaces it
    }
    const auto expires = parse_utc_time(entry["expires_at"].get<std::string>());
    if (expires && *expires <= now) {
      std::error_code remove_error;
      if (std::filesystem::remove(it->path(), remove_error)) ++removed;
    }
  }
  return removed;
}

std::filesystem::path ProviderCache::path_for(const std::string& key) const {
  return dir_ / fmt::format("{}-{:016x}.json", provider_, fnv1a(key));
}

std::optional<std::string> ProviderCache::get(const std::string& key,
                                              std::chrono::seconds ttl) const {
  if (!enabled()) return std::nullopt;
  const auto path = path_for(key);
  std::error_code missing;
  if (!std::filesystem::exists(path, missing)) return std::nullopt;
  try {
    // Bounded: a cache entry past the input limit is treated as corrupt, not read into memory.
    const auto entry = nlohmann::json::parse(detail::read_bounded_file(path));
    const auto stored_at = parse_utc_time(entry.at("stored_at").get<std::string>());
    if (!stored_at) throw std::runtime_error("bad stored_at");
    if (entry.at("key").get<std::string>() != key) return std::nullopt;  // a hash collision
    const auto age = clock_->utc_now() - *stored_at;
    if (age < UtcTime::duration::zero() || age >= ttl) return std::nullopt;
    return entry.at("body").get<std::string>();
  } catch (const std::exception& e) {
    spdlog::warn("{}: ignoring the corrupt cache entry '{}' ({}); it will be fetched again",
                 provider_, path.string(), e.what());
    return std::nullopt;
  }
}

void ProviderCache::put(const std::string& key, const std::string& body,
                        std::chrono::seconds ttl) const {
  if (!enabled()) return;
  static std::atomic<unsigned> counter{0};
  const auto path = path_for(key);
  std::error_code error;
  std::filesystem::create_directories(dir_, error);
  const auto temp = dir_ / fmt::format(".{}.{}.{}.tmp", path.filename().string(), ::getpid(),
                                       counter.fetch_add(1));
  const UtcTime now = clock_->utc_now();
  const nlohmann::json entry = {{"key", key},
                                {"stored_at", format_utc_time(now)},
                                {"expires_at", format_utc_time(now + ttl)},
                                {"body", body}};
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << entry.dump();
    out.flush();
    if (!out) {
      spdlog::warn("{}: could not write the cache entry '{}'; carrying on without caching it",
                   provider_, temp.string());
      std::filesystem::remove(temp, error);
      return;
    }
  }
  std::filesystem::rename(temp, path, error);
  if (error) {
    spdlog::warn("{}: could not store the cache entry '{}' ({}); carrying on without it", provider_,
                 path.string(), error.message());
    std::filesystem::remove(temp, error);
  }
}

}  // namespace chase::detail
