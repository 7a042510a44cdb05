// chase._chase — the Python bindings of the chase library (pybind11). The Python package `chase`
// (python/chase/) wraps this module; every computation is the C++ library's, this file only
// converts values, maps errors and checks the order of the training hooks.
//
// Threads: every call that may block on a device, a file, a provider or another rank releases the
// GIL (py::gil_scoped_release); the C++ sampler threads never touch Python. A Coordinator written
// in Python (torch.distributed) takes the GIL back for its collectives.
// Errors: chase::Error becomes chase.ChaseError's subclass for its code (ValueError,
// LookupError, PermissionError, OSError, ... mixed in), carrying the full message and `code`.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chase/carbon.h"
#include "chase/carbon_provider.h"
#include "chase/carbon_signal.h"
#include "chase/carbon_simulation.h"
#include "chase/coordinator.h"
#include "chase/cpu.h"
#include "chase/energy_monitor.h"
#include "chase/error.h"
#include "chase/forecast.h"
#include "chase/gpu.h"
#include "chase/limit_policy.h"
#include "chase/limit_profile.h"
#include "chase/nvml.h"
#include "chase/open_gpus.h"
#include "chase/recurring_simulation.h"
#include "chase/selector.h"
#include "chase/simulated_gpu.h"
#include "chase/time.h"
#include "chase/training.h"
#include "chase/zeus_trace.h"

namespace py = pybind11;
using namespace pybind11::literals;  // "name"_a = value: a dict built from keyword arguments

namespace chase {
namespace {

// ---- Errors ------------------------------------------------------------------------------------

constexpr std::size_t kErrorCodes = static_cast<std::size_t>(ErrorCode::kInternal) + 1;

// Python classes per ErrorCode, made once at import; they live as long as the module.
std::array<PyObject*, kErrorCodes> g_error_classes{};
PyObject* g_hook_order_error = nullptr;

// The `code` attribute: a stable identifier ("invalid_argument"), not the message text.
const char* code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kAlreadyExists:
      return "already_exists";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kPermissionDenied:
      return "permission_denied";
    case ErrorCode::kNotSupported:
      return "not_supported";
    case ErrorCode::kDeviceLost:
      return "device_lost";
    case ErrorCode::kParse:
      return "parse";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

void raise_python(PyObject* cls, const char* message, const char* code) {
  py::object instance = py::reinterpret_borrow<py::object>(cls)(message);
  instance.attr("code") = code;
  PyErr_SetObject(cls, instance.ptr());
}

PyObject* new_error_class(py::module_& m, const char* name, PyObject* base, PyObject* mixin,
                          const char* doc) {
  py::tuple bases = mixin ? py::make_tuple(py::handle(base), py::handle(mixin))
                          : py::make_tuple(py::handle(base));
  const std::string qualified = std::string("chase.") + name;
  PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
  if (!cls) throw py::error_already_set();
  m.attr(name) = py::handle(cls);
  return cls;
}

// Thrown by the hook checks: a training hook called out of order.
struct HookOrderError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void register_errors(py::module_& m) {
  PyObject* base = new_error_class(
      m, "ChaseError", PyExc_Exception, nullptr,
      "Every error chase reports: str(e) is chase's full message, e.code classifies it.");
  m.attr("ChaseError").attr("code") = "internal";
  struct Spec {
    ErrorCode code;
    const char* name;
    PyObject* mixin;
  };
  const Spec specs[] = {
      {ErrorCode::kInvalidArgument, "InvalidArgumentError", PyExc_ValueError},
      {ErrorCode::kNotFound, "NotFoundError", PyExc_LookupError},
      {ErrorCode::kAlreadyExists, "AlreadyExistsError", PyExc_ValueError},
      {ErrorCode::kUnavailable, "UnavailableError", PyExc_RuntimeError},
      {ErrorCode::kPermissionDenied, "PermissionDeniedError", PyExc_PermissionError},
      {ErrorCode::kNotSupported, "NotSupportedError", PyExc_RuntimeError},
      {ErrorCode::kDeviceLost, "DeviceLostError", PyExc_RuntimeError},
      {ErrorCode::kParse, "ParseError", PyExc_ValueError},
      {ErrorCode::kIo, "IoError", PyExc_OSError},
      {ErrorCode::kInternal, "InternalError", PyExc_RuntimeError},
  };
  for (const auto& spec : specs) {
    g_error_classes[static_cast<std::size_t>(spec.code)] =
        new_error_class(m, spec.name, base, spec.mixin, nullptr);
  }
  g_hook_order_error = new_error_class(
      m, "HookOrderError", base, PyExc_RuntimeError,
      "A TrainingController hook called out of order; the controller restored the limits.");
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const Error& e) {
      raise_python(g_error_classes[static_cast<std::size_t>(e.code())], e.what(),
                   code_name(e.code()));
    } catch (const HookOrderError& e) {
      raise_python(g_hook_order_error, e.what(), "hook_order");
    }
  });
}

// ---- Values ------------------------------------------------------------------------------------

// UTC times cross the boundary as Unix seconds (the Python layer accepts datetime and ISO text).
UtcTime utc_from_unix(double seconds) {
  if (!std::isfinite(seconds)) {
    throw Error(ErrorCode::kInvalidArgument, "a UTC time must be finite Unix seconds");
  }
  return UtcTime{} + std::chrono::duration_cast<UtcTime::duration>(Seconds(seconds));
}
double unix_from_utc(UtcTime time) { return Seconds(time - UtcTime{}).count(); }

std::chrono::milliseconds checked_ms(double ms, const char* name) {
  if (!std::isfinite(ms) || ms <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(name) + " must be a positive number of milliseconds, got " +
                    std::to_string(ms));
  }
  return std::chrono::milliseconds(static_cast<long long>(std::llround(ms)));
}

std::chrono::seconds checked_seconds(long long seconds, const char* name) {
  if (seconds <= 0) {
    throw Error(ErrorCode::kInvalidArgument, std::string(name) +
                                                 " must be a positive number of seconds, got " +
                                                 std::to_string(seconds));
  }
  return std::chrono::seconds(seconds);
}

