// The RAPL (Linux powercap) CPU energy backend; the contract is in include/chase/cpu.h.
//
// Layout read (the sysfs root is /sys unless RaplOptions or $CHASE_SYSFS_ROOT say otherwise):
//   <root>/class/powercap/intel-rapl:N/{name,energy_uj,max_energy_range_uj}   top-level zones
//   <root>/class/powercap/intel-rapl:N/intel-rapl:N:M/                        sub-zones, nested
//   <root>/class/powercap/intel-rapl:N:M                                      sub-zones, top level
//   <root>/class/powercap/intel-rapl-tpmi:N[...]                              Xeon 6 (TPMI)
// N and M are hexadecimal (the kernel formats them with %x). Real sysfs has both sub-zone forms
// (the top-level one is a symlink); fake trees may have either. Zone names: "package-N",
// "package-N-die-M" (multi-die parts; any "package-N-<part>-M" is read the same way), "dram",
// "core", "uncore", "psys".
//
// energy_j() runs on the measurement hot path, so each energy_uj file is opened once and re-read
// with pread() at offset 0 (sysfs regenerates an attribute's text on every read from offset 0):
// one system call and no allocation per reading.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <tuple>
#include <utility>

#include "chase/cpu.h"
#include "chase/error.h"

namespace chase {
namespace {

namespace fs = std::filesystem;

// MSR zones first: where both interfaces cover a package, the MSR one is kept.
constexpr std::string_view kZoneDirPrefixes[] = {"intel-rapl:", "intel-rapl-tpmi:"};
constexpr std::string_view kPackageNamePrefix = "package-";

// Owns a POSIX file descriptor; move-only.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      close_fd();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { close_fd(); }

  int get() const noexcept { return fd_; }

 private:
  void close_fd() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

// ---- Error messages -------------------------------------------------------------------------

// Never advise making energy_uj world-readable: that reopens the Platypus side channel
// (CVE-2020-8694) the kernel closed in 5.10.
Error permission_error(const fs::path& file, const fs::path& powercap) {
  if (file.filename() == "energy_uj") {
    return Error(ErrorCode::kPermissionDenied,
                 fmt::format("cannot read {}: Permission denied. Since Linux 5.10 the RAPL energy "
                             "counters are readable by root only (a world-readable counter is a "
                             "side channel, CVE-2020-8694): run chase as root or through a "
                             "privileged measuring daemon, or give one trusted group read access "
                             "with a udev rule (docs/MEASUREMENT.md, \"RAPL without root\"); do "
                             "not make {}/*/energy_uj readable by everyone.",
                             file.string(), powercap.string()));
  }
  return Error(ErrorCode::kPermissionDenied,
               fmt::format("cannot read {}: Permission denied. This powercap file is normally "
                           "readable by everyone: check its permissions, or run as root.",
                           file.string()));
}

// The error for a failed open()/pread() of `file`, classified by errno.
Error read_error(const fs::path& file, int errno_value, const fs::path& powercap) {
  if (errno_value == EACCES || errno_value == EPERM) return permission_error(file, powercap);
  return Error(
      ErrorCode::kIo,
      fmt::format("cannot read {}: {}. Check that the RAPL powercap tree under {} is "
                  "intact (the sysfs root comes from RaplOptions::sysfs_root, else "
                  "$CHASE_SYSFS_ROOT, else /sys).",
                  file.string(), std::generic_category().message(errno_value), powercap.string()));
}

// `text` made printable and short for an error message.
std::string quoted_for_message(std::string_view text) {
  constexpr std::size_t kMaxShown = 40;
  std::string shown;
  for (const char c : text.substr(0, kMaxShown)) {
    if (c == '\n') {
      shown += "\\n";
    } else {
      shown += (c >= ' ' && c <= '~') ? c : '?';
    }
  }
  if (text.size() > kMaxShown) shown += "...";
  return "\"" + shown + "\"";
}

Error parse_error(const fs::path& file, std::string_view expected, std::string_view found) {
  return Error(ErrorCode::kParse,
               fmt::format("cannot parse {}: expected {} but found {}. The kernel's powercap "
                           "driver writes this file; check that the sysfs root "
                           "(RaplOptions::sysfs_root or $CHASE_SYSFS_ROOT) points at a real "
                           "powercap tree.",
                           file.string(), expected, quoted_for_message(found)));
}

Error listing_error(const fs::path& dir, const std::error_code& error) {
  return Error(ErrorCode::kIo, fmt::format("cannot list the directory {}: {}. Check that the "
                                           "RAPL powercap tree is intact and readable.",
                                           dir.string(), error.message()));
}

// ---- Reading sysfs files ----------------------------------------------------------------------

FileDescriptor open_for_reading(const fs::path& file, const fs::path& powercap) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);  // CLOEXEC: the CLI spawns children
  if (fd < 0) throw read_error(file, errno, powercap);
  return FileDescriptor(fd);
}

