"""blebridge run --api circuitpython: what a CircuitPython script sees besides _bleio (time,
microcontroller, micropython, os.uname, sys.implementation, hardware modules refused)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

HOST = str(Path(__file__).resolve().parents[2] / "host")
#: Seconds one run may take (a simulated board starts when the script touches it).
RUN_TIMEOUT_S = 90


def run(code, *args, cwd=None, env=None, port=None):
    cmd = [sys.executable, "-m", "blebridge", "run", "--api", "circuitpython"]
    if port:
        cmd += ["--port", port]
    e = dict(os.environ, PYTHONPATH=HOST)
    e.update(env or {})
    return subprocess.run(cmd + ["-c", code, *args], capture_output=True, text=True, env=e,
                          cwd=cwd, timeout=RUN_TIMEOUT_S)


def test_sys_implementation_name_is_circuitpython():
    r = run("import sys\nprint(sys.implementation.name, sys.implementation.version[0] >= 9)")
    assert (r.returncode, r.stdout) == (0, "circuitpython True\n"), r.stderr


def test_time_has_monotonic_monotonic_ns_and_sleep():
    r = run("import time\nt = time.monotonic_ns()\ntime.sleep(0.01)\n"
            "print(time.monotonic_ns() > t, type(time.monotonic()).__name__)")
    assert (r.returncode, r.stdout) == (0, "True float\n"), r.stderr


def test_time_has_no_micropython_extensions():
    r = run("import time\nprint(hasattr(time, 'sleep_ms'), hasattr(time, 'ticks_ms'))")
    assert (r.returncode, r.stdout) == (0, "False False\n"), r.stderr


@pytest.mark.parametrize("module", ["board", "digitalio", "neopixel", "busio", "microcontroller.pin"])
def test_hardware_module_import_fails_saying_ble_only(module):
    r = run(f"import {module}")
    assert r.returncode == 1
    assert "ModuleNotFoundError" in r.stderr and "blebridge provides BLE only" in r.stderr


def test_hardware_import_error_can_be_caught_as_import_error():
    r = run("try:\n    import board\nexcept ImportError as e:\n    print(type(e).__name__, e.name)")
    assert (r.returncode, r.stdout) == (0, "ModuleNotFoundError board\n"), r.stderr


def test_users_own_hardware_module_wins(tmp_path):
    (tmp_path / "board.py").write_text("LED = 'mine'\n")
    r = run("import board\nprint(board.LED)", cwd=tmp_path, env={"PYTHONPATH": f"{HOST}{os.pathsep}{tmp_path}"})
    assert (r.returncode, r.stdout) == (0, "mine\n"), r.stderr


def test_blinka_modules_are_never_imported():
    r = run("import sys\nfor m in ('board', 'busio'):\n"
            "    try:\n        __import__(m)\n    except ImportError:\n        pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('adafruit_blinka', 'adafruit_platformdetect')))")
    assert (r.returncode, r.stdout) == (0, "[]\n"), r.stderr


def test_micropython_const_is_the_value():
    r = run("from micropython import const\n_X = const(0x2A)\nprint(_X)")
    assert (r.returncode, r.stdout) == (0, "42\n"), r.stderr


def test_micropython_module_is_blebridges_not_blinkas():
    r = run("import micropython\nprint('blebridge' in micropython.__file__.replace(chr(92), '/'))")
    assert (r.returncode, r.stdout) == (0, "True\n"), r.stderr


def test_microcontroller_cpu_frequency_and_no_temperature():
    r = run("import microcontroller\nc = microcontroller.cpu\n"
            "print(c.frequency, c.temperature, c.voltage, microcontroller.nvm)")
    assert (r.returncode, r.stdout) == (0, "64000000 None None None\n"), r.stderr


def test_microcontroller_reset_ends_the_script_with_status_0():
    r = run("import microcontroller\nprint('before')\nmicrocontroller.reset()\nprint('after')")
    assert (r.returncode, r.stdout) == (0, "before\n"), r.stderr


def test_microcontroller_on_next_reset_refuses_an_unknown_mode():
    r = run("import microcontroller\ntry:\n    microcontroller.on_next_reset('X')\n"
            "except ValueError as e:\n    print(e)")
    assert (r.returncode, r.stdout) == (0, "Invalid run mode\n"), r.stderr


def test_microcontroller_cpu_uid_is_the_boards_address(board_urls):
    (port,) = board_urls(1)
    r = run("import microcontroller, _bleio\n"
            "print(bytes(microcontroller.cpu.uid) == _bleio.adapter.address.address_bytes[::-1])",
            port=port)
    assert (r.returncode, r.stdout) == (0, "True\n"), r.stderr


def test_os_uname_names_the_board_and_its_firmware(board_urls):
    (port,) = board_urls(1)
    r = run("import os\nu = os.uname()\nprint(u.sysname, u.machine)", port=port)
    assert r.returncode == 0, r.stderr
    sysname, machine = r.stdout.split(" ", 1)
    assert sysname in ("sim", "nrf52840", "esp32", "esp32s3", "nrf_sd", "nimble")
    assert machine.strip().endswith(f"board at {port}")


def test_import_bleio_is_blebridges():
    r = run("import _bleio, sys\nprint(_bleio is sys.modules['blebridge.circuitpython._bleio'])")
    assert (r.returncode, r.stdout) == (0, "True\n"), r.stderr


def test_adafruit_ble_uses_blebridges_bleio():
    r = run("import adafruit_ble, _bleio, sys\n"
            "print(adafruit_ble._bleio is _bleio, 'bleak' in sys.modules)")
    assert (r.returncode, r.stdout) == (0, "True False\n"), r.stderr


def test_repl_prelude_gives_bleio_on_the_board(board_urls):
    (port,) = board_urls(1)
    r = subprocess.run([sys.executable, "-m", "blebridge", "repl", "--api", "circuitpython",
                        "--port", port], input="print(type(_bleio.adapter.address).__name__)\n",
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=HOST),
                       timeout=RUN_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    assert "Address" in r.stdout