py::dict gpu_info_dict(const GpuInfo& g) {
  py::dict d("index"_a = g.index, "hardware_index"_a = g.hardware_index, "uuid"_a = g.uuid,
             "name"_a = g.name, "architecture"_a = std::string(to_string(g.architecture)),
             "min_power_limit_w"_a = g.min_power_limit_w,
             "max_power_limit_w"_a = g.max_power_limit_w,
             "default_power_limit_w"_a = g.default_power_limit_w,
             "has_energy_counter"_a = g.has_energy_counter);
  return d;
}

// ---- Coordinator written in Python -------------------------------------------------------------

// A Coordinator whose collectives are Python methods (chase.distributed's torch.distributed one).
// rank and size are fixed at construction (they are noexcept in C++ and cannot call Python). A
// collective that raises makes the group unusable (the C++ contract): it throws kUnavailable with
// the Python error's text and remembers the failure, which the controller turns into an error
// even where the C++ control policy would only keep the limit in force.
class PyCoordinator : public Coordinator {
 public:
  PyCoordinator(std::size_t rank, std::size_t size) : rank_(rank), size_(size) {
    if (size == 0 || rank >= size) {
      throw Error(ErrorCode::kInvalidArgument,
                  "Coordinator(rank, size): rank must be in [0, size), got rank " +
                      std::to_string(rank) + ", size " + std::to_string(size));
    }
  }
  std::size_t rank() const noexcept override { return rank_; }
  std::size_t size() const noexcept override { return size_; }

  Window combine(const Window& local) override {
    py::gil_scoped_acquire gil;
    return collective("combine", [&](const py::function& method) {
      auto result = method(local.time_s, local.energy_j, local.failed);
      auto values = result.cast<py::tuple>();
      if (values.size() != 3)
        throw py::value_error("combine() must return (time_s, energy_j, failed)");
      return Window{values[0].cast<double>(), values[1].cast<double>(), values[2].cast<bool>()};
    });
  }

  double agree(double value) override {
    py::gil_scoped_acquire gil;
    return collective("agree",
                      [&](const py::function& method) { return method(value).cast<double>(); });
  }

  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  std::string failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
  }

 private:
  template <typename Call>
  auto collective(const char* name, Call&& call) -> decltype(call(std::declval<py::function>())) {
    if (failed()) {
      throw Error(ErrorCode::kUnavailable,
                  std::string("the coordinator's group is unusable after an earlier failure: ") +
                      failure());
    }
    try {
      const py::function method = py::get_override(static_cast<const Coordinator*>(this), name);
      if (!method) {
        throw Error(ErrorCode::kInternal,
                    std::string("chase.Coordinator subclass does not define ") + name + "()");
      }
      return call(method);
    } catch (py::error_already_set& e) {
      const std::string text = std::string("rank ") + std::to_string(rank_) + ": the " + name +
                               "() collective failed: " + e.what();
      {
        std::lock_guard lock(mutex_);
        failure_ = text;
      }
      failed_.store(true, std::memory_order_release);
      throw Error(ErrorCode::kUnavailable, text);
    } catch (const py::cast_error& e) {
      throw Error(ErrorCode::kInternal,
                  std::string(name) + "() returned a wrong type: " + e.what());
    }
  }

  std::size_t rank_, size_;
  std::atomic<bool> failed_{false};
  mutable std::mutex mutex_;
  std::string failure_;
};

// ---- Training controller with checked hook order -----------------------------------------------

// The C++ TrainingController behind the hooks, plus the order they must come in. A hook out of
// order restores the limits (the controller is closed) before it raises, so a broken loop never
// leaves a limit changed; on_train_end() finishes the report and restores the limits too.
class ControllerBinding {
 public:
  ControllerBinding(std::shared_ptr<GpuBackend> gpus, TrainingOptions options,
                    std::shared_ptr<PyCoordinator> coordinator)
      : coordinator_(std::move(coordinator)) {
    py::gil_scoped_release release;
    controller_ = std::make_unique<TrainingController>(std::move(gpus), std::move(options));
  }
  ~ControllerBinding() { close(); }

  void on_train_begin() {
    check_open("on_train_begin");
    if (train_begun_) misuse("on_train_begin() was called twice");
    if (in_step_) misuse("on_train_begin() inside a step");
    train_begun_ = true;
    run([this] { controller_->on_train_begin(); });
  }
  void on_epoch_begin() {
    check_open("on_epoch_begin");
    if (in_step_) misuse("on_epoch_begin() inside a step: call on_step_end() first");
    if (in_epoch_) misuse("on_epoch_begin() twice without on_epoch_end()");
    in_epoch_ = true;
    run([this] { controller_->on_epoch_begin(); });
  }
  void on_epoch_end() {
    check_open("on_epoch_end");
    if (in_step_) misuse("on_epoch_end() inside a step: call on_step_end() first");
    in_epoch_ = false;
    run([this] { controller_->on_epoch_end(); });
  }
  void on_step_begin() {
    check_open("on_step_begin");
    if (in_step_) misuse("on_step_begin() twice without on_step_end()");
    in_step_ = true;
    train_begun_ = true;
    run([this] { controller_->on_step_begin(); });
  }
  void on_step_end() {
    check_open("on_step_end");
    if (!in_step_) misuse("on_step_end() without on_step_begin()");
    in_step_ = false;
    run([this] { controller_->on_step_end(); });
  }
  void on_train_end() {
    check_open("on_train_end");
    if (in_step_) misuse("on_train_end() inside a step: call on_step_end() first");
    run([this] { controller_->on_train_end(); });
    ended_ = true;
    finish();
  }

  // Deadline mode, release: {resume_at, job_start (Unix seconds), steps_done}, or None.
  py::object release_request() const {
    const auto release = controller_ ? controller_->release_request() : released_;
    if (!release) return py::none();
    py::dict out("resume_at"_a = unix_from_utc(release->resume_at),
                 "job_start"_a = unix_from_utc(release->job_start),
                 "steps_done"_a = release->steps_done);
    return out;
  }

  std::string report_json() const {
    if (controller_) return run_report_json(controller_->report());
    return final_report_;
  }

  std::string optimizer_state() const {
    if (!controller_) return "done";
    return std::string(to_string(controller_->optimizer().state()));
  }