// Reads the start of an open file into `buffer`; returns the text read. Allocation-free.
std::string_view read_from_start(const FileDescriptor& fd, std::span<char> buffer,
                                 const fs::path& file, const fs::path& powercap) {
  for (;;) {
    const ssize_t count = ::pread(fd.get(), buffer.data(), buffer.size(), 0);
    if (count >= 0) return {buffer.data(), static_cast<std::size_t>(count)};
    if (errno != EINTR) throw read_error(file, errno, powercap);
  }
}

std::string_view without_trailing_newline(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  return text;
}

// `text` as a non-negative decimal integer (nothing else, no sign or spaces), or nullopt.
template <typename Integer>
std::optional<Integer> parse_integer(std::string_view text) {
  Integer value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
  return value;
}

// Reads a counter file (energy_uj, max_energy_range_uj): digits and a newline.
std::uint64_t read_counter(const FileDescriptor& fd, const fs::path& file,
                           const fs::path& powercap) {
  // 20 digits hold any 64-bit value; a buffer that fills up means the text is too long anyway.
  char buffer[32];
  const std::string_view text = read_from_start(fd, buffer, file, powercap);
  const auto value = text.size() < sizeof buffer
                         ? parse_integer<std::uint64_t>(without_trailing_newline(text))
                         : std::nullopt;
  if (!value) throw parse_error(file, "a non-negative integer (microjoules)", text);
  return *value;
}

// Reads a short text attribute such as `name`, without its trailing newline.
std::string read_attribute(const fs::path& file, const fs::path& powercap) {
  char buffer[256];
  const std::string_view text =
      read_from_start(open_for_reading(file, powercap), buffer, file, powercap);
  return std::string(without_trailing_newline(text));
}

// ---- Energy counters --------------------------------------------------------------------------

// One zone's energy_uj counter, with the wraparound unrolled since open.
class Counter {
 public:
  Counter(const fs::path& zone_dir, const fs::path& powercap)
      : energy_file_(zone_dir / "energy_uj"), fd_(open_for_reading(energy_file_, powercap)) {
    max_range_uj_ = read_max_range(zone_dir / "max_energy_range_uj", powercap);
    last_uj_ = read_checked(powercap);  // the baseline: energy counts from here
  }

  // Reads the counter and returns the energy since open in µJ.
  std::uint64_t update(const fs::path& powercap) {
    const std::uint64_t reading = read_checked(powercap);
    // A smaller reading means the counter passed max_energy_range_uj and restarted from 0; with an
    // unknown range (0), only the part since 0 can be counted.
    const std::uint64_t before_wrap = max_range_uj_ > 0 ? max_range_uj_ - last_uj_ : 0;
    total_uj_ += reading >= last_uj_ ? reading - last_uj_ : before_wrap + reading;
    last_uj_ = reading;
    return total_uj_;
  }

  bool range_known() const noexcept { return max_range_uj_ > 0; }

 private:
  static std::uint64_t read_max_range(const fs::path& file, const fs::path& powercap) {
    const FileDescriptor fd = open_for_reading(file, powercap);
    return read_counter(fd, file, powercap);  // 0: unknown (some firmware reports it so)
  }

  // A reading above the range would make the wraparound arithmetic meaningless: refuse it.
  std::uint64_t read_checked(const fs::path& powercap) const {
    const std::uint64_t reading = read_counter(fd_, energy_file_, powercap);
    if (max_range_uj_ > 0 && reading > max_range_uj_) {
      throw parse_error(
          energy_file_,
          fmt::format("a value no larger than max_energy_range_uj ({})", max_range_uj_),
          std::to_string(reading));
    }
    return reading;
  }

  fs::path energy_file_;  // kept for error messages
  FileDescriptor fd_;
  std::uint64_t max_range_uj_ = 0;  // where energy_uj wraps back to 0
  std::uint64_t last_uj_ = 0;       // the previous raw reading
  std::uint64_t total_uj_ = 0;      // energy since open
};

class RaplBackend final : public CpuBackend {
 public:
  RaplBackend(fs::path powercap, std::vector<CpuZone> zones, std::vector<Counter> counters,
              std::vector<std::string> notes)
      : powercap_(std::move(powercap)),
        zones_(std::move(zones)),
        notes_(std::move(notes)),
        counters_(std::move(counters)) {}

