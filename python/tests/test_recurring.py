"""simulate_recurring from Python: the C++ simulator's numbers, the same as `chase simulate
recurring` on the same trace and seed."""

import json
import os
import subprocess

import pytest

import chase
from chase import forecasting


def write_trace(directory, batch_sizes=(128, 256, 512, 1024), runs=6):
    """A Zeus-format trace (imagenet/resnet50 on an "a40", limits 100-300 W): larger batches run
    an epoch faster at higher power and need more epochs; `runs` recorded training paths each."""
    power = ["dataset,network,batch_size,optimizer,power_limit,time_per_epoch,average_power"]
    train = ["dataset,network,batch_size,optimizer,learning_rate,run,target_metric,target_epoch"]
    for b in batch_sizes:
        for limit in (100, 150, 200, 250, 300):
            time = 100.0 * 256 / b * (300 / limit) ** 0.5
            power.append(f"imagenet,resnet50,{b},adadelta,{limit},{time:.3f},{limit * 0.8:.1f}")
        for run in range(runs):
            train.append(f"imagenet,resnet50,{b},adadelta,0.1,{run},0.65,{8 + b // 128 + run % 3}")
    (directory / "summary_power_a40.csv").write_text("\n".join(power) + "\n")
    (directory / "summary_train.csv").write_text("\n".join(train) + "\n")


def test_trace_lists_its_configurations(tmp_path):
    write_trace(tmp_path)
    trace = chase.load_zeus_trace(tmp_path, "a40", "imagenet")
    assert trace.batch_sizes == [128, 256, 512, 1024]
    assert trace.power_limits == [100, 150, 200, 250, 300]
    assert chase._chase.default_recurrences(trace) == 2 * 4 * 5
    assert trace.default_config["batch_size"] == 256


def test_same_numbers_as_the_cli(tmp_path):
    cli = os.environ.get("CHASE_CLI_PATH")
    if not cli:
        pytest.skip("CHASE_CLI_PATH not set (ctest sets it)")
    write_trace(tmp_path)
    trace = chase.load_zeus_trace(tmp_path, "a40", "imagenet")
    result = chase.simulate_recurring(trace, eta=0.3, beta=2.0, seed=7)
    out = subprocess.run([cli, "simulate", "recurring", "--trace-dir", str(tmp_path), "--gpu",
                          "a40", "--workload", "imagenet", "--eta", "0.3", "--seed", "7",
                          "--json"], check=True, capture_output=True, text=True).stdout
    expected = json.loads(out)
    summary = result["summary"]
    assert summary["recurrences"] == expected["summary"]["recurrences"] == 40
    assert summary["batch_size"] == expected["summary"]["converged"]["batch_size"]
    assert summary["power_limit_w"] == expected["summary"]["converged"]["power_limit_w"]
    assert 100 * summary["energy_reduction"] == pytest.approx(
        expected["summary"]["energy_reduction_pct"])
    assert [r["batch_size"] for r in result["history"]] == [
        r["batch_size"] for r in expected["history"]]
    pd = pytest.importorskip("pandas")
    frame = forecasting.recurring_frame(result)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 40


def test_bad_options_name_the_argument(tmp_path):
    write_trace(tmp_path)
    trace = chase.load_zeus_trace(tmp_path, "a40", "imagenet")
    with pytest.raises(ValueError, match="beta"):
        chase.simulate_recurring(trace, beta=0.5)
    with pytest.raises(ValueError, match="recurrences"):
        chase.simulate_recurring(trace, recurrences=0)
    with pytest.raises(TypeError, match="trace"):
        chase.simulate_recurring(str(tmp_path))
    with pytest.raises(chase.IoError, match="no-such"):
        chase.load_zeus_trace(tmp_path / "no-such", "a40", "imagenet")
