"""Per-call cost of training-loop hooks and measurement windows called from Python
(docs/BENCHMARKS.md, "Python hooks").

The harness is two functions taking the callables, so a peer's hooks drop in unchanged:

    time_step_hooks(on_step_begin, on_step_end)     -> ns per on_step_begin + on_step_end pair
    time_window_pair(begin_window, end_window)      -> ns per begin_window + end_window pair

Each runs the pair in a tight loop after a warm-up and reports the best of `repeats` rounds of
`iterations` pairs, in CPU time of this process (time.process_time_ns: on a shared, loaded machine
wall time measures the other jobs; the C++ benchmarks report CPU time for the same reason; the
monitor's and controller's own threads are in it too). The figure includes the Python loop and
call overhead a training loop pays; `loop_overhead_ns` is that of two empty Python functions. main() measures chase:
the TrainingController's hooks in the steady state (profiling done, inside a period, so no limit
change and no window: what almost every step costs) over 8 simulated GPUs, and an EnergyMonitor
window pair over 8 GPUs on the fake NVML library (CHASE_FAKE_NVML_LIBRARY or --fake-nvml).
With Zeus installed (`import zeus`), --zeus measures ZeusMonitor and GlobalPowerLimitOptimizer's
callbacks on the same harness (they need real GPUs).

    PYTHONPATH=build/release/python python3 bench/python_hooks.py --fake-nvml build/release/tests/libfake_nvml.so
"""

import argparse
import json
import os
import sys
import time


def _best_ns_per_pair(first, second, iterations, repeats):
    for _ in range(min(iterations, 10_000)):  # warm-up
        first()
        second()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time_ns()
        for _ in range(iterations):
            first()
            second()
        best = min(best, (time.process_time_ns() - start) / iterations)
    return best


def time_step_hooks(on_step_begin, on_step_end, iterations=200_000, repeats=7):
    return _best_ns_per_pair(on_step_begin, on_step_end, iterations, repeats)


def time_window_pair(begin_window, end_window, name="step", iterations=50_000, repeats=7):
    return _best_ns_per_pair(lambda: begin_window(name), lambda: end_window(name), iterations,
                             repeats)


def _loop_overhead_ns(iterations=200_000, repeats=7):
    def nothing():
        pass
    return _best_ns_per_pair(nothing, nothing, iterations, repeats)


def chase_step_hooks(policy, gpus=8):
    import chase
    clock = chase.ManualClock(chase.to_unix_seconds("2026-01-01T00:00:00Z"))
    sim = chase.simulated_gpus(gpus, chase.synthetic_demo_profile(), clock)
    sim.set_all_busy(True)
    times = [clock.utc_now() + 1800 * i for i in range(96)]
    carbon = chase.CarbonSeries(times, [300.0] * 96, 1800, "flat (made up)")
    controller = chase.TrainingController(sim, policy=policy, carbon=carbon, clock=clock,
                                          warmup_steps=1, profile_steps=1, total_steps=10**9)
    while controller.optimizer_state != "done":  # profile, in virtual time
        controller.on_step_begin()
        clock.advance(1.0)
        controller.on_step_end()
    clock.advance(1.0)  # the clock now stands still: every later step is inside one period
    return controller, time_step_hooks(controller.on_step_begin, controller.on_step_end)


def chase_window_pair(library, gpus=8):
    import chase
    import chase.testing
    with chase.testing.FakeNvml(gpus=gpus, library=library):
        backend = chase.open_nvml()
        monitor = chase.EnergyMonitor(backend, None)
        result = time_window_pair(monitor.begin_window, monitor.end_window)
        del monitor, backend
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fake-nvml", default=os.environ.get("CHASE_FAKE_NVML_LIBRARY"))
    parser.add_argument("--zeus", action="store_true", help="also measure Zeus (needs GPUs)")
    args = parser.parse_args()
    results = {"python": sys.version.split()[0],
               "loop_overhead_ns": round(_loop_overhead_ns(), 1)}
    for policy in ("zeus", "chase"):
        _, ns = chase_step_hooks(policy)
        results[f"step_hooks_{policy}_8gpu_ns"] = round(ns, 1)
    if args.fake_nvml:
        results["window_pair_fake_nvml_8gpu_ns"] = round(chase_window_pair(args.fake_nvml), 1)
    if args.zeus:
        from zeus.monitor import ZeusMonitor
        monitor = ZeusMonitor()
        results["zeus_window_pair_ns"] = round(
            time_window_pair(monitor.begin_window, monitor.end_window), 1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
