// The NVML GpuBackend (see chase/nvml.h for the contract).
//
// Everything is read or resolved once in the constructor — entry points, device handles, CUDA's
// order, identity, limits and health — so the hot path (energy_j/power_w, read for every GPU at
// every measurement window) is a bounds check, a health check and one NVML call: no allocation, no
// lock, no lookup. Nothing changes after construction, which is what makes the backend thread-safe
// without locks.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string_view>
#include <system_error>

#include "chase/error.h"
#include "chase/nvml.h"
#include "device/nvml_library.h"
#include "device/nvml_visible_devices.h"

namespace chase {
namespace {

// NVML_DEVICE_NAME_V2_BUFFER_SIZE and NVML_DEVICE_UUID_V2_BUFFER_SIZE are both 96.
constexpr unsigned kStringBufferSize = 96;

constexpr std::string_view kSetLimitCall = "nvmlDeviceSetPowerManagementLimit";

double watts(unsigned milliwatts) { return static_cast<double>(milliwatts) / 1000.0; }

nvml::LibrarySource library_source(const NvmlOptions& options) {
  if (!options.library_path.empty()) return {options.library_path, "NvmlOptions::library_path"};
  const char* from_environment = std::getenv("CHASE_NVML_LIBRARY");
  if (from_environment != nullptr && *from_environment != '\0') {
    return {from_environment, "CHASE_NVML_LIBRARY"};
  }
  return {};
}

// The running program, for the setcap command line in permission advice.
std::string program_path() {
  std::error_code error;
  const auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? "<program>" : path.string();
}

// What to do about a failed NVML call; `call` is the function name, possibly with its arguments.
std::string advice(nvml::Return result, std::string_view call) {
  const bool setting_limit = call.starts_with(kSetLimitCall);
  switch (result) {
    case nvml::kNoPermission:
      if (setting_limit) {
        return fmt::format(
            "Changing GPU power limits needs root or CAP_SYS_ADMIN: run as root (sudo), or grant "
            "the capability with `sudo setcap cap_sys_admin+ep {}`; reading energy and power needs "
            "no privilege.",
            program_path());
      }
      return fmt::format(
          "This NVML call needs more privileges: run as root (sudo), or grant CAP_SYS_ADMIN with "
          "`sudo setcap cap_sys_admin+ep {}`.",
          program_path());
    case nvml::kNotSupported:
    case nvml::kFunctionNotFound:
      return "This GPU or its driver does not support it; GeForce and laptop GPUs often lack "
             "power-management features, and older drivers lack newer calls.";
    case nvml::kGpuIsLost:
      return "The GPU fell off the bus or stopped responding: check `nvidia-smi` and the kernel "
             "log (`sudo dmesg | grep -i xid`); a reboot or a driver reload is usually needed.";
    case nvml::kInvalidArgument:
      if (setting_limit) {
        return "The driver rejected a limit within the constraints it reported when chase "
               "started; check the current constraints with `nvidia-smi -q -d POWER`.";
      }
      return "NVML rejected the arguments chase passed; this is a bug in chase, please report it.";
    case nvml::kTimeout:
      return "The GPU did not answer in time; retry, and check `nvidia-smi` if it persists.";
    default:
      return "Check that `nvidia-smi` works and look at the kernel log; report it if it persists.";
  }
}

// How open-time messages name a GPU whose name and UUID are not known yet.
std::string subject(const GpuInfo& gpu) {
  if (!gpu.name.empty()) return describe(gpu);
  return fmt::format("GPU {} (NVML index {})", gpu.index, gpu.hardware_index);
}

// CUDA_DEVICE_ORDER.
enum class DeviceOrder { kFastestFirst, kPciBusId };

DeviceOrder device_order(const std::optional<std::string>& option) {
  std::string value;
  if (option) {
    value = *option;
  } else if (const char* from_environment = std::getenv("CUDA_DEVICE_ORDER")) {
    value = from_environment;
  }
  if (value.empty() || value == "FASTEST_FIRST") return DeviceOrder::kFastestFirst;
  if (value == "PCI_BUS_ID") return DeviceOrder::kPciBusId;
  spdlog::warn(
      "CUDA_DEVICE_ORDER=\"{}\" is neither FASTEST_FIRST nor PCI_BUS_ID; CUDA then uses "
      "its default, FASTEST_FIRST, and so does chase",
      value);
  return DeviceOrder::kFastestFirst;
}

// One GPU NVML counts and this process may open, before CUDA's order and selection apply.
struct Candidate {
  unsigned nvml_index = 0;
  nvml::Device handle = nullptr;
  nvml::Return handle_result = nvml::kSuccess;  // not kSuccess: the GPU is unusable
  std::string_view failed_call;                 // the call that returned handle_result
  std::optional<std::array<unsigned, 3>> pci;   // domain, bus, device
  std::string pci_bus_id;
  std::optional<std::pair<int, int>> compute_capability;
};

// A MIG device of a candidate GPU.
struct MigDevice {
  unsigned parent = 0;  // position among the candidates
  std::string uuid;
};

class NvmlBackend final : public GpuBackend {
 public:
  NvmlBackend(const nvml::LibrarySource& source, const NvmlOptions& options)
      : library_(source), api_(library_.api()) {
    std::vector<Candidate> candidates = enumerate();
    order_like_cuda(candidates, device_order(options.device_order));
    const auto selection = select_devices(candidates, options.visible_devices);
    if (!selection.warning.empty()) spdlog::warn("{}", selection.warning);
    for (std::size_t k = 0; k < selection.indices.size(); ++k) {
      const Candidate& candidate = candidates[selection.indices[k]];
      if (selection.mig_uuids[k].empty()) {
        add_gpu(candidate);
      } else {
        add_mig_device(candidate, selection, k);
      }
    }
  }

