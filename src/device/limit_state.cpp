// The durable power-limit records (contract: chase/limit_state.h).
//
// Layout of limits.json: {"version": 1, "gpus": [{"uuid", "original_w", "last_set_w",
// "holders": [{"pid", "start_time", "guard", "set_w"}]}]}. The lock is flock(2) on limits.lock, a
// file that is never removed (removing it would let two processes hold "the" lock on two inodes).
#include "chase/limit_state.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "chase/error.h"

namespace chase {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

Error io_error(const std::string& what, const fs::path& path, int error) {
  const ErrorCode code = error == EACCES || error == EPERM || error == EROFS
                             ? ErrorCode::kPermissionDenied
                             : ErrorCode::kIo;
  return Error(code, fmt::format("cannot {} '{}' (the record of GPU power limits chase changed): "
                                 "{}. Set CHASE_STATE_DIR to a directory this user may write, or "
                                 "run as the user that changed the limits.",
                                 what, path.string(), std::strerror(error)));
}

// Holds the exclusive flock on <dir>/limits.lock for its lifetime.
class StoreLock {
 public:
  explicit StoreLock(const fs::path& directory) {
    const fs::path path = directory / "limits.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw io_error("open the lock file", path, errno);
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd_);
      throw io_error("lock", path, error);
    }
  }
  ~StoreLock() { ::close(fd_); }  // closing releases the lock
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;

 private:
  int fd_ = -1;
};

LimitRecord parse_record(const json& entry) {
  LimitRecord record;
  record.uuid = entry.at("uuid").get<std::string>();
  record.original_w = entry.at("original_w").get<double>();
  record.last_set_w = entry.value("last_set_w", record.original_w);
  for (const auto& holder : entry.value("holders", json::array())) {
    record.holders.push_back(
        {holder.at("pid").get<long>(), holder.value("start_time", std::uint64_t{0}),
         holder.value("guard", std::uint64_t{0}), holder.at("set_w").get<double>()});
  }
  return record;
}

json to_json(const std::vector<LimitRecord>& records) {
  json gpus = json::array();
  for (const auto& record : records) {
    json holders = json::array();
    for (const auto& holder : record.holders) {
      holders.push_back({{"pid", holder.pid},
                         {"start_time", holder.start_time},
                         {"guard", holder.guard},
                         {"set_w", holder.set_w}});
    }
    gpus.push_back({{"uuid", record.uuid},
                    {"original_w", record.original_w},
                    {"last_set_w", record.last_set_w},
                    {"holders", holders}});
  }
  return {{"version", 1}, {"gpus", gpus}};
}

// Reads the records; the caller holds the lock. A malformed file is moved aside, not overwritten.
std::vector<LimitRecord> load(const fs::path& file) {
  std::error_code missing;
  if (!fs::exists(file, missing)) return {};
  std::ifstream in(file);
  if (!in) throw io_error("read", file, errno != 0 ? errno : EIO);
  try {
    const json state = json::parse(in);
    std::vector<LimitRecord> records;
    for (const auto& entry : state.at("gpus")) records.push_back(parse_record(entry));
    return records;
  } catch (const json::exception& e) {
    const fs::path aside = fs::path(file) += ".corrupt";
    std::error_code ignored;
    fs::rename(file, aside, ignored);
    spdlog::error(
        "the record of changed GPU power limits '{}' is malformed ({}); moved it to '{}' and "
        "started a new one: check the limits with `nvidia-smi -q -d POWER`",
        file.string(), e.what(), aside.string());
    return {};
  }
}

