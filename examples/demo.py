#!/usr/bin/env python3
"""blebridge demo: two simulated boards, a MicroPython peripheral and central talking BLE.

    python examples/demo.py            (make demo runs this after building the firmware)

Starts the sensor peripheral (examples/micropython/sensor_peripheral.py) on simulated board
``sim:demo-sensor`` and the central (sensor_central.py) on ``sim:demo-central``, each with
``blebridge run`` exactly as it would run on a board, and prints both sides' output as it
happens: advertise, scan, connect, discover, read, write, subscribe, notify, disconnect.
Exits 0 when both scripts finished successfully, 1 otherwise.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "micropython"
#: Both scripts end on their own; past this the demo counts as failed (s).
TIMEOUT_S = 60
#: Head start for the peripheral so it advertises before the central scans (s).
PERIPHERAL_HEAD_START_S = 1.0

_print_lock = threading.Lock()


def _start(label: str, port: str, script: str, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "blebridge.script", "--port", port, str(EXAMPLES / script)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, bufsize=1)
    threading.Thread(target=_relay, args=(label, proc), daemon=True).start()
    return proc


def _relay(label: str, proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        with _print_lock:
            print(f"{label:>10} | {line.rstrip()}", flush=True)


def main() -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "host") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    print("blebridge demo: two simulated boards running unmodified MicroPython scripts\n"
          "  peripheral: examples/micropython/sensor_peripheral.py on sim:demo-sensor\n"
          "  central:    examples/micropython/sensor_central.py on sim:demo-central\n", flush=True)
    t0 = time.monotonic()
    peripheral = _start("sensor", "sim:demo-sensor", "sensor_peripheral.py", env)
    time.sleep(PERIPHERAL_HEAD_START_S)
    central = _start("central", "sim:demo-central", "sensor_central.py", env)
    status = 0
    for name, proc in (("central", central), ("sensor", peripheral)):
        remaining = max(1.0, TIMEOUT_S - (time.monotonic() - t0))
        try:
            rc = proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        if rc != 0:
            status = 1
            print(f"demo: the {name} script {'timed out' if rc is None else f'exited with {rc}'}",
                  file=sys.stderr, flush=True)
    time.sleep(0.1)   # let the relays print the last lines
    if status == 0:
        print(f"\ndemo: done in {time.monotonic() - t0:.1f} s: both boards ran their scripts to the end")
    return status


if __name__ == "__main__":
    sys.exit(main())
