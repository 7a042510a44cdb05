// FakeNvmlEnvironment: points chase's NVML backend at the fake NVML library (tests/fake_nvml) for
// the lifetime of one object, and lets the test steer and observe the emulated GPUs.
//
// Construction writes the fake's config into a fresh temporary directory and sets
//   CHASE_NVML_LIBRARY = FAKE_NVML_LIBRARY (the built libfake_nvml.so, defined by the build),
//   FAKE_NVML_CONFIG   = <dir>/config.json,
//   FAKE_NVML_STATE    = <dir>/state.json (written by the fake after every limit change),
//   CHASE_STATE_DIR    = <dir>/chase-state (PowerLimitGuard's durable record, chase/limit_state.h),
// and unsets CUDA_VISIBLE_DEVICES, so open_nvml() — in this process or in a child it starts — sees
// exactly the configured GPUs. Destruction restores all five variables and removes the directory.
//
// The fake reads its config at the nvmlInit that takes NVML from uninitialised to initialised, i.e.
// when the first backend is opened: create the environment first, then open the backend, and
// destroy the backend before the environment. The control methods act on the GPUs of the current
// (or last) NVML session, so call them after open_nvml(); GPU indices there are NVML indices.
//
// Limits another process (a CLI run, a killed guard helper) changed show in limits_in_state_file()
// at once, but in this process's fake only after its next nvmlInit from uninitialised, i.e. once
// every backend this process had open is closed and a new one is opened.
//
// The fake library is dlopened once per process and never closed, so the backend's dlopen finds the
// same instance (the controls act on what the backend sees) and the library stays loaded from one
// test to the next.
//
// Usage:
//   chase::testing::FakeNvmlEnvironment env(FakeNvmlEnvironment::standard_config(4));
//   auto backend = chase::open_nvml();
//   env.set_load(0, 1.0);
//   EXPECT_EQ(env.call_count("nvmlDeviceSetPowerManagementLimit"), 0u);
//
// Not thread-safe to construct or destroy (it changes the process environment); the control
// methods may be called from any thread.
#pragma once

#include <dlfcn.h>
#include <stdlib.h>

#include <climits>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chase/error.h"

#ifndef FAKE_NVML_LIBRARY
#error "FAKE_NVML_LIBRARY must name the fake NVML library (tests/CMakeLists.txt defines it)"
#endif

namespace chase::testing {

// NVML return codes, for set_failure() and for tests that call the fake's NVML functions directly.
namespace nvml_return {
inline constexpr int kSuccess = 0;
inline constexpr int kUninitialized = 1;
inline constexpr int kInvalidArgument = 2;
inline constexpr int kNotSupported = 3;
inline constexpr int kNoPermission = 4;
inline constexpr int kNotFound = 6;
inline constexpr int kInsufficientSize = 7;
inline constexpr int kDriverNotLoaded = 9;
inline constexpr int kTimeout = 10;
inline constexpr int kFunctionNotFound = 13;
inline constexpr int kGpuIsLost = 15;
inline constexpr int kUnknown = 999;
}  // namespace nvml_return

class FakeNvmlEnvironment {
 public:
  // `config` follows the fake's schema (see tests/fake_nvml/fake_nvml.cpp).
  explicit FakeNvmlEnvironment(const nlohmann::json& config) : directory_(make_directory()) {
    config_path_ = directory_ / "config.json";
    state_path_ = directory_ / "state.json";
    try {
      write_config(config);
    } catch (...) {
      std::error_code ignored;
      std::filesystem::remove_all(directory_, ignored);
      throw;
    }
    save_and_set("CHASE_NVML_LIBRARY", FAKE_NVML_LIBRARY);
    save_and_set("FAKE_NVML_CONFIG", config_path_.string());
    save_and_set("FAKE_NVML_STATE", state_path_.string());
    save_and_set("CHASE_STATE_DIR", (directory_ / "chase-state").string());
    save_and_set("CUDA_VISIBLE_DEVICES", std::nullopt);
  }