  std::string_view backend_name() const noexcept override { return "nvml"; }
  const std::vector<GpuInfo>& gpus() const noexcept override { return gpus_; }
  bool limits_outlive_process() const noexcept override { return true; }
  const std::vector<GpuInfo>& inaccessible_gpus() const noexcept override { return inaccessible_; }

  double energy_j(std::size_t gpu) override {
    const GpuInfo& info = healthy_gpu(gpu);
    if (!info.has_energy_counter) throw_no_energy_counter(info);
    unsigned long long millijoules = 0;
    check(info, "nvmlDeviceGetTotalEnergyConsumption",
          api_.device_get_total_energy_consumption(devices_[gpu].handle, &millijoules));
    return static_cast<double>(millijoules) / 1000.0;
  }

  double power_w(std::size_t gpu) override {
    const GpuInfo& info = healthy_gpu(gpu);
    if (!info.has_power_reading) throw_no_power_reading(info);
    if (devices_[gpu].instant_power_field) return instant_power_w(info, devices_[gpu].handle);
    unsigned milliwatts = 0;
    check(info, "nvmlDeviceGetPowerUsage",
          api_.device_get_power_usage(devices_[gpu].handle, &milliwatts));
    return watts(milliwatts);
  }

  // The management limit — the one set_power_limit_w sets — rather than the enforced limit, which
  // other constraints may lower: a guard restoring what it read must restore the setting.
  double power_limit_w(std::size_t gpu) override {
    const GpuInfo& info = healthy_gpu(gpu);
    unsigned milliwatts = 0;
    check(info, "nvmlDeviceGetPowerManagementLimit",
          api_.device_get_power_management_limit(devices_[gpu].handle, &milliwatts));
    return watts(milliwatts);
  }

  void set_power_limit_w(std::size_t gpu, double limit_w) override {
    const GpuInfo& info = healthy_gpu(gpu);
    if (!devices_[gpu].limits_supported) throw_limits_not_supported(info);
    check_power_limit(info, limit_w);
    const auto milliwatts = static_cast<unsigned>(std::llround(limit_w * 1000.0));
    const nvml::Return result =
        api_.device_set_power_management_limit(devices_[gpu].handle, milliwatts);
    if (result != nvml::kSuccess) {
      throw_failure(subject(info), fmt::format("{}({} mW)", kSetLimitCall, milliwatts), result);
    }
  }

 private:
  struct Device {
    nvml::Device handle = nullptr;
    bool limits_supported = true;      // false: the GPU reports no power-limit constraints
    bool instant_power_field = false;  // power_w() reads NVML_FI_DEV_POWER_INSTANT
    ErrorCode problem_code = ErrorCode::kInternal;  // what calls on an unhealthy GPU throw
  };

