"""Forecasters and the carbon simulation from Python: numpy out, the C++ numbers."""

import math

import numpy as np
import pytest

import chase
import chase.forecasting as fc

START = chase.to_unix_seconds("2026-01-01T00:00:00Z")


def daily_series(days=40):
    """Hourly, a clean daily cycle (made up): 300 + 100 sin(2π h / 24)."""
    n = days * 24
    times = [START + 3600 * i for i in range(n)]
    values = [300 + 100 * math.sin(2 * math.pi * (i % 24) / 24) for i in range(n)]
    return chase.CarbonSeries(times, values, 3600, "synthetic daily cycle")


def test_seasonal_forecaster_predicts_numpy_arrays():
    series = daily_series()
    model = fc.Forecaster("seasonal")
    n = len(series)
    model.fit(series, model.history_needed(24), n - 24, 24)
    predicted = model.predict(series, n - 24, n, 24)
    assert isinstance(predicted, np.ndarray) and predicted.shape == (24,)
    assert predicted == pytest.approx(series.values[n - 24:], abs=1e-9)


def test_forecaster_misuse_is_a_value_error():
    with pytest.raises(ValueError, match="name"):
        fc.Forecaster("crystal-ball")
    with pytest.raises(chase.InvalidArgumentError):
        fc.Forecaster("linear").predict(daily_series(), 100, 110, 24)  # before fit


def test_series_arrays():
    times, values = fc.series_arrays(daily_series(1))
    assert str(times[0]) == "2026-01-01T00:00:00" and values.dtype == np.float64


def test_simulate_carbon_policies_order_by_carbon():
    profile = chase.LimitProfile([(300, 3600, 3600 * 280), (200, 4300, 4300 * 195),
                                  (100, 7000, 7000 * 100)], gpu_count=1)
    series = daily_series()
    results = {p: fc.simulate_carbon(profile, series, policy=p, epoch_count=10,
                                     forecast_model="seasonal")
               for p in ("default", "chase", "oracle")}
    assert results["default"]["policy"] == "default"
    assert results["default"]["epochs"] == pytest.approx(10)
    assert results["oracle"]["carbon_g"] < results["default"]["carbon_g"]
    assert results["chase"]["decisions"], "chase decided at period boundaries"
    pd = pytest.importorskip("pandas")
    frame = fc.simulation_frame(results["chase"])
    assert isinstance(frame, pd.DataFrame) and frame["epochs"].sum() == pytest.approx(10)