  std::vector<double> candidate_limits() const {
    return controller_ ? controller_->optimizer().candidate_limits() : final_candidates_;
  }

  bool closed() const noexcept { return !controller_; }
  bool ended() const noexcept { return ended_; }

  // Restores the limits now (idempotent); the report stays readable.
  // A run stopped early (an exception, Ctrl-C, a misused hook) ends its period first, so the
  // report keeps the steps and energy of the period in progress.
  void close() {
    if (!controller_) return;
    if (!ended_) {
      try {
        without_gil([this] { controller_->on_train_end(); });
      } catch (const std::exception&) {  // a device that cannot be read: that period is left out
      }
    }
    final_report_ = run_report_json(controller_->report());
    released_ = controller_->release_request();
    final_candidates_ = controller_->optimizer().candidate_limits();
    std::unique_ptr<TrainingController> controller = std::move(controller_);
    without_gil([&controller] { controller.reset(); });  // restoring calls the driver
  }

 private:
  template <typename Work>
  static void without_gil(Work&& work) {
    if (PyGILState_Check()) {
      py::gil_scoped_release release;
      work();
    } else {
      work();
    }
  }

  // A hook that throws (a GPU lost while profiling, a rank gone) closes the controller first: the
  // limits are restored before the exception reaches the training loop.
  template <typename Hook>
  void run(Hook&& hook) {
    try {
      py::gil_scoped_release release;
      hook();
    } catch (...) {
      close();
      throw;
    }
    if (coordinator_ && coordinator_->failed()) {
      const std::string failure = coordinator_->failure();
      close();
      throw Error(ErrorCode::kUnavailable,
                  failure + "; chase restored this rank's power limits and stops the job");
    }
  }

  void check_open(const char* hook) {
    if (ended_) misuse(std::string(hook) + "() was called after on_train_end()");
    if (!controller_) {
      throw HookOrderError(std::string(hook) +
                           "() on a closed TrainingController (closed after an error or by "
                           "close()); make a new controller for a new run");
    }
  }

  [[noreturn]] void misuse(const std::string& what) {
    const bool had_controller = controller_ != nullptr;
    close();
    throw HookOrderError(
        "TrainingController: " + what +
        (had_controller ? "; the controller restored the power limits and is closed" : "") +
        " (the order is on_train_begin, then per epoch on_epoch_begin, on_step_begin/on_step_end "
        "around every step, on_epoch_end, and on_train_end once)");
  }

  std::shared_ptr<PyCoordinator> coordinator_;
  std::unique_ptr<TrainingController> controller_;
  bool train_begun_ = false;
  bool in_epoch_ = false;
  bool in_step_ = false;
  bool ended_ = false;
  std::string final_report_;
  std::optional<ReleaseRequest> released_;
  std::vector<double> final_candidates_;

  void finish() { close(); }
};

std::shared_ptr<const PowerLimitSelector> make_selector(const std::string& name, double eta,
                                                        double factor) {
  if (name == "zeus") return make_zeus_selector(eta);
  if (name == "energy") return make_energy_selector();
  if (name == "time") return make_time_selector();
  if (name == "slowdown") return make_slowdown_selector(factor);
  throw Error(ErrorCode::kInvalidArgument,
              "selector: unknown selector '" + name + "'; known: zeus, energy, time, slowdown");
}

struct ControllerArgs {
  std::string policy = "chase";
  double eta = 0.5;
  double max_carbon_intensity = 0;
  double slowdown_budget = 0.1;
  double limit_w = 0;
  std::string selector;
  double slowdown_factor = 1.1;
  long long period_s = 1800;
  std::size_t total_steps = 0;
  std::shared_ptr<CarbonSignal> carbon;
  std::shared_ptr<Clock> clock;
  std::size_t wait_steps = 1;
  std::size_t warmup_steps = 10;
  std::size_t profile_steps = 40;
  double limit_step_w = 25;
  std::vector<std::size_t> gpu_indices;
  std::string profile_dir;
  std::string job_id;
  std::size_t batch_size = 0;
  // Deadline mode (planner): pause none/idle/release, its costs, the release's resume file and
  // the job a run resumes (its original start in Unix seconds and the steps done before).
  std::string pause = "none";
  double idle_power_w = 30;
  double resume_cost_s = 0;
  std::string resume_file;
  std::optional<double> resumed_job_start;
  std::size_t resumed_steps_done = 0;
  // The Pushgateway the run's metrics go to (chase/pushgateway.h); empty url: none.
  std::string pushgateway_url;
  std::string pushgateway_job = "chase";
  std::string pushgateway_instance;
};

TrainingOptions training_options(const ControllerArgs& a, std::shared_ptr<Coordinator> coord) {
  PolicyParameters parameters;
  parameters.eta = a.eta;
  parameters.max_carbon_intensity = a.max_carbon_intensity;
  parameters.slowdown_budget = a.slowdown_budget;
  parameters.limit_w = a.limit_w;
  parameters.pause.mode = parse_pause_mode(a.pause);
  parameters.pause.idle_power_w = a.idle_power_w;
  parameters.pause.resume_s = a.resume_cost_s;
  TrainingOptions options;
  options.resume_file = a.resume_file;
  if (a.resumed_job_start) {
    options.resumed =
        ReleaseRequest{UtcTime{}, utc_from_unix(*a.resumed_job_start), a.resumed_steps_done};
  }
  options.policy = parse_policy(a.policy, parameters);
  if (!a.selector.empty()) {
    auto* chosen = std::get_if<StaticOptions>(&options.policy);
    if (!chosen) {
      throw Error(
          ErrorCode::kInvalidArgument,
          "selector: only the static policy takes a selector, policy is '" + a.policy + "'");
    }
    chosen->selector = make_selector(a.selector, a.eta, a.slowdown_factor);
  }
  options.period = checked_seconds(a.period_s, "period");
  options.total_steps = a.total_steps;
  options.carbon = a.carbon;
  options.clock = a.clock;
  options.profiling.wait_steps = a.wait_steps;
  options.profiling.warmup_steps = a.warmup_steps;
  options.profiling.profile_steps = a.profile_steps;
  options.profiling.limit_step_w = a.limit_step_w;
  options.profiling.gpus = a.gpu_indices;
  options.profiling.profile_dir = a.profile_dir;
  options.profiling.job_id = a.job_id;
  options.profiling.batch_size = a.batch_size;
  options.profiling.coordinator = std::move(coord);
  if (!a.pushgateway_url.empty()) {
    options.pushgateway.emplace();
    options.pushgateway->url = a.pushgateway_url;
    options.pushgateway->job = a.pushgateway_job;
    options.pushgateway->instance = a.pushgateway_instance;
  }
  return options;
}