  // The NVML_FI_DEV_POWER_INSTANT field; a failure is reported like any NVML call's.
  double instant_power_w(const GpuInfo& info, nvml::Device handle) const {
    nvml::FieldValue field;
    field.field_id = nvml::kFieldPowerInstant;
    check(info, "nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT)",
          api_.device_get_field_values(handle, 1, &field));
    check(info, "nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT)", field.nvml_return);
    return watts(field.value.ui);
  }

  // True when the driver answers the instant power field for this GPU (newer drivers, Ampere+).
  bool probe_instant_power(nvml::Device handle) const {
    if (api_.device_get_field_values == nullptr) return false;
    nvml::FieldValue field;
    field.field_id = nvml::kFieldPowerInstant;
    return api_.device_get_field_values(handle, 1, &field) == nvml::kSuccess &&
           field.nvml_return == nvml::kSuccess && field.value_type == nvml::kValueTypeUnsignedInt;
  }

  // nvmlDeviceGetPowerUsage averages over 1 s on Ampere and newer, except GA100 (A100, A30, A800).
  static PowerReading usage_reading(const GpuInfo& info) {
    bool ga100 = false;
    std::istringstream words(info.name);
    for (std::string word; words >> word;) {
      ga100 = ga100 || word.starts_with("A100") || word.starts_with("A800") || word == "A30" ||
              word == "A30X";
    }
    const bool averaged = info.architecture >= GpuArchitecture::kAmpere && !ga100;
    return averaged ? PowerReading::kAveraged : PowerReading::kInstant;
  }

  [[noreturn]] void throw_failure(std::string_view who, std::string_view call,
                                  nvml::Return result) const {
    throw Error(nvml::error_code_for(result),
                fmt::format("{}: {} failed: {}. {}", who, call, library_.error_text(result),
                            advice(result, call)));
  }

  void check(const GpuInfo& gpu, std::string_view call, nvml::Return result) const {
    if (result != nvml::kSuccess) throw_failure(subject(gpu), call, result);
  }

  // The GPU, when it can be read; an unhealthy one throws the problem found when opening.
  const GpuInfo& healthy_gpu(std::size_t gpu) const {
    const GpuInfo& info = checked_gpu(gpus_, gpu);
    if (info.state != GpuState::kHealthy) [[unlikely]] {
      throw Error(devices_[gpu].problem_code, info.problem);
    }
    return info;
  }

  [[noreturn]] static void throw_no_energy_counter(const GpuInfo& gpu) {
    throw Error(ErrorCode::kNotSupported,
                fmt::format("{} has no cumulative energy counter (nvmlDeviceGetTotalEnergy"
                            "Consumption is not supported; it needs a Volta or newer GPU and "
                            "driver): measure its energy by sampling power_w(), as EnergyMonitor "
                            "does for such GPUs.",
                            describe(gpu)));
  }

  [[noreturn]] static void throw_no_power_reading(const GpuInfo& gpu) {
    throw Error(ErrorCode::kNotSupported,
                fmt::format("{} reports no power draw (nvmlDeviceGetPowerUsage is not "
                            "supported, as in vGPU guests): measure it by its energy counter.",
                            describe(gpu)));
  }

  [[noreturn]] static void throw_limits_not_supported(const GpuInfo& gpu) {
    throw Error(ErrorCode::kNotSupported,
                fmt::format("{} does not support power-limit management (NVML reported no "
                            "power-limit constraints for it), so its power limit cannot be "
                            "changed; energy and power can still be measured.",
                            describe(gpu)));
  }

  // ---- Enumeration: what CUDA would see, in CUDA's order ----

  std::vector<Candidate> enumerate() {
    unsigned count = 0;
    const nvml::Return result = api_.device_get_count(&count);
    if (result != nvml::kSuccess) {
      throw_failure("NVML could not count the GPUs", api_.count_name, result);
    }
    std::vector<Candidate> candidates;
    for (unsigned i = 0; i < count; ++i) {
      Candidate candidate;
      candidate.nvml_index = i;
      candidate.handle_result = api_.device_get_handle_by_index(i, &candidate.handle);
      candidate.failed_call = api_.handle_by_index_name;
      if (candidate.handle_result == nvml::kNoPermission) {
        add_inaccessible(i);
        continue;
      }
      if (candidate.handle_result == nvml::kSuccess) read_topology(candidate);
      candidates.push_back(std::move(candidate));
    }
    return candidates;
  }

