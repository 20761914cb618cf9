"""Build step of the wheel: the simulated board's firmware (bb_sim) goes into the package.

The project's metadata lives in pyproject.toml; this file only adds two commands:

- ``build_py`` also builds the native firmware — the C core, the sim port and zcbor's C runtime
  (from the zcbor package installed as a build requirement) — with ``make -C firmware sim`` and
  the local C compiler, into the build directory (never the source tree), and puts the binary at
  ``blebridge/sim/bin/bb_sim``, where :func:`blebridge.sim.launcher.firmware_path` finds it.
  Editable installs (``pip install -e``, what ``make venv`` does) skip it: a checkout runs
  ``make firmware`` and the launcher uses ``build/sim/bb_sim``.
- ``bdist_wheel`` tags the wheel ``py3-none-<platform>``: it holds a native executable but no
  extension module, so it fits every Python 3 on that platform, and no other platform.

The sim port needs Linux (pseudo-terminals, prctl); elsewhere the build stops with that reason.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools.errors import CompileError, PlatformError

ROOT = Path(__file__).resolve().parent
#: Where the firmware binary goes inside the package (relative to the build's lib directory).
PACKAGED_FIRMWARE = Path("blebridge", "sim", "bin", "bb_sim")


def _tool(env_name: str, default: str, why: str) -> list[str]:
    """The command named by the environment variable (CC, MAKE) or the default, checked on PATH."""
    command = shlex.split(os.environ.get(env_name) or default)
    if not command or shutil.which(command[0]) is None:
        raise CompileError(
            f"building blebridge from source needs {why} ({env_name}={command[0] if command else ''!r} "
            f"not found on PATH) to build the simulated board firmware bb_sim: install one "
            f"(Debian/Ubuntu: apt install gcc make), or install a prebuilt blebridge wheel")
    return command


def build_firmware(build_dir: Path) -> Path:
    """Build bb_sim under ``build_dir`` with the firmware's own makefile; returns its path."""
    if not sys.platform.startswith("linux"):
        raise PlatformError(f"the simulated board firmware bb_sim runs on Linux only (this is "
                            f"{sys.platform}); build blebridge on Linux, or use a real board")
    cc = _tool("CC", "cc", "a C compiler")
    make = _tool("MAKE", "make", "make")
    # BUILD moves every object out of the source tree. WERROR is emptied: the checkout's builds
    # keep -Werror for our own code, but a user's newer compiler may warn where ours does not,
    # and that must not stop an install. PYTHON is this (build) interpreter, which has zcbor.
    cmd = make + ["-C", str(ROOT / "firmware"), "sim", f"BUILD={build_dir}", "WERROR=",
                  f"PYTHON={sys.executable}", f"CC={shlex.join(cc)}"]
    print("building the simulated board firmware:", shlex.join(cmd), flush=True)
    result = subprocess.run(cmd)
    binary = build_dir / "sim" / "bb_sim"
    if result.returncode != 0 or not binary.is_file():
        raise CompileError(f"building the simulated board firmware failed (make exited with "
                           f"status {result.returncode}); the compiler's messages are above")
    return binary


class BuildPyWithFirmware(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        build_temp = Path(self.get_finalized_command("build").build_temp).resolve()
        binary = build_firmware(build_temp / "firmware")
        target = Path(self.build_lib) / PACKAGED_FIRMWARE
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(binary, target)
        os.chmod(target, 0o755)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs.append(str(Path(self.build_lib) / PACKAGED_FIRMWARE))
        return outputs


class BinaryDistribution(Distribution):
    """A native binary inside: installed to platlib, and the wheel gets a platform tag."""

    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    def get_tag(self) -> tuple[str, str, str]:
        _python, _abi, plat = super().get_tag()
        return "py3", "none", plat


setup(distclass=BinaryDistribution,
      cmdclass={"build_py": BuildPyWithFirmware, "bdist_wheel": PlatformWheel})