  std::string_view backend_name() const noexcept override { return "rapl"; }
  const std::vector<CpuZone>& zones() const noexcept override { return zones_; }
  std::vector<std::string> notes() const override { return notes_; }

  double energy_j(std::size_t zone) override {
    if (zone >= counters_.size()) {
      throw Error(ErrorCode::kNotFound,
                  fmt::format("CPU energy zone {} does not exist: the RAPL backend has {} "
                              "zone(s); pass an index below zones().size().",
                              zone, counters_.size()));
    }
    std::lock_guard lock(mutex_);
    return static_cast<double>(counters_[zone].update(powercap_)) / 1e6;
  }

 private:
  const fs::path powercap_;
  const std::vector<CpuZone> zones_;
  const std::vector<std::string> notes_;
  std::mutex mutex_;
  std::vector<Counter> counters_;  // parallel to zones_; guarded by mutex_
};

// ---- Discovering zones ------------------------------------------------------------------------

// A powercap directory name: "<prefix>N" (top level) or "<prefix>N:M" (sub-zone), N and M in hex.
struct ZoneDirName {
  std::size_t interface = 0;  // index into kZoneDirPrefixes
  unsigned zone = 0;
  std::optional<unsigned> sub_zone;
  auto key() const { return std::tuple(interface, zone, sub_zone); }
};

std::optional<unsigned> parse_hex(std::string_view text) {
  unsigned value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value, 16);
  if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
  return value;
}

std::optional<ZoneDirName> parse_zone_dir_name(std::string_view name) {
  // "intel-rapl-mmio:N" matches no prefix: it duplicates the MSR package zones.
  for (std::size_t i = 0; i < std::size(kZoneDirPrefixes); ++i) {
    if (!name.starts_with(kZoneDirPrefixes[i])) continue;
    name.remove_prefix(kZoneDirPrefixes[i].size());
    const std::size_t colon = name.find(':');
    const auto zone = parse_hex(name.substr(0, colon));
    if (!zone) return std::nullopt;
    if (colon == std::string_view::npos) return ZoneDirName{i, *zone, std::nullopt};
    const auto sub_zone = parse_hex(name.substr(colon + 1));
    if (!sub_zone) return std::nullopt;
    return ZoneDirName{i, *zone, *sub_zone};
  }
  return std::nullopt;
}

struct DirEntry {
  fs::path path;
  ZoneDirName id;
};

// The zone directories (or symlinks to them) directly inside `dir`, sorted by zone numbers.
std::vector<DirEntry> list_zone_dirs(const fs::path& dir) {
  std::vector<DirEntry> entries;
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const auto id = parse_zone_dir_name(it->path().filename().string());
    std::error_code type_error;  // a dangling symlink is not a zone: skip it
    if (id && fs::is_directory(it->path(), type_error)) entries.push_back({it->path(), *id});
  }
  if (error) throw listing_error(dir, error);
  std::sort(entries.begin(), entries.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.id.key() < b.id.key(); });
  return entries;
}

// "package-<p>" or "package-<p>-<part>-<m>" (multi-die "package-0-die-1", per-CCD names).
struct PackageName {
  std::size_t package = 0;
  std::string part;  // "die-1"; empty for the whole package
};

std::optional<PackageName> parse_package_name(std::string_view zone_name) {
  if (!zone_name.starts_with(kPackageNamePrefix)) return std::nullopt;
  zone_name.remove_prefix(kPackageNamePrefix.size());
  const std::size_t dash = zone_name.find('-');
  const auto package = parse_integer<std::size_t>(zone_name.substr(0, dash));
  if (!package) return std::nullopt;
  if (dash == std::string_view::npos) return PackageName{*package, ""};
  const std::string_view part = zone_name.substr(dash + 1);
  const std::size_t part_dash = part.rfind('-');
  const bool well_formed = part_dash != std::string_view::npos && part_dash > 0 &&
                           parse_integer<unsigned>(part.substr(part_dash + 1)).has_value();
  if (!well_formed) return std::nullopt;
  return PackageName{*package, std::string(part)};
}

struct PackageDir {
  PackageName name;
  DirEntry entry;
};

struct Discovery {
  std::vector<CpuZone> zones;
  std::vector<Counter> counters;
  std::vector<std::string> notes;
};