  // A GPU the process may not open (device cgroups): CUDA does not enumerate it either.
  void add_inaccessible(unsigned nvml_index) {
    GpuInfo info;
    info.index = nvml_index;
    info.hardware_index = nvml_index;
    info.state = GpuState::kNotAccessible;
    info.problem = fmt::format(
        "NVML GPU {}: {} failed: {}. This process may not open this GPU (device cgroups under "
        "Slurm or a container give a job only its own GPUs), so it is none of this job's CUDA "
        "devices and is skipped.",
        nvml_index, api_.handle_by_index_name, library_.error_text(nvml::kNoPermission));
    inaccessible_.push_back(std::move(info));
  }

  // PCI bus id and compute capability, for CUDA_DEVICE_ORDER; unknown when unsupported. A GPU
  // found lost here is remembered as lost.
  void read_topology(Candidate& candidate) const {
    if (api_.device_get_pci_info != nullptr) {
      nvml::PciInfo pci{};
      const nvml::Return result = api_.device_get_pci_info(candidate.handle, &pci);
      if (result == nvml::kSuccess) {
        candidate.pci = std::array<unsigned, 3>{pci.domain, pci.bus, pci.device};
        pci.bus_id[sizeof pci.bus_id - 1] = '\0';
        candidate.pci_bus_id = pci.bus_id;
      } else if (result == nvml::kGpuIsLost) {
        candidate.handle_result = result;
        candidate.failed_call = "nvmlDeviceGetPciInfo";
        return;
      }
    }
    if (api_.device_get_cuda_compute_capability != nullptr) {
      int major = 0;
      int minor = 0;
      const nvml::Return result =
          api_.device_get_cuda_compute_capability(candidate.handle, &major, &minor);
      if (result == nvml::kSuccess) {
        candidate.compute_capability = std::pair{major, minor};
      } else if (result == nvml::kGpuIsLost) {
        candidate.handle_result = result;
        candidate.failed_call = "nvmlDeviceGetCudaComputeCapability";
      }
    }
  }

  // CUDA_DEVICE_ORDER. PCI_BUS_ID: by PCI bus id (NVML's own order, the driver's PCI order, when
  // one id is unknown). FASTEST_FIRST: by compute capability, highest first, ties by PCI bus id —
  // the rule CUDA is observed to follow; its heuristic is undocumented. A GPU whose compute
  // capability is unknown (lost) keeps its slot: on the usual node of one model that is its place.
  static void order_like_cuda(std::vector<Candidate>& candidates, DeviceOrder order) {
    const bool all_pci = std::all_of(candidates.begin(), candidates.end(),
                                     [](const Candidate& c) { return c.pci.has_value(); });
    const auto by_pci = [all_pci](const Candidate& a, const Candidate& b) {
      return all_pci ? *a.pci < *b.pci : a.nvml_index < b.nvml_index;
    };
    std::stable_sort(candidates.begin(), candidates.end(), by_pci);
    if (order == DeviceOrder::kPciBusId) return;
    std::vector<std::size_t> known_slots;
    std::vector<Candidate> known;
    for (std::size_t slot = 0; slot < candidates.size(); ++slot) {
      if (!candidates[slot].compute_capability) continue;
      known_slots.push_back(slot);
      known.push_back(std::move(candidates[slot]));
    }
    std::stable_sort(known.begin(), known.end(), [](const Candidate& a, const Candidate& b) {
      return *a.compute_capability > *b.compute_capability;  // stable: ties stay in PCI order
    });
    for (std::size_t i = 0; i < known.size(); ++i) {
      candidates[known_slots[i]] = std::move(known[i]);
    }
    warn_if_order_is_a_guess(candidates);
  }

