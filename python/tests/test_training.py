"""TrainingController from Python: policies, hook order, limits restored (simulated GPUs and the
fake NVML library)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import chase
from conftest import python_env


def carbon_series(clock_start):
    times = [clock_start + 1800 * i for i in range(96)]
    return chase.CarbonSeries(times, [120.0 if i % 2 == 0 else 520.0 for i in range(96)], 1800,
                              "synthetic")


def run_job(controller, sim, clock, epochs=2, steps=30, step_s=60.0, limits=None):
    profile = sim.profile(0)
    work = step_s * profile.throughput_at(profile.max_limit_w)
    controller.on_train_begin()
    for _ in range(epochs):
        controller.on_epoch_begin()
        for _ in range(steps):
            controller.on_step_begin()
            if limits is not None:
                limits.append(sim.power_limit_w(0))
            clock.advance(work / sim.throughput(0))
            controller.on_step_end()
        controller.on_epoch_end()
    controller.on_train_end()


def lowered(sim, watts=200.0):
    """The GPUs at a limit below their highest, the first one profiling sets: a limit profiling
    leaves behind shows."""
    for gpu in range(sim.gpu_count):
        sim.set_power_limit_w(gpu, watts)
    return watts


def test_profiles_every_limit_then_follows_the_chase_policy(sim, clock):
    controller = chase.TrainingController(
        sim, policy="chase", carbon=carbon_series(clock.utc_now()), clock=clock,
        warmup_steps=1, profile_steps=2)
    limits = []
    run_job(controller, sim, clock, epochs=3, steps=40, step_s=120.0, limits=limits)
    candidates = controller.candidate_limits
    assert candidates == sorted(candidates, reverse=True) and len(candidates) > 2
    assert set(candidates) <= set(limits), "every candidate limit was run while profiling"
    report = controller.report()
    assert report["policy"] == "chase" and report["profiled"] is True
    assert report["steps"] == 120
    assert set(report) >= {"time_s", "energy_j", "carbon_g", "periods", "skipped_limits"}
    assert any("chase(eta=0.5" in p["reason"] for p in report["periods"])
    # chase picks different limits when the intensity alternates between 120 and 520
    assert len({p["limits_w"][-1] for p in report["periods"][2:]}) > 1


def test_on_train_end_restores_the_limits(sim, clock):
    original = lowered(sim)
    controller = chase.TrainingController(sim, policy="static", selector="energy", clock=clock,
                                          warmup_steps=1, profile_steps=2)
    run_job(controller, sim, clock, epochs=1)
    assert controller.closed
    assert sim.power_limit_w(0) == original and sim.power_limit_w(1) == original
    assert controller.report()["policy"] == "static"


@pytest.mark.parametrize("misuse", ["step_end_first", "step_begin_twice", "after_train_end",
                                    "epoch_end_in_step"])
def test_hooks_out_of_order_raise_and_leave_no_limit_changed(sim, clock, misuse):
    original = lowered(sim)
    controller = chase.TrainingController(sim, policy="zeus", clock=clock, wait_steps=0,
                                          warmup_steps=1, profile_steps=2)
    controller.on_train_begin()
    if misuse == "step_end_first":
        bad = controller.on_step_end
    else:
        controller.on_step_begin()  # sets the first candidate: the limit is changed now
        assert sim.power_limit_w(0) != original
        clock.advance(1)
        if misuse == "step_begin_twice":
            bad = controller.on_step_begin
        elif misuse == "epoch_end_in_step":
            bad = controller.on_epoch_end
        else:
            controller.on_step_end()
            controller.on_train_end()
            bad = controller.on_step_begin
    with pytest.raises(chase.HookOrderError) as info:
        bad()
    assert "on_" in str(info.value)
    assert sim.power_limit_w(0) == original
    with pytest.raises(chase.HookOrderError):
        controller.on_step_begin()  # closed for good


def test_context_manager_restores_limits_after_an_exception(sim, clock):
    original = lowered(sim)
    with pytest.raises(ZeroDivisionError):
        with chase.TrainingController(sim, policy="zeus", clock=clock, wait_steps=0,
                                      warmup_steps=5, profile_steps=2) as controller:
            controller.on_step_begin()
            assert sim.power_limit_w(0) != original
            1 / 0
    assert sim.power_limit_w(0) == original


def test_bad_options_name_the_argument(sim):
    with pytest.raises(ValueError, match="policy"):
        chase.TrainingController(sim, policy="greedy")
    with pytest.raises(ValueError, match="eta"):
        chase.TrainingController(sim, policy="zeus", eta=1.5)
    with pytest.raises(TypeError, match="warmup_steps"):
        chase.TrainingController(sim, policy="zeus", warmup_steps=2.5)
    with pytest.raises(TypeError, match="gpus"):
        chase.TrainingController("gpu0")
    with pytest.raises(ValueError, match="carbon"):
        chase.TrainingController(sim, policy="chase", carbon="no-such-provider-or-file")
    with pytest.raises(chase.InvalidArgumentError, match="planner"):
        chase.TrainingController(sim, policy="planner", carbon=carbon_series(0.0))
    with pytest.raises(ValueError, match="selector"):
        chase.TrainingController(sim, policy="chase", selector="energy")


def test_carbon_from_a_csv_file(sim, clock, tmp_path):
    path = tmp_path / "ci.csv"
    start = clock.utc_now()
    rows = ["timestamp,carbon_intensity"] + [
        f"{chase.format_utc_time(start + 1800 * i)},{300 + 10 * i}" for i in range(96)]
    path.write_text("\n".join(rows) + "\n")
    controller = chase.TrainingController(sim, policy="chase", carbon=str(path), clock=clock,
                                          warmup_steps=1, profile_steps=2)
    run_job(controller, sim, clock, epochs=1)
    assert controller.report()["periods"][0]["carbon_intensity"] == 300


# ---- Over the fake NVML: a training script in a child process ----------------------------------

SCRIPT = textwrap.dedent("""
    import sys, time
    import chase
    mode = sys.argv[1]
    controller = chase.TrainingController(chase.open_nvml(), policy="zeus", wait_steps=0,
                                          warmup_steps=1000, profile_steps=10)
    controller.on_train_begin()
    controller.on_step_begin()
    print("limit", controller.gpus.power_limit_w(0), flush=True)
    if mode == "raise":
        raise RuntimeError("the training loop failed")
    if mode == "wait":
        while True:
            time.sleep(0.05)
    controller.on_step_end()
    controller.on_train_end()
    print("done", flush=True)