  ~FakeNvmlEnvironment() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) set_variable(it->first, it->second);
    std::error_code ignored;  // a leftover temporary directory must not fail the test
    std::filesystem::remove_all(directory_, ignored);
  }

  FakeNvmlEnvironment(const FakeNvmlEnvironment&) = delete;
  FakeNvmlEnvironment& operator=(const FakeNvmlEnvironment&) = delete;

  // "GPU-00000000-0000-0000-0000-00000000000<i>": the UUID standard_config() gives GPU i.
  static std::string standard_uuid(std::size_t i) {
    char uuid[64];
    std::snprintf(uuid, sizeof uuid, "GPU-00000000-0000-0000-0000-%012zu", i);
    return uuid;
  }

  // n identical A40-like GPUs: limits 100–300 W (default and current 300 W), idle 30 W, 280 W at
  // full load, load 0.5 (so 155 W), Ampere, with energy counters; UUIDs from standard_uuid().
  static nlohmann::json standard_config(std::size_t n) {
    nlohmann::json gpus = nlohmann::json::array();
    for (std::size_t i = 0; i < n; ++i) {
      gpus.push_back({{"name", "NVIDIA A40"},
                      {"uuid", standard_uuid(i)},
                      {"architecture", "ampere"},
                      {"min_limit_w", 100},
                      {"max_limit_w", 300},
                      {"default_limit_w", 300},
                      {"limit_w", 300},
                      {"idle_power_w", 30},
                      {"max_power_w", 280},
                      {"load", 0.5},
                      {"energy_counter", true},
                      {"initial_energy_j", 1000000}});
    }
    return {{"driver_version", "550.54.15"}, {"gpus", gpus}};
  }

  // Replaces the config; the fake reads it at the next nvmlInit from uninitialised.
  void write_config(const nlohmann::json& config) const {
    write_file(config_path_, config.dump(2));
  }

  // --- Controls over the emulated GPUs (NVML indices) ---

  // Changes a GPU's load (0–1) from now on; energy so far is integrated at the old power.
  void set_load(unsigned gpu, double load) const {
    check_gpu(gpu, "set_load");
    control<void (*)(unsigned, double)>("fake_nvml_set_load")(gpu, load);
  }
  // While lost, every NVML call on the GPU returns GPU_IS_LOST.
  void set_lost(unsigned gpu, bool lost) const {
    check_gpu(gpu, "set_lost");
    control<void (*)(unsigned, int)>("fake_nvml_set_lost")(gpu, lost ? 1 : 0);
  }
  // Makes the NVML function `function` return `nvml_return` for this GPU (nvml_return::kSuccess
  // clears it).
  void set_failure(unsigned gpu, const std::string& function, int nvml_return) const {
    check_gpu(gpu, "set_failure");
    check_function(function);
    control<void (*)(unsigned, const char*, int)>("fake_nvml_set_failure")(gpu, function.c_str(),
                                                                           nvml_return);
  }
  void clear_failure(unsigned gpu, const std::string& function) const {
    set_failure(gpu, function, nvml_return::kSuccess);
  }

  // --- Measurement realism (see the fake's "Measurement realism" keys) ---

  // The driver of the GPUs configured with "persistence_mode": false reloads: their limits go back
  // to the default (also in the state file) and their energy counters restart at 0.
  void reload_driver() const { control<void (*)()>("fake_nvml_reload_driver")(); }
  // The energy counter jumps by `delta_j` J (negative: backwards, never below 0).
  void jump_energy(unsigned gpu, double delta_j) const {
    check_gpu(gpu, "jump_energy");
    control<void (*)(unsigned, double)>("fake_nvml_jump_energy")(gpu, delta_j);
  }

  // --- What the fake's model says now (not counted as NVML calls) ---

  double limit_w(unsigned gpu) const { return model_value("fake_nvml_limit_w", gpu); }
  double power_w(unsigned gpu) const { return model_value("fake_nvml_power_w", gpu); }
  // The exact (unrounded) energy counter in J, whether or not the GPU exposes it through NVML.
  double energy_j(unsigned gpu) const { return model_value("fake_nvml_energy_j", gpu); }
  // GPUs configured by the last successful nvmlInit from uninitialised.
  unsigned gpu_count() const { return control<unsigned (*)()>("fake_nvml_gpu_count")(); }
  // Calls of an NVML function (e.g. "nvmlDeviceSetPowerManagementLimit") since the last nvmlInit
  // from uninitialised.
  unsigned long call_count(const std::string& function) const {
    check_function(function);
    return control<unsigned long (*)(const char*)>("fake_nvml_call_count")(function.c_str());
  }

  // UUID → limit in W, as the fake last wrote them; empty when no limit was changed yet.
  std::map<std::string, double> limits_in_state_file() const {
    std::map<std::string, double> limits;
    std::ifstream in(state_path_);
    if (!in) return limits;
    try {
      const auto state = nlohmann::json::parse(in);  // named: a range-for would not extend it
      for (const auto& gpu : state.at("gpus")) {
        limits[gpu.at("uuid").get<std::string>()] = gpu.at("limit_mw").get<double>() / 1000.0;
      }
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorCode::kParse, "the fake NVML state file '" + state_path_.string() +
                                         "' is malformed: " + e.what());
    }
    return limits;
  }

  const std::filesystem::path& directory() const { return directory_; }
  const std::filesystem::path& config_path() const { return config_path_; }
  const std::filesystem::path& state_path() const { return state_path_; }
  // Where PowerLimitGuard keeps its durable record in this environment (created on first use).
  std::filesystem::path limit_state_directory() const { return directory_ / "chase-state"; }
  static const char* library_path() { return FAKE_NVML_LIBRARY; }

 private:
  static std::filesystem::path make_directory() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "chase-fake-nvml-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw Error(ErrorCode::kIo, "cannot create a temporary directory for the fake NVML from '" +
                                      pattern + "'; check that $TMPDIR is writable");
    }
    return pattern;
  }

  static void write_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text << '\n';
    if (!out.flush()) {
      throw Error(ErrorCode::kIo, "cannot write the fake NVML file '" + path.string() + "'");
    }
  }

  static void set_variable(const std::string& name, const std::optional<std::string>& value) {
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }

  void save_and_set(const std::string& name, const std::optional<std::string>& value) {
    const char* previous = std::getenv(name.c_str());
    saved_.emplace_back(name,
                        previous != nullptr ? std::optional<std::string>(previous) : std::nullopt);
    set_variable(name, value);
  }

  // The fake library, loaded once for the whole process (see the header comment).
  static void* library() {
    static void* const handle = ::dlopen(FAKE_NVML_LIBRARY, RTLD_NOW);
    if (handle == nullptr) {
      const char* reason = ::dlerror();
      throw Error(ErrorCode::kUnavailable,
                  std::string("cannot load the fake NVML library '") + FAKE_NVML_LIBRARY +
                      "': " + (reason != nullptr ? reason : "unknown error") +
                      "; build the fake_nvml target");
    }
    return handle;
  }

  template <typename Function>
  static Function control(const char* name) {
    void* symbol = ::dlsym(library(), name);
    if (symbol == nullptr) {
      throw Error(ErrorCode::kInternal, std::string("the fake NVML library '") + FAKE_NVML_LIBRARY +
                                            "' does not export " + name + "; rebuild fake_nvml");
    }
    return reinterpret_cast<Function>(symbol);
  }

  void check_gpu(unsigned gpu, const char* control_name) const {
    const unsigned count = gpu_count();
    if (gpu >= count) {
      throw Error(ErrorCode::kNotFound,
                  "FakeNvmlEnvironment::" + std::string(control_name) +
                      ": the fake NVML has no GPU " + std::to_string(gpu) + " (it has " +
                      std::to_string(count) +
                      "); open the NVML backend first, so the fake reads its config");
    }
  }

  static void check_function(const std::string& function) {
    const auto count =
        control<unsigned long (*)(const char*)>("fake_nvml_call_count")(function.c_str());
    if (count == ULONG_MAX) {
      throw Error(ErrorCode::kInvalidArgument,
                  "the fake NVML does not export an NVML function named '" + function + "'");
    }
  }

  double model_value(const char* control_name, unsigned gpu) const {
    check_gpu(gpu, control_name);
    return control<double (*)(unsigned)>(control_name)(gpu);
  }

  std::filesystem::path directory_;
  std::filesystem::path config_path_;
  std::filesystem::path state_path_;
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

}  // namespace chase::testing