  // Only GPUs of different compute capability make FASTEST_FIRST a guess (unknown ones, lost, do
  // not count: CUDA would not enumerate them either).
  static void warn_if_order_is_a_guess(const std::vector<Candidate>& candidates) {
    const Candidate* first_known = nullptr;
    for (const Candidate& c : candidates) {
      if (!c.compute_capability) continue;
      if (first_known == nullptr) first_known = &c;
      if (c.compute_capability != first_known->compute_capability) {
        spdlog::warn(
            "these GPUs differ in compute capability and CUDA_DEVICE_ORDER is FASTEST_FIRST "
            "(CUDA's default), whose exact rule CUDA does not document: chase numbers them by "
            "compute capability, then PCI bus id; set CUDA_DEVICE_ORDER=PCI_BUS_ID (or select "
            "GPUs by UUID) so CUDA and chase agree for certain");
        return;
      }
    }
  }

  nvml::VisibleDevices select_devices(const std::vector<Candidate>& candidates,
                                      const std::optional<std::string>& visible) {
    std::optional<std::string> spec = visible;
    if (!spec) {
      if (const char* from_environment = std::getenv("CUDA_VISIBLE_DEVICES")) {
        spec = from_environment;
      }
    }
    if (!spec) {
      nvml::VisibleDevices all;
      for (unsigned i = 0; i < candidates.size(); ++i) {
        all.indices.push_back(i);
        all.mig_uuids.emplace_back();
      }
      return all;
    }
    const auto uuid_of = [&](unsigned position) {
      const Candidate& c = candidates[position];
      return c.handle_result == nvml::kSuccess ? raw_string(c.handle, api_.device_get_uuid) : "";
    };
    const auto mig_of = [&](std::string_view entry) { return find_mig(candidates, entry); };
    return nvml::select_visible_devices(*spec, static_cast<unsigned>(candidates.size()), uuid_of,
                                        mig_of);
  }

  // A string attribute, or empty when the call fails (used where a failure only means no match).
  static std::string raw_string(nvml::Device handle,
                                nvml::Return (*getter)(nvml::Device, char*, unsigned)) {
    std::array<char, kStringBufferSize> buffer{};
    if (getter(handle, buffer.data(), kStringBufferSize) != nvml::kSuccess) return "";
    buffer.back() = '\0';
    return buffer.data();
  }

  // The MIG devices of every candidate, read once, the first time an entry names a MIG device.
  const std::vector<MigDevice>& mig_devices(const std::vector<Candidate>& candidates) {
    if (mig_devices_) return *mig_devices_;
    mig_devices_.emplace();
    if (api_.device_get_max_mig_device_count == nullptr ||
        api_.device_get_mig_device_handle_by_index == nullptr) {
      return *mig_devices_;
    }
    for (unsigned position = 0; position < candidates.size(); ++position) {
      const Candidate& c = candidates[position];
      unsigned slots = 0;
      if (c.handle_result != nvml::kSuccess ||
          api_.device_get_max_mig_device_count(c.handle, &slots) != nvml::kSuccess) {
        continue;
      }
      for (unsigned slot = 0; slot < slots; ++slot) {
        nvml::Device mig = nullptr;
        if (api_.device_get_mig_device_handle_by_index(c.handle, slot, &mig) != nvml::kSuccess) {
          continue;  // an empty slot
        }
        mig_devices_->push_back({position, raw_string(mig, api_.device_get_uuid)});
      }
    }
    return *mig_devices_;
  }

