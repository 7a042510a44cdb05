"""chase: carbon- and energy-aware GPU power limits for deep-learning training.

The package wraps the C++ library (the extension module ``chase._chase``); nothing is computed in
Python. Measurement: :class:`EnergyMonitor`, :func:`devices`. Control: :class:`TrainingController`
with its hooks, the policies and their options as keyword arguments. Data parallel:
:class:`chase.distributed.TorchDistributedCoordinator`. Integrations: :mod:`chase.pytorch`,
:mod:`chase.huggingface`. Backends: :func:`open_gpus` (through chased when CHASE_DAEMON is set),
:func:`open_nvml`, :func:`open_rapl`, :func:`simulated_gpus`.
Forecasting and simulation: :func:`load_carbon_csv`, :func:`make_forecaster`,
:func:`simulate_carbon`, :func:`load_zeus_trace`, :func:`simulate_recurring`, :mod:`chase.forecasting`.
docs/PYTHON.md documents it all.

Errors are :class:`ChaseError` subclasses carrying chase's full message and ``code``; each also
derives from the matching built-in (``InvalidArgumentError`` is a ``ValueError``, ``NotFoundError``
a ``LookupError``, ``PermissionDeniedError`` a ``PermissionError``, ``IoError`` an ``OSError``).
"""

from ._chase import (  # noqa: F401  (the public API)
    __version__,
    AlreadyExistsError,
    CarbonSeries,
    CarbonSignal,
    ChaseError,
    Clock,
    Coordinator,
    CpuBackend,
    DeviceLostError,
    Forecaster,
    GpuBackend,
    HookOrderError,
    InternalError,
    InvalidArgumentError,
    LimitProfile,
    IoError,
    ManualClock,
    Measurement,
    NotFoundError,
    NotSupportedError,
    ParseError,
    PermissionDeniedError,
    PowerProfile,
    SimulatedGpus,
    UnavailableError,
    ZeusTrace,
    carbon_provider_names,
    forecaster_names,
    format_utc_time,
    make_forecaster,
    open_gpus,
    open_nvml,
    open_rapl,
    simulated_gpus,
    synthetic_demo_profile,
    system_clock,
)
from ._values import to_unix_seconds  # noqa: F401
from .carbon import load_carbon_csv  # noqa: F401
from .control import TrainingController, policy_names  # noqa: F401
from .forecasting import load_zeus_trace, simulate_carbon, simulate_recurring  # noqa: F401
from .monitor import EnergyMonitor, devices  # noqa: F401
