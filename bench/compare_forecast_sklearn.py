#!/usr/bin/python3
"""Forecasting models vs scikit-learn on the `chase` backtest protocol (docs/ALGORITHMS.md §4).

For each of the five DACF regions (hourly) and the half-hourly MISO file, runs the SAME windows
with scikit-learn (same features, same hyper-parameters) and with our chase_bench_forecast, then
prints a side-by-side table: median MAPE of each side, their relative difference, and the seconds
each spent in fit + predict (timed inside each side, around fit and predict only: no process
start, no data loading). Exits 1 when a published model's median MAPE differs from scikit-learn's
by more than 10 % (relative), 2 on a usage/data error.

Protocol, identical on both sides: n points, fit = one day of points, test = 252 h of points,
span = fit + test + 1, window k's first fit point is 1 + floor(k (n - span - 2) / (N - 1)); each
window fits on its fit points and predicts its test points one step ahead with the true previous
value. Features: sin and cos of 2 pi (UTC clock second of the day) / 86400, and the previous value.
A series too short for the default test length (MISO: 167 points) uses the largest test length
that fits, n - fit - 3, on both sides (our library refuses the default with a clear error).

Run with Debian's /usr/bin/python3 (python3-sklearn). Example:
  /usr/bin/python3 bench/compare_forecast_sklearn.py --bin build/release/bench/chase_bench_forecast
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import AdaBoostRegressor, GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.svm import SVR
from sklearn.tree import DecisionTreeRegressor

PUBLISHED = ["svr", "linear", "gboost", "adaboost", "forest"]
BASELINES = ["persistence", "seasonal"]
DATASETS = [  # (label, path under the data dir, time column, value column)
    ("CISO", "carbon/dacf/CISO_direct_emissions.csv", "UTC time", "carbon_intensity"),
    ("PJM", "carbon/dacf/PJM_direct_emissions.csv", "UTC time", "carbon_intensity"),
    ("ERCO", "carbon/dacf/ERCO_direct_emissions.csv", "UTC time", "carbon_intensity"),
    ("ISNE", "carbon/dacf/ISNE_direct_emissions.csv", "UTC time", "carbon_intensity"),
    ("SE", "carbon/dacf/SE_direct_emissions.csv", "UTC time", "carbon_intensity"),
    ("MISO", "carbon/miso_mason_city_2022-10.csv", "timestamp", "hist"),
]


def make_model(name, seed):
    if name == "svr":
        return SVR(kernel="rbf", C=100, gamma=1e-4, epsilon=0.1)
    if name == "linear":
        return LinearRegression()
    if name == "gboost":
        return GradientBoostingRegressor(n_estimators=100, max_depth=3, learning_rate=0.1,
                                         loss="squared_error", random_state=seed)
    if name == "adaboost":
        return AdaBoostRegressor(DecisionTreeRegressor(max_depth=3), n_estimators=50,
                                 learning_rate=1.0, loss="linear", random_state=seed)
    if name == "forest":
        return RandomForestRegressor(n_estimators=100, bootstrap=True, max_features=1.0,
                                     random_state=seed)
    raise ValueError(name)


def load(path, time_column, value_column):
    frame = pd.read_csv(path, usecols=[time_column, value_column])
    times = pd.to_datetime(frame[time_column], utc=True)
    order = np.argsort(times.values, kind="stable")
    times = times.iloc[order].reset_index(drop=True)
    values = frame[value_column].to_numpy(dtype=float)[order]
    steps = np.diff(times.values).astype("timedelta64[s]").astype(np.int64)
    if len(steps) == 0 or not np.all(steps == steps[0]):
        raise SystemExit(f"{path}: not a regular series; the protocol needs one")
    seconds = times.values.astype("datetime64[s]").astype(np.int64) % 86400
    phase = 2 * np.pi * seconds / 86400.0
    return values, np.sin(phase), np.cos(phase), int(steps[0])


def mape(predicted, actual):
    mask = actual > 0
    return float(np.mean(np.abs(predicted[mask] - actual[mask]) / actual[mask]) * 100)


def window_starts(n, span, windows):
    if windows == 1:
        return [1]
    return [1 + (k * (n - span - 2)) // (windows - 1) for k in range(windows)]


def run_sklearn(values, sin, cos, fit, test, windows, seed):
    n = len(values)
    lag = np.r_[np.nan, values[:-1]]
    features = np.column_stack([sin, cos, lag])
    scores = {}
    for name in PUBLISHED:
        mapes, spent = [], 0.0
        for start in window_starts(n, fit + test + 1, windows):
            first, last = start + fit, start + fit + test
            model = make_model(name, seed)
            began = time.perf_counter()
            model.fit(features[start:first], values[start:first])
            predicted = model.predict(features[first:last])
            spent += time.perf_counter() - began
            mapes.append(mape(predicted, values[first:last]))
        scores[name] = {"mape_median": float(np.median(mapes)), "mape_mean": float(np.mean(mapes)),
                        "fit_predict_s": spent}
    return scores


def run_ours(binary, path, value_column, test_points, windows, seed):
    command = [binary, "--data", path, "--value-column", value_column, "--windows", str(windows),
               "--seed", str(seed), "--models", ",".join(BASELINES + PUBLISHED)]
    if test_points:
        command += ["--test-points", str(test_points)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr}")
    return {m["model"]: m for m in json.loads(result.stdout)["models"]}


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.path.join(root, "build/release/bench/chase_bench_forecast"),
                        help="path to chase_bench_forecast")
    parser.add_argument("--data-dir", default=os.environ.get("CHASE_DATA_DIR") or
                        os.path.join(root, "..", "shared", "data"))
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tolerance", type=float, default=0.10,
                        help="largest relative difference of median MAPE allowed")
    parser.add_argument("--only", default="", help="comma-separated data set labels to run")
    args = parser.parse_args()
    if not os.path.exists(args.bin):
        print(f"{args.bin} not found: build the target chase_bench_forecast first "
              "(make bench-forecast does)", file=sys.stderr)
        return 2
    only = set(filter(None, args.only.split(",")))
    print(f"chase protocol, {args.windows} windows, seed {args.seed}; scikit-learn "
          f"{sklearn.__version__}, numpy {np.__version__}; MAPE in %, time = fit+predict seconds "
          "summed over windows")
    header = (f"{'data':<5} {'model':<11} {'sklearn':>8} {'ours':>8} {'diff':>7}   "
              f"{'sk s':>8} {'ours s':>8} {'speed-up':>8}")
    print(header)
    print("-" * len(header))
    failures = []
    totals = {name: [0.0, 0.0] for name in PUBLISHED}
    for label, relative, time_column, value_column in DATASETS:
        if only and label not in only:
            continue
        path = os.path.join(args.data_dir, relative)
        if not os.path.exists(path):
            print(f"{path} not found: set --data-dir or CHASE_DATA_DIR", file=sys.stderr)
            return 2
        values, sin, cos, step = load(path, time_column, value_column)
        if 86400 % step != 0 or (252 * 3600) % step != 0:
            raise SystemExit(f"{path}: a {step} s step does not divide a day / 252 h")
        fit, test = 86400 // step, 252 * 3600 // step
        test_points = 0
        if len(values) < fit + test + 3:
            test = len(values) - fit - 3
            test_points = test
        sk = run_sklearn(values, sin, cos, fit, test, args.windows, args.seed)
        ours = run_ours(args.bin, path, value_column, test_points, args.windows, args.seed)
        for name in BASELINES:
            print(f"{label:<5} {name:<11} {'':>8} {ours[name]['mape_median']:8.3f}")
        for name in PUBLISHED:
            a, b = sk[name]["mape_median"], ours[name]["mape_median"]
            diff = (b - a) / a
            ta, tb = sk[name]["fit_predict_s"], ours[name]["fit_predict_s"]
            totals[name][0] += ta
            totals[name][1] += tb
            mark = "" if abs(diff) <= args.tolerance else "  <-- misses the 10 % criterion"
            print(f"{label:<5} {name:<11} {a:8.3f} {b:8.3f} {diff:+7.1%}   {ta:8.4f} {tb:8.4f} "
                  f"{ta / max(tb, 1e-9):7.1f}x{mark}")
            if mark:
                failures.append(f"{label}/{name}")
        print(f"      (test points per window: {test}; fit points: {fit})")
    print("-" * len(header))
    for name in PUBLISHED:
        ta, tb = totals[name]
        print(f"{'all':<5} {name:<11} {'':>8} {'':>8} {'':>7}   {ta:8.4f} {tb:8.4f} "
              f"{ta / max(tb, 1e-9):7.1f}x")
    if failures:
        print(f"FAIL: median MAPE more than {args.tolerance:.0%} from scikit-learn's: "
              + ", ".join(failures))
        return 1
    print(f"OK: every published model's median MAPE is within {args.tolerance:.0%} of "
          "scikit-learn's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
