"""examples/python: the PyTorch example trains a real model, and its run report equals the C++
TrainingController's on the same simulated job (python/tests/reference_job.cpp)."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from conftest import EXAMPLES_DIR, python_env

ARGS = ["--epochs", "3", "--steps", "40", "--step-seconds", "120"]


def run(args, **kwargs):
    # Its own process group, killed whole on a timeout: a launcher's workers (torchrun's ranks)
    # must not outlive a failed test, still holding its output pipes or spinning.
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(f"timed out after 240 s: {args}\nstdout:\n{stdout}\nstderr:\n{stderr}")
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def numbers_after(text, label):
    return [float(line.split(label)[1].split()[0]) for line in text.splitlines() if label in line]


@pytest.mark.parametrize("policy", ["chase", "zeus", "planner"])
def test_pytorch_loop_report_equals_the_cpp_controller(policy):
    pytest.importorskip("torch")
    reference = os.environ.get("CHASE_REFERENCE_JOB")
    if not reference:
        pytest.skip("CHASE_REFERENCE_JOB not set (ctest sets it)")
    python = run([sys.executable, os.path.join(EXAMPLES_DIR, "pytorch_loop.py"), *ARGS,
                  "--policy", policy], env=python_env())
    assert python.returncode == 0, python.stderr
    cpp = run([reference, *ARGS, "--policy", policy])
    assert cpp.returncode == 0, cpp.stderr
    python_report = json.loads(python.stdout.strip().splitlines()[-1])
    json_start = 0 if cpp.stdout.startswith("{") else cpp.stdout.index("\n{") + 1  # after the log
    cpp_report = json.loads(cpp.stdout[json_start:])
    assert python_report == cpp_report
    assert python_report["steps"] == 120 and python_report["profiled"]
    if policy == "chase":
        assert any("chase(eta=0.5" in p["reason"] for p in python_report["periods"])
        losses = numbers_after(python.stdout, "mean loss ")
        assert len(losses) == 3 and losses[-1] < losses[0], "the CNN learns"
        assert numbers_after(python.stdout, "held-out accuracy ")[0] > 0.8
        assert "SIMULATED GPU" in python.stdout


def test_measure_windows_example():
    result = run([sys.executable, os.path.join(EXAMPLES_DIR, "measure_windows.py")],
                 env=python_env())
    assert result.returncode == 0, result.stderr
    assert "epoch 0" in result.stdout and "total" in result.stdout


def test_hf_callback_example():
    result = run([sys.executable, os.path.join(EXAMPLES_DIR, "hf_callback.py")], env=python_env())
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["steps"] == 60 and report["policy"] == "static"  # zeus(η) is static


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ddp_torchrun_example_with_two_ranks():
    pytest.importorskip("torch.distributed")
    # --redirects/--tee 2: Debian's torch 1.13 launcher cannot parse its default "0" on Python 3.11.
    # A free master port, not the default 29500: two launches on one machine at once (two test
    # runs, a user's job) would otherwise share a rendezvous, and its ranks wait for each other.
    result = run([sys.executable, "-m", "torch.distributed.run", "--redirects", "2", "--tee", "2",
                  "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
                  "--nproc_per_node", "2", os.path.join(EXAMPLES_DIR, "ddp_torchrun.py")],
                 env=dict(python_env(), OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["steps"] == 60 and report["policy"] == "chase"
