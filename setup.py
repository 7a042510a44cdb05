"""Builds the Python package `chase`: CMake configures this repository with only the library and
the pybind11 module (no tests, benchmarks or examples), builds the target chase_python, and the
module lands in the package next to python/chase/*.py. The version is CMakeLists.txt's
project(VERSION), the one the module reports as chase.__version__."""

import os
import re
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def cmake_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(chase VERSION ([0-9.]+)", f.read()).group(1)


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        module_dir = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        # CHASE_CMAKE_BUILD_DIR: an already configured tree (e.g. build/test) whose chase_python is
        # built and taken as it is, without configuring anything.
        existing = os.environ.get("CHASE_CMAKE_BUILD_DIR")
        build_dir = os.path.abspath(existing) if existing else os.path.join(ROOT, "build",
                                                                            "python-package")
        if not existing:
            self.configure(build_dir)
        jobs = str(os.cpu_count() or 1)
        subprocess.run(["cmake", "--build", build_dir, "--target", "chase_python", "-j", jobs],
                       check=True)
        built = os.path.join(build_dir, "python", "chase")
        module = next(f for f in os.listdir(built) if f.startswith("_chase.") and f.endswith(".so"))
        os.makedirs(module_dir, exist_ok=True)
        self.copy_file(os.path.join(built, module), self.get_ext_fullpath(ext.name))

    @staticmethod
    def configure(build_dir):
        configure = ["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                     f"-DPython_EXECUTABLE={sys.executable}", "-DCHASE_BUILD_TESTS=OFF",
                     "-DCHASE_BUILD_BENCH=OFF", "-DCHASE_BUILD_EXAMPLES=OFF",
                     "-DCHASE_BUILD_PYTHON=ON", "-DCHASE_PYTHON_MODULE_ONLY=ON"]
        if subprocess.run(["ninja", "--version"], capture_output=True).returncode == 0:
            configure += ["-G", "Ninja"]
        launcher = os.environ.get("CMAKE_CXX_COMPILER_LAUNCHER")
        if launcher:
            configure.append(f"-DCMAKE_CXX_COMPILER_LAUNCHER={launcher}")
        subprocess.run(configure, check=True)


setup(
    version=cmake_version(),
    packages=["chase"],
    package_dir={"": "python"},
    ext_modules=[Extension("chase._chase", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
