"""Measuring named code windows with chase's EnergyMonitor, from Python.

On a machine with NVIDIA GPUs (and readable RAPL counters) it measures them; elsewhere, or with
--simulate, it measures two simulated GPUs in virtual time (the numbers are then made up).

    python3 examples/python/measure_windows.py [--simulate] [--csv windows.csv]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chase  # noqa: E402
from _common import SimulatedJob  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulate", action="store_true")
    parser.add_argument("--csv", default=None, help="append every window to this CSV")
    args = parser.parse_args()

    job = None
    if not args.simulate:
        try:
            gpus = chase.open_nvml()
        except chase.UnavailableError as e:
            print(f"no NVML ({e.code}); measuring simulated GPUs instead")
            args.simulate = True
    if args.simulate:
        job = SimulatedJob(gpu_count=2, step_seconds=1.0)
        monitor = chase.EnergyMonitor(job.gpus, None, clock=job.clock, csv_log=args.csv)
    else:
        monitor = chase.EnergyMonitor(gpus, "auto", csv_log=args.csv)

    def work():  # stands in for an epoch of training
        if job:
            for _ in range(30):
                job.run_step()
        else:
            sum(i * i for i in range(2_000_000))

    for epoch in range(2):
        with monitor.window(f"epoch {epoch}") as window:  # a context manager ...
            work()
        m = window.result
        print(f"epoch {epoch}: {m.time_s:.2f} s, total {m.total_energy_j:.1f} J")
        for gpu in m.gpus:
            print(f"  GPU {gpu.index} {gpu.name}: {gpu.energy_j:.1f} J ({gpu.method})")
        for zone in m.cpus:
            print(f"  CPU {zone.package} {zone.kind}: {zone.energy_j:.1f} J")

    @monitor.window("evaluate")  # ... and a decorator
    def evaluate():
        work()

    evaluate()
    print(f"evaluate: {evaluate.window.result.total_energy_j:.1f} J total")


if __name__ == "__main__":
    main()