  nvml::MigMatch find_mig(const std::vector<Candidate>& candidates, std::string_view entry) {
    const MigDevice* match = nullptr;
    std::size_t matches = 0;
    for (const MigDevice& mig : mig_devices(candidates)) {
      if (mig.uuid.size() < entry.size() ||
          !std::equal(entry.begin(), entry.end(), mig.uuid.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        continue;
      }
      if (mig.uuid.size() == entry.size()) return {mig.parent, mig.uuid, ""};
      match = &mig;
      ++matches;
    }
    if (matches == 0) return {std::nullopt, "", "matches no MIG device's UUID"};
    if (matches > 1) return {std::nullopt, "", "is an ambiguous MIG UUID prefix"};
    return {match->parent, match->uuid, ""};
  }

  // ---- Describing one GPU ----

  std::string read_string(const GpuInfo& gpu, nvml::Device handle,
                          nvml::Return (*getter)(nvml::Device, char*, unsigned),
                          std::string_view call) const {
    std::array<char, kStringBufferSize> buffer{};
    check(gpu, call, getter(handle, buffer.data(), kStringBufferSize));
    buffer.back() = '\0';  // never trust a driver to terminate
    return buffer.data();
  }

  // Reads one GPU's identity, limits and capabilities, and appends it to the visible list. A GPU
  // that fails is appended all the same, unhealthy, with the failure as its problem.
  void add_gpu(const Candidate& candidate) {
    GpuInfo info;
    info.index = gpus_.size();
    info.hardware_index = candidate.nvml_index;
    info.pci_bus_id = candidate.pci_bus_id;
    Device device;
    device.handle = candidate.handle;
    try {
      check(info, candidate.failed_call, candidate.handle_result);
      describe_gpu(info, device);
    } catch (const Error& e) {
      mark_unhealthy(info, device, e);
    }
    gpus_.push_back(std::move(info));
    devices_.push_back(device);
  }

  void describe_gpu(GpuInfo& info, Device& device) const {
    info.name = read_string(info, device.handle, api_.device_get_name, "nvmlDeviceGetName");
    info.uuid = read_string(info, device.handle, api_.device_get_uuid, "nvmlDeviceGetUUID");
    info.architecture = read_architecture(info, device.handle);
    device.limits_supported = read_limits(info, device.handle);
    info.has_energy_counter = probe_energy_counter(info, device.handle);
    device.instant_power_field = probe_instant_power(device.handle);
    info.power_reading = device.instant_power_field ? PowerReading::kInstant : usage_reading(info);
    info.has_power_reading = probe_power_reading(info, device.handle);
    if (!info.has_energy_counter && !info.has_power_reading) {
      info.state = GpuState::kUnmeasurable;
      info.problem = fmt::format(
          "{} has neither an energy counter nor a power reading (NVML supports neither "
          "nvmlDeviceGetTotalEnergyConsumption nor nvmlDeviceGetPowerUsage for it, as in vGPU "
          "guests): it cannot be measured and is skipped; measure on the host, or ask the "
          "administrator for a passthrough GPU.",
          describe(info));
      device.problem_code = ErrorCode::kNotSupported;
    }
  }

  static void mark_unhealthy(GpuInfo& info, Device& device, const Error& error) {
    info.state = error.code() == ErrorCode::kDeviceLost ? GpuState::kLost : GpuState::kFailed;
    info.problem = error.what();
    device.problem_code = error.code();
  }

  // A CUDA_VISIBLE_DEVICES entry naming a MIG device. NVML has no per-slice power or energy, so a
  // slice alone is refused; when every slice of the parent is visible the whole GPU belongs to the
  // job, and its first slice measures the parent, saying so.
  void add_mig_device(const Candidate& parent, const nvml::VisibleDevices& selection,
                      std::size_t k) {
    const std::string& mig_uuid = selection.mig_uuids[k];
    const unsigned position = selection.indices[k];
    std::vector<std::string> visible_slices;
    std::size_t first = k;
    for (std::size_t j = 0; j < selection.indices.size(); ++j) {
      if (selection.indices[j] != position || selection.mig_uuids[j].empty()) continue;
      if (visible_slices.empty()) first = j;
      visible_slices.push_back(selection.mig_uuids[j]);
    }
    const auto slices = static_cast<std::size_t>(
        std::count_if(mig_devices_->begin(), mig_devices_->end(),
                      [&](const MigDevice& mig) { return mig.parent == position; }));
    const bool whole_gpu = visible_slices.size() == slices;
    if (whole_gpu && first == k) {
      add_gpu(parent);
      GpuInfo& info = gpus_.back();
      info.note = fmt::format(
          "CUDA device {} is MIG device {}; every MIG slice of {} ({}) is visible to this job, so "
          "the whole GPU belongs to it and is measured here",
          info.index, mig_uuid, info.uuid.empty() ? "its parent GPU" : info.uuid,
          fmt::join(visible_slices, ", "));
      return;
    }
    GpuInfo info;
    info.index = gpus_.size();
    info.hardware_index = parent.nvml_index;
    info.pci_bus_id = parent.pci_bus_id;
    info.uuid = mig_uuid;
    info.name = parent.handle_result == nvml::kSuccess
                    ? raw_string(parent.handle, api_.device_get_name) + " MIG slice"
                    : "MIG slice";
    info.state = GpuState::kMigSlice;
    const std::string parent_name = parent.handle_result == nvml::kSuccess
                                        ? raw_string(parent.handle, api_.device_get_uuid)
                                        : fmt::format("NVML GPU {}", parent.nvml_index);
    info.problem =
        whole_gpu
            ? fmt::format(
                  "{}: MIG device {} is measured with GPU {}, which measures its whole "
                  "parent GPU {}",
                  describe(info), mig_uuid, first, parent_name)
            : fmt::format(
                  "{}: MIG device {} is a slice of GPU {}, and NVML reports no power or energy "
                  "per MIG slice (other jobs may share the parent): chase cannot measure it. Give "
                  "the job every slice of that GPU (or the whole GPU) to have the parent measured.",
                  describe(info), mig_uuid, parent_name);
    Device device;
    device.handle = parent.handle;
    device.problem_code = ErrorCode::kNotSupported;
    gpus_.push_back(std::move(info));
    devices_.push_back(device);
  }

  // Unsupported (or an old driver) means unknown, not an error.
  GpuArchitecture read_architecture(const GpuInfo& gpu, nvml::Device handle) const {
    if (api_.device_get_architecture == nullptr) return GpuArchitecture::kUnknown;
    unsigned nvml_architecture = 0;
    const nvml::Return result = api_.device_get_architecture(handle, &nvml_architecture);
    if (is_unsupported(result)) return GpuArchitecture::kUnknown;
    check(gpu, "nvmlDeviceGetArchitecture", result);
    return gpu_architecture_from_nvml(nvml_architecture);
  }

  // Fills the limits; false when the GPU has no power-limit management (GeForce, laptops), which
  // must not keep its energy from being measured.
  bool read_limits(GpuInfo& gpu, nvml::Device handle) const {
    unsigned min_mw = 0;
    unsigned max_mw = 0;
    unsigned default_mw = 0;
    nvml::Return result =
        api_.device_get_power_management_limit_constraints(handle, &min_mw, &max_mw);
    if (is_unsupported(result)) return false;
    check(gpu, "nvmlDeviceGetPowerManagementLimitConstraints", result);
    result = api_.device_get_power_management_default_limit(handle, &default_mw);
    if (is_unsupported(result)) return false;
    check(gpu, "nvmlDeviceGetPowerManagementDefaultLimit", result);
    gpu.min_power_limit_w = watts(min_mw);
    gpu.max_power_limit_w = watts(max_mw);
    gpu.default_power_limit_w = watts(default_mw);
    return true;
  }

  // Pre-Volta GPUs have no counter; any other failure is a real problem.
  bool probe_energy_counter(const GpuInfo& gpu, nvml::Device handle) const {
    if (api_.device_get_total_energy_consumption == nullptr) return false;
    unsigned long long millijoules = 0;
    const nvml::Return result = api_.device_get_total_energy_consumption(handle, &millijoules);
    if (is_unsupported(result)) return false;
    check(gpu, "nvmlDeviceGetTotalEnergyConsumption", result);
    return true;
  }

  // vGPU guests may report no power; any other failure is a real problem.
  bool probe_power_reading(const GpuInfo& gpu, nvml::Device handle) const {
    unsigned milliwatts = 0;
    const nvml::Return result = api_.device_get_power_usage(handle, &milliwatts);
    if (is_unsupported(result)) return false;
    check(gpu, "nvmlDeviceGetPowerUsage", result);
    return true;
  }

  static bool is_unsupported(nvml::Return result) {
    return result == nvml::kNotSupported || result == nvml::kFunctionNotFound;
  }

  nvml::Library library_;  // first: NVML stays initialised until the members below are gone
  const nvml::Api& api_;
  std::vector<GpuInfo> gpus_;
  std::vector<Device> devices_;  // parallel to gpus_
  std::vector<GpuInfo> inaccessible_;
  std::optional<std::vector<MigDevice>> mig_devices_;  // read at open, only when a MIG entry asks
};

}  // namespace

std::unique_ptr<GpuBackend> open_nvml(const NvmlOptions& options) {
  return std::make_unique<NvmlBackend>(library_source(options), options);
}

}  // namespace chase
