"""Data parallel across processes: TorchDistributedCoordinator over gloo on CPU. Every rank drives
its own simulated GPU in virtual time; rank r's draws (r+1)×5 % more power, so the ranks measure
different windows and only the coordinator makes them agree (they run in step, as DDP ranks do)."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from conftest import python_env

torch = pytest.importorskip("torch")
pytest.importorskip("torch.distributed")

WORKER = textwrap.dedent("""
    import datetime, json, os, sys
    import torch.distributed as dist
    import chase
    from chase.distributed import TorchDistributedCoordinator

    die_at = int(sys.argv[1])  # this rank's step at which it dies (-1: never)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=20))
    rank = dist.get_rank()
    clock = chase.ManualClock(chase.to_unix_seconds("2026-01-01T00:00:00Z"))
    base = chase.synthetic_demo_profile()
    scale = 1 + 0.05 * (rank + 1)
    profile = chase.PowerProfile([(l, x, p * scale) for l, x, p in base.points], "sim", "scaled")
    gpus = chase.simulated_gpus(1, profile, clock)
    gpus.set_all_busy(True)
    original = gpus.power_limit_w(0)
    times = [clock.utc_now() + 1800 * i for i in range(96)]
    carbon = chase.CarbonSeries(times, [120.0 if i % 2 == 0 else 520.0 for i in range(96)], 1800)
    controller = chase.TrainingController(
        gpus, policy="chase", carbon=carbon, clock=clock, warmup_steps=1, profile_steps=2,
        coordinator=TorchDistributedCoordinator())
    work = 60 * gpus.throughput(0)
    limits = []
    try:
        controller.on_train_begin()
        for step in range(120):
            if step == die_at:
                os._exit(3)
            controller.on_step_begin()
            limits.append(gpus.power_limit_w(0))
            clock.advance(work / gpus.throughput(0))
            controller.on_step_end()
        controller.on_train_end()
        print(json.dumps({"rank": rank, "limits": limits, "report": controller.report()}))
    except chase.UnavailableError as e:
        print(json.dumps({"rank": rank, "error": str(e), "code": e.code,
                          "restored": gpus.power_limit_w(0) == original}))
    # The outcome is out: leave without the interpreter's teardown. Debian's torch 1.13 aborts in
    # it now and then (gdb: a gloo worker frees a Python-owned tensor during Py_FinalizeEx, its
    # PyEval_AcquireThread calls pthread_exit, and the forced unwind through a noexcept frame is
    # std::terminate: "terminate called without an active exception"); the DDP example does the same.
    sys.stdout.flush()
    os._exit(0)
""")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(tmp_path, world, die_rank=-1, die_at=-1):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = free_port()
    children = []
    for rank in range(world):
        env = python_env()
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                   WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
        children.append(subprocess.Popen(
            [sys.executable, str(script), str(die_at if rank == die_rank else -1)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        results.append((child.returncode, out, err))
    return results


@pytest.mark.parametrize("world", [2, 4])
def test_every_rank_applies_the_same_limit_sequence(tmp_path, world):
    results = run_ranks(tmp_path, world)
    outputs = []
    for code, out, err in results:
        assert code == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    sequences = [o["limits"] for o in outputs]
    assert all(s == sequences[0] for s in sequences), sequences
    assert len(set(sequences[0])) > 2, "profiling walked the limits, chase changed them"
    # one decision per period, the same on every rank, from the same (combined) profile: each
    # rank's own windows differ, so uncombined candidates' energies would differ too
    decided = [[(p["limits_w"], p["reason"], p["candidates"]) for p in o["report"]["periods"]]
               for o in outputs]
    assert all(d == decided[0] for d in decided)
    assert any(p["candidates"] for p in outputs[0]["report"]["periods"]), "chase decided"


# Step 4: while profiling (the C++ controller throws from the failed combine()); step 60: after it,
# where the C++ control policy would keep the limit in force at the next period's agree() and the
# binding stops the job instead, since the process group is broken.
@pytest.mark.parametrize("die_at", [4, 60])
def test_a_dead_rank_makes_the_others_raise_with_limits_restored(tmp_path, die_at):
    results = run_ranks(tmp_path, 3, die_rank=1, die_at=die_at)
    assert results[1][0] == 3
    for rank in (0, 2):
        code, out, err = results[rank]
        assert code == 0, err
        outcome = json.loads(out.strip().splitlines()[-1])
        assert outcome["code"] == "unavailable", outcome
        assert "collective failed" in outcome["error"]
        assert outcome["restored"] is True
