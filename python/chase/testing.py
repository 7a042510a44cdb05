"""Test helpers: the fake NVML library of the C++ tests (tests/fake_nvml), from Python.

    with chase.testing.FakeNvml(gpus=4) as fake:      # $CHASE_FAKE_NVML_LIBRARY, or library=
        backend = chase.open_nvml()
        ...
    fake.limits_in_state_file()   # {uuid: watts} the fake's driver state holds (even after a kill)

As tests/support/fake_nvml_env.h does, it writes the fake's JSON config into a temporary
directory and sets CHASE_NVML_LIBRARY, FAKE_NVML_CONFIG and FAKE_NVML_STATE (and unsets
CUDA_VISIBLE_DEVICES) until the block ends, so open_nvml() here or in a child process sees exactly
the configured GPUs. The fake reads its config when NVML is first initialised: open backends after
entering the block and close them before leaving it.
"""

import json as _json
import os as _os
import shutil as _shutil
import tempfile as _tempfile

_VARIABLES = ("CHASE_NVML_LIBRARY", "FAKE_NVML_CONFIG", "FAKE_NVML_STATE", "CUDA_VISIBLE_DEVICES")


def standard_gpu(index, **fields):
    gpu = {"name": "NVIDIA A40", "uuid": f"GPU-fake-{index:04d}", "architecture": "ampere",
           "min_limit_w": 100.0, "max_limit_w": 300.0, "default_limit_w": 300.0,
           "idle_power_w": 30.0, "max_power_w": 300.0, "load": 1.0, "energy_counter": True}
    gpu.update(fields)
    return gpu


class FakeNvml:
    def __init__(self, gpus=1, *, library=None, config=None):
        library = library or _os.environ.get("CHASE_FAKE_NVML_LIBRARY")
        if not library:
            raise RuntimeError("FakeNvml: pass library= or set CHASE_FAKE_NVML_LIBRARY to the built "
                               "libfake_nvml.so (ctest sets it)")
        self.library = library
        self.config = config if config is not None else {
            "gpus": [standard_gpu(i) for i in range(gpus)]}
        self.directory = None
        self._saved = {}

    def __enter__(self):
        self.directory = _tempfile.mkdtemp(prefix="chase-fake-nvml-")
        self.config_path = _os.path.join(self.directory, "config.json")
        self.state_path = _os.path.join(self.directory, "state.json")
        with open(self.config_path, "w") as f:
            _json.dump(self.config, f)
        self._saved = {name: _os.environ.get(name) for name in _VARIABLES}
        _os.environ["CHASE_NVML_LIBRARY"] = self.library
        _os.environ["FAKE_NVML_CONFIG"] = self.config_path
        _os.environ["FAKE_NVML_STATE"] = self.state_path
        _os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        return self

    def __exit__(self, *exc):
        for name, value in self._saved.items():
            if value is None:
                _os.environ.pop(name, None)
            else:
                _os.environ[name] = value
        _shutil.rmtree(self.directory, ignore_errors=True)
        return False

    def limits_in_state_file(self):
        """{uuid: limit in W} after the last limit change of any process; {} before any."""
        try:
            with open(self.state_path) as f:
                state = _json.load(f)
        except FileNotFoundError:
            return {}
        return {gpu["uuid"]: gpu["limit_mw"] / 1000.0 for gpu in state["gpus"]}
