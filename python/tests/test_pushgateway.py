"""TrainingController(pushgateway=...): the run's metrics reach a real Pushgateway (Debian's
prometheus-pushgateway on 127.0.0.1, skipped when absent), and bad values are clear errors."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

import chase

PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.read().decode()
    except OSError:
        return None


@pytest.fixture
def pushgateway():
    if not os.path.exists(PUSHGATEWAY):
        pytest.skip(f"{PUSHGATEWAY} is not installed (scripts/install-deps installs it)")
    directory = tempfile.mkdtemp(prefix="chase_pushgateway_")
    port = free_port()
    process = subprocess.Popen(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}",
         f"--persistence.file={directory}/pushgateway.data", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while get(url + "/-/ready") is None:
            assert process.poll() is None and time.monotonic() < deadline, \
                "the Pushgateway did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def sample(url, name, job):
    text = get(url + "/metrics") or ""
    for line in text.splitlines():
        match = re.fullmatch(name + r"\{([^}]*)\} (\S+)", line)
        if match and f'job="{job}"' in match.group(1):
            return float(match.group(2))
    return None


def carbon_series(start):
    times = [start + 1800 * i for i in range(8)]
    return chase.CarbonSeries(times, [100.0 if i % 2 == 0 else 600.0 for i in range(8)], 1800,
                              "alternating")


def test_the_run_metrics_reach_the_pushgateway(sim, clock, pushgateway):
    controller = chase.TrainingController(
        sim, policy="chase", carbon=carbon_series(clock.utc_now()), clock=clock,
        warmup_steps=1, profile_steps=2,
        pushgateway={"url": pushgateway, "job": "py-run", "instance": "py-node"})
    profile = sim.profile(0)
    work = 60.0 * profile.throughput_at(profile.max_limit_w)
    controller.on_train_begin()
    for _ in range(80):  # about 80 minutes: two periods close, the third at on_train_end
        controller.on_step_begin()
        clock.advance(work / sim.throughput(0))
        controller.on_step_end()
    controller.on_train_end()
    controller.close()  # waits for the final push
    report = controller.report()
    assert sample(pushgateway, "chase_training_running", "py-run") == 0
    assert sample(pushgateway, "chase_training_periods_total", "py-run") == len(report["periods"])
    assert sample(pushgateway, "chase_training_energy_joules_total", "py-run") == \
        pytest.approx(report["energy_j"], rel=1e-12)
    assert sample(pushgateway, "chase_training_carbon_grams_total", "py-run") == \
        pytest.approx(report["carbon_g"], rel=1e-12)
    text = get(pushgateway + "/metrics")
    assert 'instance="py-node",job="py-run",policy="chase"' in text


def test_a_url_alone_is_enough_and_the_job_defaults_to_chase(sim, clock, pushgateway):
    with chase.TrainingController(sim, policy="default", clock=clock,
                                  pushgateway=pushgateway) as controller:
        controller.on_train_begin()
        controller.on_step_begin()
        clock.advance(10)
        controller.on_step_end()
        controller.on_train_end()
    assert sample(pushgateway, "chase_training_running", "chase") == 0


@pytest.mark.parametrize("value, message", [
    ("127.0.0.1:9091", r"not an http\(s\) URL"),
    ({"job": "x"}, "must be a URL"),
    ({"url": "http://127.0.0.1:9091", "jobname": "x"}, "unknown key"),
    (42, "must be a URL"),
])
def test_bad_pushgateway_values_are_clear_errors(sim, clock, value, message):
    with pytest.raises(ValueError, match=message):
        chase.TrainingController(sim, policy="default", clock=clock, pushgateway=value)


def test_an_unreachable_pushgateway_never_holds_the_loop(sim, clock):
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens
    start = time.monotonic()
    controller = chase.TrainingController(
        sim, policy="chase", carbon=carbon_series(clock.utc_now()), clock=clock,
        warmup_steps=1, profile_steps=2, pushgateway=url)
    profile = sim.profile(0)
    work = 60.0 * profile.throughput_at(profile.max_limit_w)
    controller.on_train_begin()
    for _ in range(200):
        controller.on_step_begin()
        clock.advance(work / sim.throughput(0))
        controller.on_step_end()
    controller.on_train_end()
    controller.close()
    assert time.monotonic() - start < 10
    assert len(controller.report()["periods"]) >= 6