// ---- Module sections ---------------------------------------------------------------------------

void bind_clocks(py::module_& m) {
  py::class_<Clock, std::shared_ptr<Clock>>(m, "Clock")
      .def("monotonic_s", [](const Clock& c) { return Seconds(c.monotonic()).count(); })
      .def(
          "utc_now", [](const Clock& c) { return unix_from_utc(c.utc_now()); },
          "UTC now, in Unix seconds");
  py::class_<ManualClock, Clock, std::shared_ptr<ManualClock>>(m, "ManualClock")
      .def(py::init(
               [](double start) { return std::make_shared<ManualClock>(utc_from_unix(start)); }),
           py::arg("start_unix_s") = 0.0)
      .def(
          "advance",
          [](ManualClock& c, double seconds) {
            if (!std::isfinite(seconds) || seconds < 0) {
              throw Error(ErrorCode::kInvalidArgument,
                          "ManualClock.advance(seconds): seconds must be finite and >= 0, got " +
                              std::to_string(seconds));
            }
            c.advance(Seconds(seconds));
          },
          py::arg("seconds"));
  m.def("system_clock", [] { return system_clock(); });
  m.def(
      "parse_utc_time",
      [](const std::string& text, const std::string& name) {
        return unix_from_utc(parse_time_option(text, name));
      },
      py::arg("text"), py::arg("name") = "time");
  m.def("format_utc_time", [](double t) { return format_utc_time(utc_from_unix(t)); });
  m.def("parse_duration", [](const std::string& text, const std::string& name) {
    return static_cast<long long>(parse_duration_option(text, name).count());
  });
}

void bind_devices(py::module_& m) {
  py::class_<GpuBackend, std::shared_ptr<GpuBackend>>(m, "GpuBackend")
      .def_property_readonly("backend_name",
                             [](const GpuBackend& b) { return std::string(b.backend_name()); })
      .def("gpus",
           [](const GpuBackend& b) {
             py::list out;
             for (const auto& g : b.gpus()) out.append(gpu_info_dict(g));
             return out;
           })
      .def_property_readonly("gpu_count", &GpuBackend::gpu_count)
      .def("energy_j", &GpuBackend::energy_j, py::arg("gpu"),
           py::call_guard<py::gil_scoped_release>())
      .def("power_w", &GpuBackend::power_w, py::arg("gpu"),
           py::call_guard<py::gil_scoped_release>())
      .def("power_limit_w", &GpuBackend::power_limit_w, py::arg("gpu"),
           py::call_guard<py::gil_scoped_release>())
      .def("set_power_limit_w", &GpuBackend::set_power_limit_w, py::arg("gpu"), py::arg("watts"),
           py::call_guard<py::gil_scoped_release>());

  py::class_<PowerProfile>(m, "PowerProfile")
      .def(py::init([](const std::vector<std::tuple<double, double, double>>& points,
                       std::string gpu, std::string workload, std::string unit) {
             std::vector<PowerProfilePoint> converted;
             for (const auto& [limit, throughput, power] : points) {
               converted.push_back({limit, throughput, power});
             }
             return PowerProfile(std::move(converted), std::move(gpu), std::move(workload),
                                 std::move(unit));
           }),
           py::arg("points"), py::arg("gpu") = "", py::arg("workload") = "",
           py::arg("throughput_unit") = "samples/s")
      .def_static("load", &PowerProfile::load, py::arg("path"))
      .def_property_readonly(
          "points",
          [](const PowerProfile& p) {
            py::list out;
            for (const auto& q : p.points()) {
              out.append(py::make_tuple(q.power_limit_w, q.throughput, q.avg_power_w));
            }
            return out;
          })
      .def_property_readonly("gpu", &PowerProfile::gpu)
      .def_property_readonly("workload", &PowerProfile::workload)
      .def_property_readonly("throughput_unit", &PowerProfile::throughput_unit)
      .def_property_readonly("min_limit_w", &PowerProfile::min_limit_w)
      .def_property_readonly("max_limit_w", &PowerProfile::max_limit_w)
      .def("throughput_at", &PowerProfile::throughput_at, py::arg("power_limit_w"))
      .def("power_at", &PowerProfile::power_at, py::arg("power_limit_w"));
  m.def("synthetic_demo_profile", &synthetic_demo_profile);

  py::class_<SimulatedGpuBackend, GpuBackend, std::shared_ptr<SimulatedGpuBackend>>(m,
                                                                                    "SimulatedGpus")
      .def("set_busy", &SimulatedGpuBackend::set_busy, py::arg("gpu"), py::arg("busy"))
      .def("set_all_busy", &SimulatedGpuBackend::set_all_busy, py::arg("busy"))
      .def("throughput", &SimulatedGpuBackend::throughput, py::arg("gpu"))
      .def("profile", &SimulatedGpuBackend::profile, py::arg("gpu"));
  m.def(
      "simulated_gpus",
      [](std::size_t n, std::optional<PowerProfile> profile, std::shared_ptr<Clock> clock) {
        if (n == 0) throw Error(ErrorCode::kInvalidArgument, "simulated_gpus: count must be >= 1");
        return make_simulated_gpus(n, profile ? *profile : synthetic_demo_profile(),
                                   clock ? clock : system_clock());
      },
      py::arg("count"), py::arg("profile") = py::none(), py::arg("clock") = py::none());

  // open_nvml and open_gpus (the default of TrainingController(gpus=None): through chased when
  // CHASE_DAEMON is set) take the same arguments.
  const auto def_gpu_opener = [&m](const char* name, auto open) {
    m.def(
        name,
        [open](std::string library_path, std::optional<std::string> visible_devices) {
          NvmlOptions options;
          options.library_path = std::move(library_path);
          options.visible_devices = std::move(visible_devices);
          py::gil_scoped_release release;
          return std::shared_ptr<GpuBackend>(open(options));
        },
        py::arg("library_path") = "", py::arg("visible_devices") = py::none());
  };
  def_gpu_opener("open_nvml", [](const NvmlOptions& options) { return open_nvml(options); });
  def_gpu_opener("open_gpus", [](const NvmlOptions& options) { return open_gpus(options); });

  py::class_<CpuBackend, std::shared_ptr<CpuBackend>>(m, "CpuBackend")
      .def_property_readonly("backend_name",
                             [](const CpuBackend& b) { return std::string(b.backend_name()); })
      .def("zones",
           [](const CpuBackend& b) {
             py::list out;
             for (const auto& z : b.zones()) {
               py::dict d("package"_a = z.package, "kind"_a = z.kind, "label"_a = z.label);
               out.append(d);
             }
             return out;
           })
      .def("energy_j", &CpuBackend::energy_j, py::arg("zone"),
           py::call_guard<py::gil_scoped_release>());
  m.def(
      "open_rapl",
      [](std::string sysfs_root) {
        RaplOptions options;
        options.sysfs_root = sysfs_root;
        py::gil_scoped_release release;
        return std::shared_ptr<CpuBackend>(open_rapl(options));
      },
      py::arg("sysfs_root") = "");
}