void save(const fs::path& file, const std::vector<LimitRecord>& records) {
  const fs::path temporary = fs::path(file) += fmt::format(".tmp.{}", ::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << to_json(records).dump(2) << '\n';
    if (!out.flush()) throw io_error("write", temporary, errno != 0 ? errno : EIO);
  }
  if (std::rename(temporary.c_str(), file.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    throw io_error("replace", file, error);
  }
}

const GpuInfo* find_gpu(const GpuBackend& backend, const std::string& uuid) {
  for (const auto& gpu : backend.gpus()) {
    if (gpu.uuid == uuid) return &gpu;
  }
  return nullptr;
}

bool any_alive(const LimitRecord& record) {
  for (const auto& holder : record.holders) {
    if (holder_alive(holder)) return true;
  }
  return false;
}

// Restores one abandoned record; true when the record is settled (remove it).
bool restore_one(GpuBackend& backend, const GpuInfo& gpu, const LimitRecord& record,
                 RestoreTarget target, AbandonedLimit& out) {
  out.gpu = describe(gpu);
  try {
    out.found_w = backend.power_limit_w(gpu.index);
    if (std::abs(out.found_w - record.last_set_w) >= kLimitTolerance_w) {
      out.note = fmt::format(
          "left at {} W: chase set {} W, so someone else (an administrator, another tool or a "
          "driver reload) changed it since; set it yourself if {} W is wrong",
          out.found_w, record.last_set_w, out.found_w);
      return true;
    }
    out.restored_w =
        target == RestoreTarget::kDefault ? gpu.default_power_limit_w : record.original_w;
    backend.set_power_limit_w(gpu.index, out.restored_w);
    out.restored = true;
    out.note = target == RestoreTarget::kDefault ? "restored to the default limit"
                                                 : "restored to the limit before chase changed it";
    return true;
  } catch (const std::exception& e) {
    out.note = fmt::format("not restored (the record is kept): {}", e.what());
    return false;
  }
}

}  // namespace

std::optional<fs::path> default_limit_state_directory(std::string* why_none) {
  if (const char* explicit_dir = environment("CHASE_STATE_DIR")) return fs::path(explicit_dir);
  if (const char* runtime = environment("XDG_RUNTIME_DIR")) return fs::path(runtime) / "chase";
  if (::geteuid() == 0) return fs::path("/run/chase");
  if (why_none != nullptr) {
    *why_none =
        "neither CHASE_STATE_DIR nor XDG_RUNTIME_DIR is set and this process is not root, so "
        "there is no directory for the record of changed GPU power limits";
  }
  return std::nullopt;
}

std::uint64_t process_start_time(long pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text;
  if (!std::getline(in, text)) return 0;
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last
  // ')'.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  for (int index = 3; fields >> field; ++index) {
    if (index == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

LimitHolder this_process_holder(std::uint64_t guard, double set_w) {
  static const std::uint64_t start_time = process_start_time(::getpid());
  return {static_cast<long>(::getpid()), start_time, guard, set_w};
}

bool holder_alive(const LimitHolder& holder) {
  if (holder.pid <= 0) return false;
  if (::kill(static_cast<pid_t>(holder.pid), 0) != 0 && errno == ESRCH) return false;
  if (holder.start_time == 0) return true;  // cannot tell PID reuse apart: assume alive
  const std::uint64_t now = process_start_time(holder.pid);
  return now == 0 || now == holder.start_time;
}

LimitStateStore::LimitStateStore(fs::path directory) : directory_(std::move(directory)) {
  if (::mkdir(directory_.c_str(), 0700) != 0 && errno != EEXIST) {
    throw io_error("create the directory", directory_, errno);
  }
}

void LimitStateStore::update(const std::function<bool(std::vector<LimitRecord>&)>& edit) const {
  StoreLock lock(directory_);
  std::vector<LimitRecord> records = load(state_file());
  if (edit(records)) save(state_file(), records);
}

std::vector<LimitRecord> LimitStateStore::read() const {
  StoreLock lock(directory_);
  return load(state_file());
}

std::vector<AbandonedLimit> restore_abandoned_limits(GpuBackend& backend,
                                                     const LimitStateStore& store,
                                                     RestoreTarget target) {
  std::vector<AbandonedLimit> results;
  store.update([&](std::vector<LimitRecord>& records) {
    bool changed = false;
    for (auto it = records.begin(); it != records.end();) {
      const GpuInfo* gpu = find_gpu(backend, it->uuid);
      if (gpu == nullptr || any_alive(*it)) {
        ++it;
        continue;
      }
      AbandonedLimit result;
      result.uuid = it->uuid;
      result.original_w = it->original_w;
      const bool settled = restore_one(backend, *gpu, *it, target, result);
      results.push_back(std::move(result));
      if (settled) {
        it = records.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    return changed;
  });
  return results;
}

}  // namespace chase
