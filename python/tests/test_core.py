"""The module itself: version, errors, clocks, backends and the EnergyMonitor."""

import csv
import math
import os
import re

import pytest

import chase


def cmake_version():
    with open(os.path.join(os.environ.get("CHASE_SOURCE_DIR", "."), "CMakeLists.txt")) as f:
        return re.search(r"project\(chase VERSION ([0-9.]+)", f.read()).group(1)


def test_version_is_the_cmake_project_version():
    assert chase.__version__ == cmake_version()


def test_errors_carry_the_full_message_and_a_code():
    with pytest.raises(chase.InvalidArgumentError) as info:
        chase.TrainingController(chase.simulated_gpus(1), period="ten minutes")
    assert info.value.code == "invalid_argument"
    assert "period" in str(info.value) and "ten minutes" in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, chase.ChaseError)


def test_error_classes_derive_from_the_matching_builtins():
    assert issubclass(chase.NotFoundError, LookupError)
    assert issubclass(chase.PermissionDeniedError, PermissionError)
    assert issubclass(chase.IoError, OSError)
    assert issubclass(chase.ParseError, ValueError)
    assert issubclass(chase.HookOrderError, RuntimeError)


def test_missing_file_maps_to_a_chase_error_naming_it(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(chase.ChaseError) as info:
        chase.load_carbon_csv(missing)
    assert str(missing) in str(info.value)
    assert info.value.code in ("not_found", "io")


def test_manual_clock_moves_only_when_told(clock):
    start = clock.utc_now()
    clock.advance(90.5)
    assert clock.utc_now() - start == pytest.approx(90.5)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_simulated_gpus_follow_the_profile(sim):
    profile = chase.synthetic_demo_profile()
    assert sim.backend_name == "simulated"
    assert sim.gpu_count == 2
    info = sim.gpus()[0]
    assert info["max_power_limit_w"] == profile.max_limit_w
    sim.set_power_limit_w(1, profile.min_limit_w)
    assert sim.power_limit_w(1) == profile.min_limit_w
    assert sim.throughput(1) == pytest.approx(profile.throughput_at(profile.min_limit_w))


def test_out_of_range_limit_is_a_value_error_naming_the_gpu(sim):
    with pytest.raises(ValueError) as info:
        sim.set_power_limit_w(0, 5000)
    assert "GPU 0" in str(info.value) and "5000" in str(info.value)


def test_energy_monitor_measures_windows_exactly_in_virtual_time(sim, clock):
    monitor = chase.EnergyMonitor(sim, None, clock=clock)
    power = sim.power_w(0)
    monitor.begin_window("epoch")
    clock.advance(10)
    m = monitor.end_window("epoch")
    assert m.time_s == pytest.approx(10)
    assert [g.index for g in m.gpus] == [0, 1]
    assert m.gpus[0].energy_j == pytest.approx(10 * power)
    assert m.gpus[0].method == "counter"
    assert m.total_energy_j == pytest.approx(20 * power)
    assert m.complete


def test_window_names_are_checked(sim, clock):
    monitor = chase.EnergyMonitor(sim, None, clock=clock)
    with pytest.raises(chase.NotFoundError) as info:
        monitor.end_window("never-opened")
    assert "never-opened" in str(info.value)
    monitor.begin_window("a")
    with pytest.raises(chase.AlreadyExistsError):
        monitor.begin_window("a")
    with pytest.raises(TypeError) as info:
        monitor.window(3)
    assert "name" in str(info.value)


def test_window_as_context_manager_and_decorator(sim, clock):
    monitor = chase.EnergyMonitor(sim, None, clock=clock)
    with monitor.window("block") as w:
        clock.advance(2)
    assert w.result.time_s == pytest.approx(2)

    @monitor.window("step")
    def step(seconds):
        clock.advance(seconds)
        return "done"

    assert step(1) == "done" and step(3) == "done"
    assert [r.time_s for r in step.window.results] == pytest.approx([1, 3])


def test_a_block_left_by_an_exception_cancels_its_window(sim, clock):
    monitor = chase.EnergyMonitor(sim, None, clock=clock)
    with pytest.raises(KeyError):
        with monitor.window("failing"):
            raise KeyError("boom")
    assert monitor.open_windows() == []


def test_csv_log_gets_every_window(sim, clock, tmp_path):
    log = tmp_path / "windows.csv"
    monitor = chase.EnergyMonitor(sim, None, clock=clock, csv_log=log)
    for name in ("a", "b"):
        monitor.begin_window(name)
        clock.advance(1)
        monitor.end_window(name)
    rows = list(csv.DictReader(open(log)))
    assert [r["window_name"] for r in rows] == ["a", "b"]
    assert float(rows[0]["gpu0_energy"]) == pytest.approx(sim.power_w(0))


def test_wrong_argument_types_and_values_name_the_argument(sim):
    with pytest.raises(TypeError, match="gpus"):
        chase.EnergyMonitor(gpus=42, cpus=None)
    with pytest.raises(ValueError, match="polling_period_ms"):
        chase.EnergyMonitor(sim, None, polling_period_ms=500)
    with pytest.raises(TypeError, match=r"gpu_indices\[0\]"):
        chase.EnergyMonitor(sim, None, gpu_indices=["0"])
    with pytest.raises(ValueError, match="count"):
        chase.simulated_gpus(0)


def test_rapl_over_a_fake_sysfs_tree(tmp_path):
    zone = tmp_path / "class" / "powercap" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("1000000\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    cpus = chase.open_rapl(str(tmp_path))
    assert [z["kind"] for z in cpus.zones()] == ["package"]
    before = cpus.energy_j(0)
    (zone / "energy_uj").write_text("3500000\n")
    assert cpus.energy_j(0) - before == pytest.approx(2.5)


def test_fake_nvml_backend_and_devices(fake_nvml):
    with fake_nvml.FakeNvml(gpus=3):
        gpus = chase.open_nvml()
        listing = chase.devices(gpus, None)
        assert [g["uuid"] for g in listing["gpus"]] == [f"GPU-fake-{i:04d}" for i in range(3)]
        assert listing["gpus"][0]["power_limit_w"] == 300.0
        monitor = chase.EnergyMonitor(gpus, None)
        with monitor.window("w") as w:
            pass
        assert len(w.result.gpus) == 3 and all(math.isfinite(g.energy_j) for g in w.result.gpus)
        del monitor, gpus


def test_missing_nvml_is_unavailable_naming_the_paths_tried(tmp_path):
    with pytest.raises(chase.UnavailableError) as info:
        chase.open_nvml(library_path=str(tmp_path / "libnvidia-ml.so.1"))
    assert "libnvidia-ml" in str(info.value)
    assert info.value.code == "unavailable"