void bind_monitor(py::module_& m) {
  py::class_<GpuEnergy>(m, "GpuEnergy")
      .def_readonly("index", &GpuEnergy::index)
      .def_readonly("name", &GpuEnergy::name)
      .def_readonly("energy_j", &GpuEnergy::energy_j)
      .def_property_readonly("method",
                             [](const GpuEnergy& g) { return std::string(to_string(g.method)); })
      .def_readonly("error", &GpuEnergy::error);
  py::class_<CpuEnergy>(m, "CpuEnergy")
      .def_readonly("zone", &CpuEnergy::zone)
      .def_readonly("package", &CpuEnergy::package)
      .def_readonly("kind", &CpuEnergy::kind)
      .def_readonly("energy_j", &CpuEnergy::energy_j)
      .def_readonly("error", &CpuEnergy::error);
  py::class_<Measurement>(m, "Measurement")
      .def_readonly("name", &Measurement::name)
      .def_property_readonly("start_utc",
                             [](const Measurement& x) { return unix_from_utc(x.start_utc); })
      .def_property_readonly("end_utc",
                             [](const Measurement& x) { return unix_from_utc(x.end_utc); })
      .def_readonly("time_s", &Measurement::time_s)
      .def_readonly("gpus", &Measurement::gpus)
      .def_readonly("cpus", &Measurement::cpus)
      .def_property_readonly("gpu_energy_j", &Measurement::gpu_energy_j)
      .def_property_readonly("cpu_energy_j", &Measurement::cpu_energy_j)
      .def_property_readonly("total_energy_j", &Measurement::total_energy_j)
      .def_property_readonly("complete", &Measurement::complete);

  py::class_<EnergyMonitor, std::shared_ptr<EnergyMonitor>>(m, "EnergyMonitor")
      .def(py::init([](std::shared_ptr<GpuBackend> gpus, std::shared_ptr<CpuBackend> cpus,
                       std::vector<std::size_t> gpu_indices, bool force_polling,
                       double polling_period_ms, double cpu_refresh_period_ms, std::string csv_log,
                       std::shared_ptr<Clock> clock) {
             EnergyMonitorOptions options;
             options.gpus = std::move(gpu_indices);
             options.force_polling = force_polling;
             options.polling_period = checked_ms(polling_period_ms, "polling_period_ms");
             options.cpu_refresh_period =
                 checked_ms(cpu_refresh_period_ms, "cpu_refresh_period_ms");
             options.csv_log = csv_log;
             options.clock = std::move(clock);
             py::gil_scoped_release release;
             return std::make_shared<EnergyMonitor>(std::move(gpus), std::move(cpus), options);
           }),
           py::arg("gpus") = py::none(), py::arg("cpus") = py::none(),
           py::arg("gpu_indices") = std::vector<std::size_t>{}, py::arg("force_polling") = false,
           py::arg("polling_period_ms") = 50.0, py::arg("cpu_refresh_period_ms") = 1000.0,
           py::arg("csv_log") = "", py::arg("clock") = py::none())
      .def("begin_window", &EnergyMonitor::begin_window, py::arg("name"),
           py::call_guard<py::gil_scoped_release>())
      .def("end_window", &EnergyMonitor::end_window, py::arg("name"),
           py::call_guard<py::gil_scoped_release>())
      .def("cancel_window", &EnergyMonitor::cancel_window, py::arg("name"),
           py::call_guard<py::gil_scoped_release>())
      .def("is_window_open", &EnergyMonitor::is_window_open, py::arg("name"))
      .def("open_windows", &EnergyMonitor::open_windows)
      .def("monitored_gpus", &EnergyMonitor::monitored_gpus);
}

