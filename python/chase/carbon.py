"""Carbon-intensity series and signals (chase/carbon.h, chase/carbon_signal.h)."""

import os as _os

from . import _chase, _values

_FILE_SUFFIXES = (".csv",)


def load_carbon_csv(path, *, time_column="", value_column=""):
    """A carbon-intensity series from CSV (columns detected by header unless named)."""
    return _chase.load_carbon_csv(
        _values.path("path", path),
        _values.text("time_column", time_column, allow_empty=True),
        _values.text("value_column", value_column, allow_empty=True),
    )


def make_signal(carbon, *, clock=None, horizon_s=48 * 3600):
    """The CarbonSignal a controller reads, from what the user gave as ``carbon``:
    a CarbonSignal (as is), a CarbonSeries (replayed on ``clock``), a provider name
    (chase.carbon_provider_names(); settings from the environment, docs/PROVIDERS.md) or the path
    of a CSV file (replayed: its future is a perfect forecast)."""
    if carbon is None or isinstance(carbon, _chase.CarbonSignal):
        return carbon
    if isinstance(carbon, _chase.CarbonSeries):
        return _chase.CarbonSignal.replay(carbon, clock, horizon_s)
    if isinstance(carbon, (str, _os.PathLike)):
        name = _os.fspath(carbon)
        if name in _chase.carbon_provider_names() and name != "file":
            return _chase.CarbonSignal.from_provider(name, "", horizon_s, 900, clock, "")
        if _os.path.isfile(name):
            return _chase.CarbonSignal.from_file(name, horizon_s, clock)
        raise ValueError(
            f"carbon: {name!r} is neither a provider ({', '.join(_chase.carbon_provider_names())})"
            " nor an existing CSV file")
    raise TypeError(
        "carbon must be a provider name, a CSV path, a chase.CarbonSeries or a chase.CarbonSignal,"
        f" got {type(carbon).__name__}")
