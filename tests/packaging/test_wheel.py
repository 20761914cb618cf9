"""blebridge as a user installs it: sdist → platform wheel → a fresh venv outside the checkout.

The module builds the sdist (``python -m build --sdist``), then a wheel from that sdist (so the
wheel is what the sdist's build makes with the local compiler), and installs
``blebridge[sim]`` from it into a new virtual environment in a temporary directory. The checkout
is on no path there: the installed package must bring its own simulated board firmware.

Marked ``wheel`` (``pytest -m wheel`` runs only these; ``-m "not wheel"`` skips them). Needs the
network or pip's cache for the build requirements and ``bumble``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = ROOT / "host" / "blebridge"
#: Seconds for one packaging step (an isolated build, a venv with pip install); the machine may
#: be loaded and pip may download.
STEP_TIMEOUT_S = 300
#: Seconds the two-board script may take (air and boards start-up included).
SCRIPT_TIMEOUT_S = 120
FIRMWARE_IN_WHEEL = "blebridge/sim/bin/bb_sim"


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, **kwargs)
    assert proc.returncode == 0, (f"{' '.join(map(str, cmd))}: exit {proc.returncode}\n"
                                  f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc


def _clean_env(tmp: Path) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH, no firmware override, a private air."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "BLEBRIDGE_SIM_FIRMWARE", "VIRTUAL_ENV", "PYTHONHOME")}
    env["BLEBRIDGE_AIR"] = str(tmp / "air" / "air.sock")
    return env


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    _run([sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(ROOT)])
    (path,) = out.glob("blebridge-*.tar.gz")
    return path


@pytest.fixture(scope="module")
def wheel(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(sdist)])
    (path,) = out.glob("blebridge-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv (outside the checkout) with blebridge[sim] installed from the wheel."""
    home = tmp_path_factory.mktemp("user")
    env = _clean_env(home)
    _run([sys.executable, "-m", "venv", str(home / "venv")], env=env, cwd=home)
    python = home / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", f"{wheel}[sim]"], env=env, cwd=home)
    yield home / "venv"
    # Boards the scripts started are owned by them and ended with them; the air exits when idle.


def test_wheel_is_tagged_for_any_python3_on_this_platform_only(wheel: Path) -> None:
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    assert wheel.name == f"blebridge-0.1.0-py3-none-{platform}.whl"
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read("blebridge-0.1.0.dist-info/WHEEL").decode()
    assert "Root-Is-Purelib: false" in meta
    assert f"Tag: py3-none-{platform}" in meta


def test_wheel_holds_the_executable_sim_firmware(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo(FIRMWARE_IN_WHEEL)
        head = zf.read(FIRMWARE_IN_WHEEL)[:4]
    assert head == b"\x7fELF"
    assert (info.external_attr >> 16) & 0o111 == 0o111, oct(info.external_attr >> 16)


def test_wheel_holds_only_the_package_sources_the_firmware_and_metadata(wheel: Path) -> None:
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "host/blebridge"],
                             capture_output=True, text=True, check=True).stdout.split()
    expected = {p[len("host/"):] for p in tracked
                if p.endswith((".py", ".rules")) or p.endswith("py.typed")}
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    package_files = {n for n in names if not n.startswith("blebridge-0.1.0.dist-info/")}
    assert package_files == expected | {FIRMWARE_IN_WHEEL}
    assert {n for n in names - package_files} == {
        f"blebridge-0.1.0.dist-info/{n}"
        for n in ("METADATA", "WHEEL", "RECORD", "entry_points.txt", "top_level.txt")}


def test_sdist_holds_the_firmware_sources_and_no_tests(sdist: Path) -> None:
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for needed in ("setup.py", "firmware/Makefile", "firmware/ports/sim/sim.mk",
                   "firmware/ports/sim/main.c", "firmware/core/bb_core.c", "firmware/core/bb_proto.c"):
        assert needed in names, needed
    assert not any(n.startswith("tests/") for n in names)


def test_sdist_build_without_a_c_compiler_says_what_to_install(sdist: Path, tmp_path: Path) -> None:
    env = dict(os.environ, CC="blebridge-no-such-cc")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
                           "--wheel-dir", str(tmp_path), str(sdist)],
                          capture_output=True, text=True, timeout=STEP_TIMEOUT_S, env=env)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "needs a C compiler" in output, output[-4000:]
    assert "blebridge-no-such-cc" in output
    assert not list(tmp_path.glob("*.whl"))


TWO_BOARDS = textwrap.dedent("""
    import sys, threading
    from blebridge.micropython import BLE
    from blebridge.sim import launcher

    print("firmware", launcher.firmware_path())
    NAME = b"wheel-peripheral"
    _IRQ_SCAN_RESULT = 5
    peripheral, central = BLE(port="sim:wheel-p"), BLE(port="sim:wheel-c")
    peripheral.active(True)
    central.active(True)
    peripheral.gap_advertise(50_000, adv_data=bytes([len(NAME) + 1, 0x09]) + NAME)
    seen = threading.Event()

    def irq(event, data):
        if event == _IRQ_SCAN_RESULT and NAME in bytes(data[4]):
            seen.set()

    central.irq(irq)
    central.gap_scan(0, 30_000, 30_000)
    found = seen.wait(60)
    central.gap_scan(None)
    peripheral.close()
    central.close()
    print("central saw the peripheral" if found else "central did not see the peripheral")
    sys.exit(0 if found else 1)
""")


def test_installed_wheel_runs_two_simulated_boards_without_the_checkout(venv: Path) -> None:
    home = venv.parent
    script = home / "two_boards.py"
    script.write_text(TWO_BOARDS)
    proc = subprocess.run([str(venv / "bin" / "python"), str(script)], cwd=home,
                          env=_clean_env(home), capture_output=True, text=True,
                          timeout=SCRIPT_TIMEOUT_S)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "central saw the peripheral" in proc.stdout
    firmware = proc.stdout.split("firmware ", 1)[1].split("\n", 1)[0]
    assert Path(firmware).is_relative_to(venv), firmware
    assert not Path(firmware).is_relative_to(ROOT), firmware


def test_installed_cli_starts_and_stops_a_detached_simulated_board(venv: Path) -> None:
    home = venv.parent
    env = _clean_env(home)
    blebridge = str(venv / "bin" / "blebridge")
    started = subprocess.run([blebridge, "sim", "start", "wheel-cli"], cwd=home, env=env,
                             capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
    try:
        assert started.returncode == 0, f"stdout:\n{started.stdout}\nstderr:\n{started.stderr}"
        info = subprocess.run([blebridge, "info", "--port", "sim:wheel-cli"], cwd=home, env=env,
                              capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
        assert info.returncode == 0, f"stdout:\n{info.stdout}\nstderr:\n{info.stderr}"
        assert "sim" in info.stdout
    finally:
        stopped = subprocess.run([blebridge, "sim", "stop", "wheel-cli"], cwd=home, env=env,
                                 capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
    assert stopped.returncode == 0, stopped.stderr