std::vector<PackageDir> find_packages(const std::vector<DirEntry>& top_level,
                                      const fs::path& powercap, Discovery& found) {
  std::vector<PackageDir> packages;
  for (const DirEntry& entry : top_level) {
    if (entry.id.sub_zone) continue;
    std::string name;
    try {
      name = read_attribute(entry.path / "name", powercap);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kPermissionDenied) throw;
      found.notes.push_back(fmt::format("skipped {}: {}", entry.path.string(), e.what()));
      continue;
    }
    const auto package = parse_package_name(name);
    if (package) {
      const auto same = [&](const PackageDir& p) {
        return p.name.package == package->package && p.name.part == package->part;
      };
      // The TPMI zone of a package the MSR interface already covers would count it twice.
      if (std::none_of(packages.begin(), packages.end(), same)) {
        packages.push_back({*package, entry});
      }
    } else if (name != "psys") {  // psys covers the whole platform: never in the totals
      found.notes.push_back(fmt::format("skipped {}: its zone \"{}\" is not a CPU package zone",
                                        entry.path.string(), name));
    }
  }
  // list_zone_dirs sorted by zone number, so ties between equal package numbers stay ordered.
  std::stable_sort(packages.begin(), packages.end(), [](const PackageDir& a, const PackageDir& b) {
    return std::pair(a.name.package, a.name.part) < std::pair(b.name.package, b.name.part);
  });
  return packages;
}

// The package's sub-zone named "dram": nested inside the package directory, else at top level.
std::optional<fs::path> find_dram(const PackageDir& package, const std::vector<DirEntry>& top_level,
                                  const fs::path& powercap) {
  const auto is_dram = [&](const DirEntry& entry) {
    if (entry.id.interface != package.entry.id.interface ||
        entry.id.zone != package.entry.id.zone || !entry.id.sub_zone) {
      return false;
    }
    try {
      return read_attribute(entry.path / "name", powercap) == "dram";
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kPermissionDenied) throw;
      return false;
    }
  };
  const std::vector<DirEntry> nested = list_zone_dirs(package.entry.path);
  for (const auto* entries : {&nested, &top_level}) {
    const auto found = std::find_if(entries->begin(), entries->end(), is_dram);
    if (found != entries->end()) return found->path;
  }
  return std::nullopt;
}

// Opens one zone's counter and lists it; a zone that cannot be read is skipped with a note, except
// for a permission error, which every zone shares and the user must fix.
void add_zone(CpuZone zone, const fs::path& dir, const fs::path& powercap, Discovery& found) {
  try {
    Counter counter(dir, powercap);
    if (!counter.range_known()) {
      found.notes.push_back(fmt::format(
          "{} ({}) reports max_energy_range_uj = 0: its wraparound cannot be unrolled exactly, so "
          "a window spanning one counts only the energy since the counter restarted",
          zone.label, dir.string()));
    }
    found.zones.push_back(std::move(zone));
    found.counters.push_back(std::move(counter));
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kPermissionDenied) throw;
    found.notes.push_back(fmt::format("skipped {} ({}): {}", zone.label, dir.string(), e.what()));
  }
}

fs::path resolve_sysfs_root(const RaplOptions& options) {
  if (!options.sysfs_root.empty()) return options.sysfs_root;
  const char* from_env = std::getenv("CHASE_SYSFS_ROOT");
  if (from_env != nullptr && *from_env != '\0') return from_env;
  return "/sys";
}

// No powercap directory means no RAPL on this machine (VMs, ARM): not an error.
bool has_powercap(const fs::path& powercap) {
  std::error_code error;
  const bool is_dir = fs::is_directory(powercap, error);
  if (error && error != std::errc::no_such_file_or_directory &&
      error != std::errc::not_a_directory) {
    throw listing_error(powercap, error);
  }
  return is_dir;
}

}  // namespace

std::unique_ptr<CpuBackend> open_rapl(const RaplOptions& options) {
  const fs::path powercap = resolve_sysfs_root(options) / "class" / "powercap";
  Discovery found;
  if (has_powercap(powercap)) {
    const std::vector<DirEntry> top_level = list_zone_dirs(powercap);
    for (const PackageDir& package : find_packages(top_level, powercap, found)) {
      const std::size_t number = package.name.package;
      const std::string label = package.name.part.empty()
                                    ? fmt::format("package-{}", number)
                                    : fmt::format("package-{}-{}", number, package.name.part);
      add_zone({number, "package", label, package.name.part}, package.entry.path, powercap, found);
      if (const auto dram = find_dram(package, top_level, powercap)) {
        add_zone({number, "dram", label + "/dram", package.name.part}, *dram, powercap, found);
      }
    }
  }
  return std::make_unique<RaplBackend>(powercap, std::move(found.zones), std::move(found.counters),
                                       std::move(found.notes));
}

}  // namespace chase
