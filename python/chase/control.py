"""TrainingController: chase's power-limit control inside a training loop (chase/training.h).

The hooks are the C++ controller's own methods (bound directly, so a step costs two C++ calls),
checked for order: a hook out of order raises HookOrderError after restoring the limits. Limits
are also restored by on_train_end(), close(), leaving a ``with`` block (normally or by an
exception, KeyboardInterrupt included) and at interpreter exit.
"""

import atexit as _atexit
import json as _json
import weakref as _weakref

from . import _chase, _values
from .carbon import make_signal

_POLICIES = ("default", "static", "zeus", "chase", "planner")
_SELECTORS = ("zeus", "energy", "time", "slowdown")
_live = _weakref.WeakSet()


def policy_names():
    """The policies a TrainingController takes (the oracle is a simulator's only)."""
    return list(_POLICIES)


@_atexit.register
def _restore_all():
    for controller in list(_live):
        controller.close()


_PAUSE_MODES = ("none", "idle", "release")


def _pause_mode(pause):
    pause = _values.text("pause", pause)
    if pause not in _PAUSE_MODES:
        raise ValueError(f"pause must be one of {', '.join(_PAUSE_MODES)}, got {pause!r}")
    return pause


def _pushgateway(pushgateway):
    """(url, job, instance) from a URL or a {"url", "job", "instance"} dict; Nones for None."""
    if pushgateway is None:
        return None, None, None
    if isinstance(pushgateway, str):
        pushgateway = {"url": pushgateway}
    if not isinstance(pushgateway, dict) or "url" not in pushgateway:
        raise ValueError("pushgateway must be a URL such as 'http://127.0.0.1:9091' or a dict "
                         f"with 'url' (and optionally 'job', 'instance'), got {pushgateway!r}")
    unknown = set(pushgateway) - {"url", "job", "instance"}
    if unknown:
        raise ValueError(f"pushgateway: unknown key(s) {', '.join(sorted(unknown))}; "
                         "it takes 'url', 'job' and 'instance'")
    url = _values.text("pushgateway['url']", pushgateway["url"])
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"pushgateway: {url!r} is not an http(s) URL, e.g. "
                         "'http://127.0.0.1:9091'")
    return (url, _values.text("pushgateway['job']", pushgateway.get("job", "chase")),
            _values.text("pushgateway['instance']", pushgateway.get("instance", ""),
                         allow_empty=True))


def _resumed_field(resumed, key):
    if not isinstance(resumed, dict) or key not in resumed:
        raise ValueError(
            f"resumed must be a release_request() dict with {key!r}, got {resumed!r}")
    return resumed[key]


