"""EnergyMonitor: time and energy of named code windows, per GPU and CPU zone
(chase/energy_monitor.h), usable as a context manager and a decorator."""

import functools as _functools
import warnings as _warnings

from . import _chase, _values


def _default_gpus():
    try:
        return _chase.open_gpus()  # through chased when CHASE_DAEMON is set
    except _chase.UnavailableError as e:
        _warnings.warn(f"chase: no GPUs measured: {e}", RuntimeWarning, stacklevel=3)
        return None


def _default_cpus():
    try:
        return _chase.open_rapl()
    except (_chase.PermissionDeniedError, _chase.UnavailableError) as e:
        _warnings.warn(f"chase: no CPU energy measured: {e}", RuntimeWarning, stacklevel=3)
        return None


class Window:
    """A named window of a monitor: ``with monitor.window("x") as w:`` (then ``w.result``) or
    ``@monitor.window("x")`` (every call measured; ``w.results`` keeps them all). A block left by an
    exception cancels its window (the exception goes on)."""

    def __init__(self, monitor, name):
        self._monitor = monitor
        self.name = name
        self.result = None
        self.results = []

    def __enter__(self):
        self._monitor.begin_window(self.name)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            if self._monitor.is_window_open(self.name):
                self._monitor.cancel_window(self.name)
            return False
        self.result = self._monitor.end_window(self.name)
        self.results.append(self.result)
        return False

    def __call__(self, function):
        @_functools.wraps(function)
        def measured(*args, **kwargs):
            with self:
                return function(*args, **kwargs)

        measured.window = self
        return measured


class EnergyMonitor:
    """begin_window(name) / end_window(name) -> chase.Measurement (time_s, gpus, cpus,
    gpu_energy, cpu_energy, total_energy_j, complete).

    gpus: a GpuBackend, None (no GPU) or "auto" (NVML when present, else a warning and no GPU).
    cpus: a CpuBackend, None or "auto" (RAPL when readable, else a warning).
    gpu_indices: the GPUs to measure (default all). csv_log: append every window to this CSV.
    """

    def __init__(self, gpus="auto", cpus="auto", *, gpu_indices=None, csv_log=None,
                 polling_period_ms=50, cpu_refresh_period_ms=1000, force_polling=False,
                 clock=None):
        if isinstance(gpus, str):
            if gpus != "auto":
                raise ValueError(f"gpus must be a chase.GpuBackend, None or 'auto', got {gpus!r}")
            gpus = _default_gpus()
        elif gpus is not None:
            _values.instance("gpus", gpus, _chase.GpuBackend, "a chase.GpuBackend, None or 'auto'")
        if isinstance(cpus, str):
            if cpus != "auto":
                raise ValueError(f"cpus must be a chase.CpuBackend, None or 'auto', got {cpus!r}")
            cpus = _default_cpus()
        elif cpus is not None:
            _values.instance("cpus", cpus, _chase.CpuBackend, "a chase.CpuBackend, None or 'auto'")
        if clock is not None:
            _values.instance("clock", clock, _chase.Clock, "a chase.Clock")
        if not isinstance(force_polling, bool):
            raise TypeError(f"force_polling must be a bool, got {type(force_polling).__name__}")
        self.gpus, self.cpus = gpus, cpus
        self._core = _chase.EnergyMonitor(
            gpus, cpus, _values.indices("gpu_indices", gpu_indices), force_polling,
            _values.number("polling_period_ms", polling_period_ms, positive=True, maximum=100),
            _values.number("cpu_refresh_period_ms", cpu_refresh_period_ms, positive=True),
            "" if csv_log is None else _values.path("csv_log", csv_log), clock)
        core = self._core
        self.begin_window = core.begin_window  # the C++ methods: no Python frame per window
        self.end_window = core.end_window
        self.cancel_window = core.cancel_window
        self.is_window_open = core.is_window_open

    def open_windows(self):
        return list(self._core.open_windows())

    @property
    def monitored_gpus(self):
        return list(self._core.monitored_gpus())

    def window(self, name):
        """A context manager and decorator measuring one window named ``name``."""
        return Window(self, _values.text("name", name))


def devices(gpus="auto", cpus="auto"):
    """What `chase devices` lists: {"gpus": [...], "cpus": [...]} (plus "gpu_error" /
    "cpu_error" when a backend could not be opened)."""
    out = {"gpus": [], "cpus": []}
    gpus = _open_unless_given(gpus, _chase.open_gpus, out, "gpu_error")
    if gpus is not None:
        out["gpus"] = gpus.gpus()
        for info in out["gpus"]:
            info["power_limit_w"] = gpus.power_limit_w(info["index"])
    cpus = _open_unless_given(cpus, _chase.open_rapl, out, "cpu_error")
    if cpus is not None:
        out["cpus"] = cpus.zones()
    return out


def _open_unless_given(backend, opener, out, error_key):
    """`backend` itself, or (for "auto") the opened backend; None with out[error_key] set when it
    cannot be opened (a machine without GPUs or RAPL still lists what it has)."""
    if not isinstance(backend, str):
        return backend
    try:
        return opener()
    except _chase.ChaseError as e:
        out[error_key] = str(e)
        return None
