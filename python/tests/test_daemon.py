"""CHASE_DAEMON from Python: TrainingController(gpus=None) and chase.open_gpus() go through chased
(the daemon of this build over the fake NVML), so a job without root sets limits as leases that
the daemon restores when the controller closes; a daemon that does not answer is an error."""

import os
import subprocess
import tempfile
import time

import pytest

import chase


@pytest.fixture
def chased(fake_nvml):
    path = os.environ.get("CHASED_PATH")
    if not path:
        pytest.skip("CHASED_PATH not set (ctest sets it)")
    with fake_nvml.FakeNvml(gpus=2) as fake:
        directory = tempfile.mkdtemp(prefix="chase-daemon-")
        socket = os.path.join(directory, "chased.sock")
        out = open(os.path.join(directory, "out.txt"), "w+")
        process = subprocess.Popen(
            [path, "--socket", socket, "--no-state", "--allow-control-gpus",
             f"uid:{os.getuid()}"], stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while "chased: ready" not in open(out.name).read():
                assert process.poll() is None and time.monotonic() < deadline, \
                    open(out.name).read()
                time.sleep(0.05)
            yield fake, "unix:" + socket
        finally:
            process.kill()
            process.wait()
            out.close()


def uuid(index):
    return f"GPU-fake-{index:04d}"


def test_a_controller_without_gpus_goes_through_the_daemon(chased, monkeypatch):
    fake, address = chased
    monkeypatch.setenv("CHASE_DAEMON", address)
    controller = chase.TrainingController(policy="default", limit_w=180.0)
    assert controller.gpus.backend_name == "chased"
    controller.on_train_begin()
    controller.on_step_begin()
    controller.on_step_end()
    assert fake.limits_in_state_file()[uuid(0)] == 180.0  # set by the daemon, not by this process
    controller.on_train_end()
    controller.close()
    del controller
    import gc
    gc.collect()  # the backend's connection closes: the daemon restores the limit
    deadline = time.monotonic() + 2
    while fake.limits_in_state_file()[uuid(0)] != 300.0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.limits_in_state_file()[uuid(0)] == 300.0


def test_open_gpus_without_chase_daemon_is_nvml(fake_nvml, monkeypatch):
    monkeypatch.delenv("CHASE_DAEMON", raising=False)
    with fake_nvml.FakeNvml(gpus=3):
        gpus = chase.open_gpus()
        assert gpus.backend_name != "chased" and gpus.gpu_count == 3
        del gpus


def test_a_daemon_that_does_not_answer_is_an_error(fake_nvml, monkeypatch, tmp_path):
    monkeypatch.setenv("CHASE_DAEMON", f"unix:{tmp_path}/nobody.sock")
    with fake_nvml.FakeNvml(gpus=1):
        with pytest.raises(chase.UnavailableError, match="nobody.sock"):
            chase.TrainingController(policy="default")