void bind_carbon(py::module_& m) {
  py::class_<CarbonSeries>(m, "CarbonSeries")
      .def(py::init([](const std::vector<double>& times, std::vector<double> values,
                       long long resolution_s, std::string source) {
             std::vector<UtcTime> utc;
             utc.reserve(times.size());
             for (double t : times) utc.push_back(utc_from_unix(t));
             return CarbonSeries(std::move(utc), std::move(values),
                                 checked_seconds(resolution_s, "resolution_s"), std::move(source));
           }),
           py::arg("times"), py::arg("values"), py::arg("resolution_s"), py::arg("source") = "")
      .def_property_readonly("times",
                             [](const CarbonSeries& s) {
                               std::vector<double> out;
                               out.reserve(s.size());
                               for (auto t : s.times()) out.push_back(unix_from_utc(t));
                               return out;
                             })
      .def_property_readonly("values", &CarbonSeries::values)
      .def_property_readonly("resolution_s",
                             [](const CarbonSeries& s) { return s.resolution().count(); })
      .def_property_readonly("source", &CarbonSeries::source)
      .def_property_readonly("start",
                             [](const CarbonSeries& s) { return unix_from_utc(s.start()); })
      .def_property_readonly("end", [](const CarbonSeries& s) { return unix_from_utc(s.end()); })
      .def("value_at", [](const CarbonSeries& s, double t) { return s.value_at(utc_from_unix(t)); })
      .def("__len__", &CarbonSeries::size);
  m.def(
      "load_carbon_csv",
      [](const std::string& path, std::string time_column, std::string value_column) {
        py::gil_scoped_release release;
        return load_carbon_csv(path,
                               CarbonCsvOptions(std::move(time_column), std::move(value_column)));
      },
      py::arg("path"), py::arg("time_column") = "", py::arg("value_column") = "");

  py::class_<CarbonSignal, std::shared_ptr<CarbonSignal>>(m, "CarbonSignal")
      .def_static(
          "from_provider",
          [](const std::string& name, const std::string& config_file, long long horizon_s,
             long long refresh_s, std::shared_ptr<Clock> clock, std::string forecaster) {
            auto options = load_carbon_provider_options(name, config_file);
            options.clock = clock;
            CarbonSignalOptions signal;
            signal.horizon = checked_seconds(horizon_s, "horizon_s");
            signal.refresh_interval = checked_seconds(refresh_s, "refresh_interval_s");
            signal.clock = clock;
            // A file feed with exogenous columns ("exogenous": true in its config) lends them to
            // the forecaster for the hours they are published ahead.
            ForecasterOptions forecaster_options;
            forecaster_options.use_exogenous = true;
            if (!forecaster.empty())
              signal.forecaster = make_forecaster(forecaster, forecaster_options);
            return std::make_shared<CarbonSignal>(make_carbon_provider(name, std::move(options)),
                                                  signal);
          },
          py::arg("name"), py::arg("config_file") = "", py::arg("horizon_s") = 86400,
          py::arg("refresh_interval_s") = 900, py::arg("clock") = py::none(),
          py::arg("forecaster") = "")
      .def_static(
          "from_file",
          [](const std::string& path, long long horizon_s, std::shared_ptr<Clock> clock) {
            CarbonProviderOptions options;
            options.file = path;
            options.clock = clock;
            CarbonSignalOptions signal;
            signal.horizon = checked_seconds(horizon_s, "horizon_s");
            signal.clock = clock;
            return std::make_shared<CarbonSignal>(make_carbon_provider("file", std::move(options)),
                                                  signal);
          },
          py::arg("path"), py::arg("horizon_s") = 86400, py::arg("clock") = py::none())
      .def_static(
          "replay",
          [](const CarbonSeries& series, std::shared_ptr<Clock> clock, long long horizon_s) {
            CarbonSignalOptions signal;
            signal.horizon = checked_seconds(horizon_s, "horizon_s");
            signal.clock = clock;
            return std::make_shared<CarbonSignal>(
                make_replay_provider(series, clock,
                                     series.source().empty() ? "replay" : series.source()),
                signal);
          },
          py::arg("series"), py::arg("clock") = py::none(), py::arg("horizon_s") = 86400)
      .def("refresh", &CarbonSignal::refresh, py::call_guard<py::gil_scoped_release>())
      .def("intensity_now", &CarbonSignal::intensity_now)
      .def(
          "forecast",
          [](const CarbonSignal& s, std::size_t periods, long long period_s) {
            py::list out;
            for (const auto& p : s.forecast(periods, checked_seconds(period_s, "period_s"))) {
              out.append(py::make_tuple(unix_from_utc(p.start), p.length.count(), p.g_per_kwh));
            }
            return out;
          },
          py::arg("periods"), py::arg("period_s") = 1800)
      .def("status", [](const CarbonSignal& s) {
        const auto st = s.status();
        py::dict d("has_data"_a = st.has_data, "stale"_a = st.stale,
                   "stale_reason"_a = st.stale_reason, "age_s"_a = st.age.count(),
                   "provider"_a = st.provider, "forecast_source"_a = st.forecast_source);
        return d;
      });
  m.def("carbon_provider_names", &carbon_provider_names);
}

void bind_forecasters(py::module_& m) {
  py::class_<Forecaster, std::shared_ptr<Forecaster>>(m, "Forecaster")
      .def_property_readonly("name", [](const Forecaster& f) { return std::string(f.name()); })
      .def("history_needed", &Forecaster::history_needed, py::arg("horizon"))
      .def("fit", &Forecaster::fit, py::arg("series"), py::arg("begin"), py::arg("end"),
           py::arg("horizon"), py::call_guard<py::gil_scoped_release>())
      .def("predict", &Forecaster::predict, py::arg("series"), py::arg("first"), py::arg("last"),
           py::arg("horizon"), py::call_guard<py::gil_scoped_release>());
  m.def(
      "make_forecaster",
      [](const std::string& name, std::uint64_t seed, bool use_exogenous) {
        ForecasterOptions options;
        options.seed = seed;
        options.use_exogenous = use_exogenous;
        return std::shared_ptr<Forecaster>(make_forecaster(name, options));
      },
      py::arg("name"), py::arg("seed") = 42, py::arg("use_exogenous") = false);
  m.def("forecaster_names", &forecaster_names);
}

// simulate_carbon's result as a dict of plain values (the pandas frame is built in Python).
py::dict simulation_dict(const CarbonSimulationResult& r) {
  py::dict d("policy"_a = r.policy, "forecast"_a = r.forecast, "carbon_g"_a = r.carbon_g,
             "energy_j"_a = r.energy_j, "time_s"_a = r.time_s, "epochs"_a = r.epochs,
             "max_carbon_intensity"_a = r.max_carbon_intensity);
  py::list timeline;
  for (const auto& s : r.timeline) {
    py::dict row("start"_a = unix_from_utc(s.start), "duration_s"_a = s.duration_s,
                 "power_limit_w"_a = s.power_limit_w, "profiling"_a = s.profiling,
                 "carbon_intensity"_a = s.carbon_intensity,
                 "forecast_intensity"_a = s.forecast_intensity, "epochs"_a = s.epochs,
                 "energy_j"_a = s.energy_j, "carbon_g"_a = s.carbon_g);
    timeline.append(row);
  }
  d["timeline"] = timeline;
  py::list decisions;
  for (const auto& x : r.decisions) {
    py::dict row("time"_a = unix_from_utc(x.time), "power_limit_w"_a = x.power_limit_w,
                 "reason"_a = x.reason);
    decisions.append(row);
  }
  d["decisions"] = decisions;
  return d;
}

