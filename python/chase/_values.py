"""Argument checks shared by the wrappers: wrong types raise TypeError and wrong values ValueError,
each naming the argument (values the C++ library checks itself come back as InvalidArgumentError,
a ValueError, with the library's message)."""

import datetime as _dt
import numbers as _numbers
import os as _os

from . import _chase


def number(name, value, *, minimum=None, maximum=None, positive=False):
    if isinstance(value, bool) or not isinstance(value, _numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value:g}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {value:g}")
    return value


def count(name, value, *, minimum=0):
    if isinstance(value, bool) or not isinstance(value, _numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def text(name, value, *, allow_empty=False):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__} {value!r}")
    if not allow_empty and not value:
        raise ValueError(f"{name} must not be empty")
    return value


def path(name, value):
    if not isinstance(value, (str, _os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__}")
    return _os.fspath(value)


def indices(name, value):
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list of GPU indices, got {type(value).__name__}")
    return [count(f"{name}[{i}]", v) for i, v in enumerate(value)]


def duration_seconds(name, value):
    """A duration: seconds (int) or the CLI's grammar ("30m", "1h", "90s")."""
    if isinstance(value, str):
        return _chase.parse_duration(value, name)
    if isinstance(value, _dt.timedelta):
        value = value.total_seconds()
        if value != int(value):
            raise ValueError(f"{name} must be a whole number of seconds, got {value}")
        value = int(value)
    return count(name, value, minimum=1)


def to_unix_seconds(value, name="time"):
    """A UTC time: Unix seconds, an aware datetime (a naive one is taken as UTC) or ISO 8601 text."""
    if isinstance(value, str):
        return _chase.parse_utc_time(value, name)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.timestamp()
    return number(name, value)


def instance(name, value, kind, what):
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return value