class TrainingController:
    """Profiles every power limit during the first steps, then runs at the limit the policy picks.

    Parameters (keyword-only, the C++ TrainingOptions' names):
      gpus: a GpuBackend (open_gpus(), open_nvml(), simulated_gpus(...)); None: open_gpus(), i.e.
      through chased when CHASE_DAEMON is set (docs/DAEMON.md), else NVML.
      policy: "default", "static" (with ``selector``), "zeus", "chase" or "planner".
      eta, max_carbon_intensity (chase/zeus), slowdown_budget (planner), limit_w (default),
      selector ("zeus", "energy", "time", "slowdown") and slowdown_factor (static).
      carbon: provider name, CSV path, CarbonSeries or CarbonSignal (required by chase, planner).
      period: control period, seconds or "30m". total_steps: the job's steps (planner).
      clock: a chase.ManualClock for virtual time; None: the system clock.
      wait_steps, warmup_steps, profile_steps, limit_step_w, gpu_indices, profile_dir, job_id,
      batch_size: profiling (chase/power_limit_optimizer.h).
      coordinator: a chase.Coordinator (chase.distributed.TorchDistributedCoordinator) for
      data-parallel jobs.
      pause (planner, deadline mode): "none", "idle" (on_step_begin holds the loop through a
      paused period, the GPUs at their minimum limit, drawing idle_power_w each) or "release"
      (release_request() is set: checkpoint and exit; the job runs again at its "resume_at").
      resume_cost_s: the time a resume takes. resume_file: where a release writes its request
      (JSON). resumed: a release_request() dict of the run this one continues, e.g.

          controller.on_step_begin()
          release = controller.release_request()
          if release is not None:
              save_checkpoint(model, release["steps_done"])
              controller.on_train_end()
              sys.exit(0)   # restart at release["resume_at"] with resumed=release

      pushgateway: a Prometheus Pushgateway URL ("http://127.0.0.1:9091") or a dict with
      "url", "job" (default "chase") and "instance" (default: the host name): the run's metrics
      (chase_training_*: per-period energy, carbon, limit; see docs/DAEMON.md) are pushed after
      every period and at on_train_end(), from a background thread that never holds the loop.
    """

    def __init__(self, gpus=None, *, policy="chase", eta=0.5, max_carbon_intensity=0.0,
                 slowdown_budget=0.1, limit_w=0.0, selector=None, slowdown_factor=1.1,
                 carbon=None, carbon_horizon="48h", period="30m", total_steps=0, clock=None,
                 wait_steps=1, warmup_steps=10, profile_steps=40, limit_step_w=25.0,
                 gpu_indices=None, profile_dir=None, job_id="", batch_size=0, coordinator=None,
                 pause="none", idle_power_w=30.0, resume_cost_s=0.0, resume_file=None,
                 resumed=None, pushgateway=None):
        if gpus is None:
            gpus = _chase.open_gpus()  # through chased when CHASE_DAEMON is set
        _values.instance("gpus", gpus, _chase.GpuBackend,
                         "a chase.GpuBackend (open_nvml(), simulated_gpus(...))")
        policy = _values.text("policy", policy)
        if policy not in _POLICIES:
            raise ValueError(f"policy must be one of {', '.join(_POLICIES)}, got {policy!r}")
        if selector is not None:
            _values.text("selector", selector)
            if selector not in _SELECTORS:
                raise ValueError(
                    f"selector must be one of {', '.join(_SELECTORS)}, got {selector!r}")
        if clock is not None:
            _values.instance("clock", clock, _chase.Clock, "a chase.Clock (chase.ManualClock)")
        if coordinator is not None:
            _values.instance("coordinator", coordinator, _chase.Coordinator, "a chase.Coordinator")
        horizon_s = _values.duration_seconds("carbon_horizon", carbon_horizon)
        push_url, push_job, push_instance = _pushgateway(pushgateway)
        self._coordinator = coordinator  # the Python object must outlive its C++ use
        self._core = _chase.TrainingControllerCore(
            gpus,
            policy=policy,
            eta=_values.number("eta", eta, minimum=0, maximum=1),
            max_carbon_intensity=_values.number("max_carbon_intensity", max_carbon_intensity,
                                                minimum=0),
            slowdown_budget=_values.number("slowdown_budget", slowdown_budget, minimum=0),
            limit_w=_values.number("limit_w", limit_w, minimum=0),
            selector=selector or "",
            slowdown_factor=_values.number("slowdown_factor", slowdown_factor, minimum=1),
            period_s=_values.duration_seconds("period", period),
            total_steps=_values.count("total_steps", total_steps),
            carbon=make_signal(carbon, clock=clock, horizon_s=horizon_s),
            clock=clock,
            wait_steps=_values.count("wait_steps", wait_steps),
            warmup_steps=_values.count("warmup_steps", warmup_steps),
            profile_steps=_values.count("profile_steps", profile_steps, minimum=1),
            limit_step_w=_values.number("limit_step_w", limit_step_w, positive=True),
            gpu_indices=_values.indices("gpu_indices", gpu_indices),
            profile_dir="" if profile_dir is None else _values.path("profile_dir", profile_dir),
            job_id=_values.text("job_id", job_id, allow_empty=True),
            batch_size=_values.count("batch_size", batch_size),
            coordinator=coordinator,
            pause=_pause_mode(pause),
            idle_power_w=_values.number("idle_power_w", idle_power_w, minimum=0),
            resume_cost_s=_values.number("resume_cost_s", resume_cost_s, minimum=0),
            resume_file="" if resume_file is None else _values.path("resume_file", resume_file),
            resumed_job_start=None if resumed is None else _values.number(
                "resumed['job_start']", _resumed_field(resumed, "job_start")),
            resumed_steps_done=0 if resumed is None else _values.count(
                "resumed['steps_done']", _resumed_field(resumed, "steps_done")),
            pushgateway_url=push_url,
            pushgateway_job=push_job,
            pushgateway_instance=push_instance,
        )
        self.gpus = gpus
        core = self._core
        # The hooks are the C++ methods themselves: no Python frame per step.
        self.on_train_begin = core.on_train_begin
        self.on_epoch_begin = core.on_epoch_begin
        self.on_step_begin = core.on_step_begin
        self.on_step_end = core.on_step_end
        self.on_epoch_end = core.on_epoch_end
        self.on_train_end = core.on_train_end
        _live.add(self)

    def release_request(self):
        """Deadline mode, release: None while the job may run on; else a dict (resume_at and
        job_start in Unix seconds, steps_done): checkpoint and exit, and start the job again at
        resume_at with resumed=this dict."""
        return self._core.release_request()

    def report(self):
        """The run report as a dict: the JSON keys of run_report_json (policy, time_s, steps,
        energy_j, carbon_g, profiled, skipped_limits, periods[...])."""
        return _json.loads(self._core.report_json())

    def report_json(self):
        return self._core.report_json()

    @property
    def optimizer_state(self):
        """The profiler's state: "ready", "warmup", "profiling" or "done"."""
        return self._core.optimizer_state

    @property
    def candidate_limits(self):
        return list(self._core.candidate_limits)

    @property
    def closed(self):
        return self._core.closed

    def close(self):
        """Restores every limit the controller changed (idempotent); report() stays readable."""
        self._core.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and not self._core.ended and not self._core.closed:
            self.on_train_end()
        self.close()
        return False

    def epochs(self, count):
        """Yields epoch numbers 0..count-1 with the train and epoch hooks around them (see
        chase.pytorch.epochs)."""
        from .pytorch import epochs
        return epochs(self, count)

    def steps(self, iterable):
        """Yields the items of ``iterable`` with on_step_begin/on_step_end around each."""
        from .pytorch import steps
        return steps(self, iterable)