py::dict trace_config_dict(const TraceConfig& c) {
  py::dict d("batch_size"_a = c.batch_size, "power_limit_w"_a = c.power_limit_w,
             "energy_to_accuracy_j"_a = c.energy_to_accuracy_j,
             "time_to_accuracy_s"_a = c.time_to_accuracy_s);
  return d;
}

// simulate_recurring's result as a dict of plain values: every run, every recurrence, the summary.
py::dict recurring_dict(const RecurringResult& r) {
  py::list history;
  for (const auto& run : r.history) {
    py::dict row("recurrence"_a = run.recurrence, "batch_size"_a = run.batch_size,
                 "power_limit_w"_a = run.power_limit_w, "epochs"_a = run.epochs,
                 "energy_j"_a = run.energy_j, "time_s"_a = run.time_s, "cost"_a = run.cost,
                 "reached"_a = run.reached, "profiled"_a = run.profiled);
    history.append(row);
  }
  py::list recurrences;
  for (const auto& x : r.recurrences) {
    py::dict row("runs"_a = x.runs, "energy_j"_a = x.energy_j, "time_s"_a = x.time_s,
                 "cost"_a = x.cost, "batch_size"_a = x.batch_size,
                 "power_limit_w"_a = x.power_limit_w);
    recurrences.append(row);
  }
  const auto& s = r.summary;
  py::dict summary("recurrences"_a = s.recurrences, "runs"_a = s.runs, "scored"_a = s.scored,
                   "mean_energy_j"_a = s.mean_energy_j, "mean_time_s"_a = s.mean_time_s,
                   "energy_reduction"_a = s.energy_reduction, "time_reduction"_a = s.time_reduction,
                   "batch_size"_a = s.batch_size, "power_limit_w"_a = s.power_limit_w,
                   "best"_a = trace_config_dict(s.best),
                   "best_energy_reduction"_a = s.best_energy_reduction);
  py::dict d("default_config"_a = trace_config_dict(r.default_config), "history"_a = history,
             "recurrences"_a = recurrences, "summary"_a = summary);
  return d;
}

void bind_recurring(py::module_& m) {
  py::class_<ZeusTrace>(m, "ZeusTrace")
      .def_static(
          "load",
          [](const std::filesystem::path& dir, const std::string& gpu, const std::string& dataset) {
            return ZeusTrace::load(dir, gpu, zeus_workload(dataset));
          },
          py::arg("dir"), py::arg("gpu"), py::arg("dataset"))
      .def_property_readonly("gpu", &ZeusTrace::gpu)
      .def_property_readonly("dataset", [](const ZeusTrace& t) { return t.workload().dataset; })
      .def_property_readonly("batch_sizes", &ZeusTrace::batch_sizes)
      .def_property_readonly("power_limits", &ZeusTrace::power_limits)
      .def_property_readonly("default_config", [](const ZeusTrace& t) {
        return trace_config_dict(t.default_config());
      });
  m.def(
      "simulate_recurring",
      [](const ZeusTrace& trace, double eta, double beta, std::uint64_t seed,
         std::size_t recurrences, std::size_t pruning_rounds, std::size_t explorations,
         std::size_t window, std::size_t max_tries, std::size_t score_last) {
        RecurringOptions options;
        options.eta = eta;
        options.beta = beta;
        options.seed = seed;
        options.recurrences = recurrences;
        options.pruning_rounds = pruning_rounds;
        options.explorations = explorations;
        options.window = window;
        options.max_tries = max_tries;
        options.score_last = score_last;
        RecurringResult result;
        {
          py::gil_scoped_release release;
          result = simulate_recurring(trace, options);
        }
        return recurring_dict(result);
      },
      py::arg("trace"), py::arg("eta"), py::arg("beta"), py::arg("seed"), py::arg("recurrences"),
      py::arg("pruning_rounds"), py::arg("explorations"), py::arg("window"), py::arg("max_tries"),
      py::arg("score_last"));
  m.def("default_recurrences", &default_recurrences, py::arg("trace"));
}

void bind_simulation(py::module_& m) {
  py::class_<LimitProfile>(m, "LimitProfile")
      .def(py::init([](const std::vector<std::tuple<double, double, double>>& points,
                       std::size_t gpu_count, std::string gpu_model, double max_power_limit_w) {
             std::vector<LimitMeasurement> measured;
             for (const auto& [limit, time, energy] : points)
               measured.push_back({limit, time, energy});
             LimitProfileInfo info;
             info.gpu_count = gpu_count;
             info.gpu_model = std::move(gpu_model);
             return LimitProfile(std::move(measured), info, max_power_limit_w);
           }),
           py::arg("points"), py::arg("gpu_count") = 1, py::arg("gpu_model") = "",
           py::arg("max_power_limit_w") = 0.0)
      .def_static("load", &load_limit_profile, py::arg("path"))
      .def_property_readonly("points", [](const LimitProfile& p) {
        py::list out;
        for (const auto& q : p.points())
          out.append(py::make_tuple(q.power_limit_w, q.time_s, q.energy_j));
        return out;
      });
  m.def(
      "simulate_carbon",
      [](const LimitProfile& epochs, const CarbonSeries& carbon, const std::string& policy,
         double eta, double slowdown_budget, double max_carbon_intensity, double epoch_count,
         double start, long long period_s, std::string forecast_model) {
        PolicyParameters parameters;
        parameters.eta = eta;
        parameters.slowdown_budget = slowdown_budget;
        parameters.max_carbon_intensity = max_carbon_intensity;
        CarbonSimulationOptions options;
        options.policy = parse_policy(policy, parameters);
        options.epochs = epoch_count;
        options.start = utc_from_unix(start);
        options.period = checked_seconds(period_s, "period");
        options.forecast_model = std::move(forecast_model);
        CarbonSimulationResult result;
        {
          py::gil_scoped_release release;
          result = simulate_carbon(epochs, carbon, options);
        }
        return simulation_dict(result);
      },
      py::arg("epochs"), py::arg("carbon"), py::arg("policy"), py::arg("eta"),
      py::arg("slowdown_budget"), py::arg("max_carbon_intensity"), py::arg("epoch_count"),
      py::arg("start"), py::arg("period_s"), py::arg("forecast_model"));
}