""")


def start_script(tmp_path, mode):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    return subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=python_env())


@pytest.mark.parametrize("mode", ["finish", "raise", "sigint", "sigterm"])
def test_a_python_training_script_restores_the_limits(fake_nvml, tmp_path, mode):
    # The GPUs run at 250 W; the first candidate profiling sets is the highest, 300 W.
    config = {"gpus": [fake_nvml.standard_gpu(i, limit_w=250.0, default_limit_w=250.0)
                       for i in range(2)]}
    with fake_nvml.FakeNvml(config=config) as fake:
        child = start_script(tmp_path, "wait" if mode.startswith("sig") else mode)
        first = child.stdout.readline()  # the handshake: the limit is changed now
        assert first.startswith("limit 300"), child.stderr.read()
        if mode.startswith("sig"):  # the child waits: its limits are in force now
            assert set(fake.limits_in_state_file().values()) == {300.0}
        if mode == "sigint":
            child.send_signal(signal.SIGINT)
        elif mode == "sigterm":
            child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
        if mode == "finish":
            assert child.returncode == 0 and "done" in out, err
        elif mode == "raise":
            assert child.returncode == 1 and "the training loop failed" in err
        elif mode == "sigint":
            assert "KeyboardInterrupt" in err
        else:
            assert child.returncode == -signal.SIGTERM
        assert fake.limits_in_state_file() == {
            "GPU-fake-0000": 250.0, "GPU-fake-0001": 250.0}, (out, err)


# ---- Integrations ------------------------------------------------------------------------------

def test_pytorch_helpers_drive_the_hooks_and_restore_on_an_exception(sim, clock):
    import chase.pytorch
    original = lowered(sim)
    controller = chase.TrainingController(sim, policy="zeus", clock=clock, wait_steps=0,
                                          warmup_steps=1, profile_steps=2)
    seen = []
    with pytest.raises(RuntimeError, match="loss is NaN"):
        for epoch in chase.pytorch.epochs(controller, 3):
            for batch in chase.pytorch.steps(controller, range(10)):
                seen.append((epoch, batch))
                clock.advance(1)
                if epoch == 1 and batch == 3:
                    raise RuntimeError("loss is NaN")
    assert seen[-1] == (1, 3)
    assert controller.closed and sim.power_limit_w(0) == original
    assert controller.report()["steps"] == 13


def test_pytorch_helpers_finish_a_run(sim, clock):
    import chase.pytorch
    controller = chase.TrainingController(sim, policy="zeus", clock=clock, warmup_steps=1,
                                          profile_steps=2)
    for _ in chase.pytorch.epochs(controller, 2):
        for _ in chase.pytorch.steps(controller, range(5)):
            clock.advance(1)
    assert controller.closed and controller.report()["steps"] == 10


def test_hugging_face_callback_without_transformers(sim, clock):
    from types import SimpleNamespace
    from chase.huggingface import ChaseCallback
    original = lowered(sim)
    callback = ChaseCallback(gpus=sim, policy="zeus", clock=clock, wait_steps=0, warmup_steps=1,
                             profile_steps=2)
    args, state, control = SimpleNamespace(local_rank=-1), SimpleNamespace(), SimpleNamespace()
    callback.on_train_begin(args, state, control)
    callback.on_epoch_begin(args, state, control)
    for _ in range(4):
        callback.on_step_begin(args, state, control)
        clock.advance(1)
        callback.on_step_end(args, state, control)
    assert sim.power_limit_w(0) != original, "profiling changed the limit"
    callback.on_epoch_end(args, state, control)
    callback.on_train_end(args, state, control)
    assert sim.power_limit_w(0) == original
    assert callback.report["steps"] == 4
    with pytest.raises(TypeError, match="controller"):
        ChaseCallback(controller="not a controller")


def dirty_window(clock_start):
    """Half-hour points: clean (100 g/kWh) except 1 h to 2.5 h after the start (600)."""
    start = clock_start - clock_start % 1800
    times = [start + 1800 * i for i in range(32)]
    return chase.CarbonSeries(times, [600.0 if 2 <= i < 5 else 100.0 for i in range(32)], 1800,
                              "dirty window")


def deadline_job(sim, clock, pause, **options):
    profile = sim.profile(0)
    step_work = 60.0 * profile.throughput_at(profile.max_limit_w)  # a minute at the highest limit
    controller = chase.TrainingController(
        sim, policy="planner", slowdown_budget=1.0, pause=pause, total_steps=120,
        carbon=dirty_window(clock.utc_now()), clock=clock, warmup_steps=1, profile_steps=2,
        **options)
    return controller, step_work


def test_deadline_mode_idle_holds_the_loop_and_reports_the_pause(sim, clock):
    controller, step_work = deadline_job(sim, clock, "idle")
    start = clock.utc_now()
    controller.on_train_begin()
    for _ in range(120):
        controller.on_step_begin()
        assert controller.release_request() is None
        clock.advance(step_work / sim.throughput(0))
        controller.on_step_end()
    controller.on_train_end()
    report = controller.report()
    assert report["steps"] == 120
    assert report["paused_s"] >= 1800, "a dirty half hour at least is skipped"
    assert clock.utc_now() - start <= 4 * 3600 + 60, "done by the deadline (the last step's minute)"


def test_deadline_mode_release_asks_the_loop_to_exit_and_a_second_run_finishes(sim, clock,
                                                                              tmp_path):
    resume_file = tmp_path / "resume.json"
    controller, step_work = deadline_job(sim, clock, "release", resume_file=str(resume_file))
    start = clock.utc_now()
    controller.on_train_begin()
    release = None
    for _ in range(120):
        controller.on_step_begin()
        release = controller.release_request()
        if release is not None:
            controller.on_step_end()  # the hook order, without training the step
            break
        clock.advance(step_work / sim.throughput(0))
        controller.on_step_end()
    controller.on_train_end()
    assert release is not None and 0 < release["steps_done"] < 120
    assert release["resume_at"] > clock.utc_now()
    assert json.loads(resume_file.read_text())["steps_done"] == release["steps_done"]
    assert controller.release_request() == release, "still readable after on_train_end"

    clock.advance(release["resume_at"] - clock.utc_now())
    second, _ = deadline_job(sim, clock, "release", resumed=release)
    second.on_train_begin()
    for _ in range(120 - release["steps_done"]):
        second.on_step_begin()
        assert second.release_request() is None
        clock.advance(step_work / sim.throughput(0))
        second.on_step_end()
    second.on_train_end()
    assert clock.utc_now() - start <= 4 * 3600 + 60


def test_deadline_mode_bad_options_name_the_argument(sim, clock):
    with pytest.raises(ValueError, match="pause"):
        chase.TrainingController(sim, policy="planner", pause="nap", total_steps=10,
                                 carbon=carbon_series(clock.utc_now()), clock=clock)
    with pytest.raises(ValueError, match="resumed"):
        chase.TrainingController(sim, policy="planner", pause="release", total_steps=10,
                                 carbon=carbon_series(clock.utc_now()), clock=clock, resumed={})
