"""Carbon-intensity forecasters from Python (chase/forecast.h): the C++ models, numpy out.

    series = chase.load_carbon_csv("DE.csv")
    model = chase.forecasting.Forecaster("auto")
    model.fit(series, begin=168, end=len(series) - 24, horizon=24)
    predicted = model.predict(series, first=len(series) - 24, last=len(series), horizon=24)

fit() learns from the targets in [begin, end); predict() returns one value per target in
[first, last) built only from what is known ``horizon`` steps before it (the C++ contract), as a
numpy array. ``chase.forecaster_names()`` lists the models.
"""

import numpy as _np

from . import _chase, _values


class Forecaster:
    def __init__(self, name="auto", *, seed=42, use_exogenous=False):
        name = _values.text("name", name)
        if name not in _chase.forecaster_names():
            raise ValueError(
                f"name must be one of {', '.join(_chase.forecaster_names())}, got {name!r}")
        self._core = _chase.make_forecaster(name, _values.count("seed", seed),
                                            bool(use_exogenous))
        self.name = self._core.name

    def history_needed(self, horizon):
        return self._core.history_needed(_values.count("horizon", horizon, minimum=1))

    def fit(self, series, begin, end, horizon):
        _values.instance("series", series, _chase.CarbonSeries, "a chase.CarbonSeries")
        self._core.fit(series, _values.count("begin", begin), _values.count("end", end),
                       _values.count("horizon", horizon, minimum=1))
        return self

    def predict(self, series, first, last, horizon):
        _values.instance("series", series, _chase.CarbonSeries, "a chase.CarbonSeries")
        values = self._core.predict(series, _values.count("first", first),
                                    _values.count("last", last),
                                    _values.count("horizon", horizon, minimum=1))
        return _np.asarray(values, dtype=_np.float64)


def series_arrays(series):
    """(times as numpy datetime64[s] UTC, values as float64) of a CarbonSeries."""
    _values.instance("series", series, _chase.CarbonSeries, "a chase.CarbonSeries")
    times = _np.asarray(series.times, dtype=_np.float64).astype("int64").astype("datetime64[s]")
    return times, _np.asarray(series.values, dtype=_np.float64)


def simulate_carbon(epochs, carbon, *, policy="chase", eta=0.5, slowdown_budget=0.1,
                    max_carbon_intensity=0.0, epoch_count=40.0, start=None, period="30m",
                    forecast_model="auto"):
    """One training job over a carbon-intensity trace under a policy (chase/carbon_simulation.h),
    as `chase simulate carbon` runs it. ``epochs``: a chase.LimitProfile of one epoch's time and
    energy per limit (or the path of a saved profile); ``carbon``: a CarbonSeries; ``start``: a UTC
    time (Unix seconds, datetime or ISO text; default: 30 days into the trace). Returns a dict
    (policy, carbon_g, energy_j, time_s, epochs, timeline[...], decisions[...]); see
    simulation_frame() for the timeline as a pandas DataFrame."""
    if isinstance(epochs, (str, bytes)) or hasattr(epochs, "__fspath__"):
        epochs = _chase.LimitProfile.load(_values.path("epochs", epochs))
    _values.instance("epochs", epochs, _chase.LimitProfile, "a chase.LimitProfile or a path")
    _values.instance("carbon", carbon, _chase.CarbonSeries, "a chase.CarbonSeries")
    policy = _values.text("policy", policy)
    start_s = carbon.start + 30 * 86400 if start is None else _values.to_unix_seconds(start,
                                                                                      "start")
    return _chase.simulate_carbon(
        epochs, carbon, policy, _values.number("eta", eta, minimum=0, maximum=1),
        _values.number("slowdown_budget", slowdown_budget, minimum=0),
        _values.number("max_carbon_intensity", max_carbon_intensity, minimum=0),
        _values.number("epoch_count", epoch_count, positive=True), start_s,
        _values.duration_seconds("period", period), _values.text("forecast_model", forecast_model))


def simulation_frame(result):
    """The timeline of a simulate_carbon() result as a pandas DataFrame (needs pandas)."""
    import pandas as pd
    frame = pd.DataFrame(result["timeline"])
    if not frame.empty:
        frame["start"] = pd.to_datetime(frame["start"], unit="s", utc=True)
    return frame


def load_zeus_trace(directory, gpu, dataset):
    """A Zeus trace (summary_power_<gpu>.csv and summary_train.csv in ``directory``) of one of the
    artifact's workloads (``dataset``: "imagenet", "cifar100", ...), as chase.ZeusTrace."""
    return _chase.ZeusTrace.load(_values.path("directory", directory), _values.text("gpu", gpu),
                                 _values.text("dataset", dataset))


def simulate_recurring(trace, *, eta=0.5, beta=2.0, seed=1, recurrences=None, pruning_rounds=2,
                       explorations=2, window=None, max_tries=20, score_last=10):
    """A recurring job replayed over a Zeus trace (chase/recurring_simulation.h), as
    `chase simulate recurring` runs it: the batch-size optimiser (pruning, Thompson sampling, early
    stopping at ``beta`` × the cheapest recurrence) and the zeus(``eta``) power-limit selector.
    ``recurrences`` (default 2·|B|·|P|) and ``window`` (default: the whole history) are left out to
    mean the default. Returns a dict: default_config, history (every run), recurrences and summary
    (mean energy of the last ``score_last`` recurrences, energy_reduction vs the default
    configuration, the converged batch size and limit); see recurring_frame() for a DataFrame."""
    _values.instance("trace", trace, _chase.ZeusTrace, "a chase.ZeusTrace (load_zeus_trace())")
    return _chase.simulate_recurring(
        trace, _values.number("eta", eta, minimum=0, maximum=1),
        _values.number("beta", beta, minimum=1), _values.count("seed", seed),
        0 if recurrences is None else _values.count("recurrences", recurrences, minimum=1),
        _values.count("pruning_rounds", pruning_rounds),
        _values.count("explorations", explorations),
        0 if window is None else _values.count("window", window, minimum=1),
        _values.count("max_tries", max_tries, minimum=1),
        _values.count("score_last", score_last, minimum=1))


def recurring_frame(result):
    """The recurrences of a simulate_recurring() result as a pandas DataFrame (needs pandas)."""
    import pandas as pd
    return pd.DataFrame(result["recurrences"])