void bind_control(py::module_& m) {
  py::class_<Coordinator, PyCoordinator, std::shared_ptr<Coordinator>>(m, "Coordinator")
      .def(py::init<std::size_t, std::size_t>(), py::arg("rank"), py::arg("size"))
      .def_property_readonly("rank", &Coordinator::rank)
      .def_property_readonly("size", &Coordinator::size)
      .def_property_readonly("failed", [](const Coordinator& c) {
        const auto* py_coordinator = dynamic_cast<const PyCoordinator*>(&c);
        return py_coordinator && py_coordinator->failed();
      });

  py::class_<ControllerBinding>(m, "TrainingControllerCore")
      .def(py::init([](std::shared_ptr<GpuBackend> gpus, const py::kwargs& kw) {
             if (!gpus) {
               throw Error(ErrorCode::kInvalidArgument, "TrainingController: gpus is required");
             }
             ControllerArgs a;
             std::shared_ptr<Coordinator> coordinator;
             for (const auto& [key, value] : kw) {
               const auto name = key.cast<std::string>();
               if (value.is_none()) continue;  // None: the default
               if (name == "policy")
                 a.policy = value.cast<std::string>();
               else if (name == "eta")
                 a.eta = value.cast<double>();
               else if (name == "max_carbon_intensity")
                 a.max_carbon_intensity = value.cast<double>();
               else if (name == "slowdown_budget")
                 a.slowdown_budget = value.cast<double>();
               else if (name == "limit_w")
                 a.limit_w = value.cast<double>();
               else if (name == "selector")
                 a.selector = value.cast<std::string>();
               else if (name == "slowdown_factor")
                 a.slowdown_factor = value.cast<double>();
               else if (name == "period_s")
                 a.period_s = value.cast<long long>();
               else if (name == "total_steps")
                 a.total_steps = value.cast<std::size_t>();
               else if (name == "carbon")
                 a.carbon = value.cast<std::shared_ptr<CarbonSignal>>();
               else if (name == "clock")
                 a.clock = value.cast<std::shared_ptr<Clock>>();
               else if (name == "wait_steps")
                 a.wait_steps = value.cast<std::size_t>();
               else if (name == "warmup_steps")
                 a.warmup_steps = value.cast<std::size_t>();
               else if (name == "profile_steps")
                 a.profile_steps = value.cast<std::size_t>();
               else if (name == "limit_step_w")
                 a.limit_step_w = value.cast<double>();
               else if (name == "gpu_indices")
                 a.gpu_indices = value.cast<std::vector<std::size_t>>();
               else if (name == "profile_dir")
                 a.profile_dir = value.cast<std::string>();
               else if (name == "job_id")
                 a.job_id = value.cast<std::string>();
               else if (name == "batch_size")
                 a.batch_size = value.cast<std::size_t>();
               else if (name == "pause")
                 a.pause = value.cast<std::string>();
               else if (name == "idle_power_w")
                 a.idle_power_w = value.cast<double>();
               else if (name == "resume_cost_s")
                 a.resume_cost_s = value.cast<double>();
               else if (name == "resume_file")
                 a.resume_file = value.cast<std::string>();
               else if (name == "resumed_job_start")
                 a.resumed_job_start = value.cast<double>();
               else if (name == "resumed_steps_done")
                 a.resumed_steps_done = value.cast<std::size_t>();
               else if (name == "pushgateway_url")
                 a.pushgateway_url = value.cast<std::string>();
               else if (name == "pushgateway_job")
                 a.pushgateway_job = value.cast<std::string>();
               else if (name == "pushgateway_instance")
                 a.pushgateway_instance = value.cast<std::string>();
               else if (name == "coordinator")
                 coordinator = value.cast<std::shared_ptr<Coordinator>>();
               else
                 throw py::type_error("TrainingController: unexpected keyword argument '" + name +
                                      "'");
             }
             auto py_coordinator = std::dynamic_pointer_cast<PyCoordinator>(coordinator);
             return std::make_unique<ControllerBinding>(
                 std::move(gpus), training_options(a, coordinator), std::move(py_coordinator));
           }),
           py::arg("gpus"))
      .def("on_train_begin", &ControllerBinding::on_train_begin)
      .def("on_epoch_begin", &ControllerBinding::on_epoch_begin)
      .def("on_epoch_end", &ControllerBinding::on_epoch_end)
      .def("on_step_begin", &ControllerBinding::on_step_begin)
      .def("on_step_end", &ControllerBinding::on_step_end)
      .def("on_train_end", &ControllerBinding::on_train_end)
      .def("report_json", &ControllerBinding::report_json)
      .def("release_request", &ControllerBinding::release_request)
      .def_property_readonly("optimizer_state", &ControllerBinding::optimizer_state)
      .def_property_readonly("candidate_limits", &ControllerBinding::candidate_limits)
      .def_property_readonly("closed", &ControllerBinding::closed)
      .def_property_readonly("ended", &ControllerBinding::ended)
      .def("close", &ControllerBinding::close);

  m.def("policy_names", [] {
    return std::vector<std::string>{"default", "static", "zeus", "chase", "planner"};
  });
}

}  // namespace
}  // namespace chase

PYBIND11_MODULE(_chase, m) {
  m.doc() = "chase's C++ library; use the `chase` package, which wraps this module";
  m.attr("__version__") = CHASE_VERSION;
  chase::register_errors(m);
  chase::bind_clocks(m);
  chase::bind_devices(m);
  chase::bind_monitor(m);
  chase::bind_carbon(m);
  chase::bind_forecasters(m);
  chase::bind_simulation(m);
  chase::bind_recurring(m);
  chase::bind_control(m);
}
