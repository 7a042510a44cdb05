"""Shared fixtures of the Python tests (run through ctest; see python/CMakeLists.txt)."""

import os
import sys

import pytest

import chase

SOURCE_DIR = os.environ.get("CHASE_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
EXAMPLES_DIR = os.path.join(SOURCE_DIR, "examples", "python")


@pytest.fixture
def clock():
    return chase.ManualClock(chase.to_unix_seconds("2026-01-01T00:00:00Z"))


@pytest.fixture
def sim(clock):
    """Two simulated GPUs on a virtual clock, busy."""
    gpus = chase.simulated_gpus(2, chase.synthetic_demo_profile(), clock)
    gpus.set_all_busy(True)
    return gpus


@pytest.fixture
def fake_nvml():
    if not os.environ.get("CHASE_FAKE_NVML_LIBRARY"):
        pytest.skip("CHASE_FAKE_NVML_LIBRARY not set (ctest sets it)")
    import chase.testing
    return chase.testing


def python_env():
    """The environment a child Python needs to import the same chase."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env
