"""python -m blebridge.micropython.bench on simulated boards: its --json report is complete.

Tiny counts: this checks what the bench reports, not how fast anything is.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from blebridge.sim.air import AirThread

HOST = Path(__file__).resolve().parents[2] / "host"
#: Packets per run: enough to exercise every transfer, few enough to take well under a second.
COUNT = 10
REPEATS = 3
#: Seconds the whole bench may take (board start-up included).
BENCH_TIMEOUT_S = 90
TRANSFERS = ["GATT notify", "GATT write without response", "L2CAP CoC"]


# Fast timing, as `make bench` runs it: the bench measures the bridge, not the radio.
@pytest.mark.parametrize("air", ["fast"], indirect=True)
def test_bench_json_reports_every_transfer_beside_its_bare_bumble_baseline(
        air: AirThread, sim_firmware: str) -> None:
    env = dict(os.environ, BLEBRIDGE_SIM_FIRMWARE=sim_firmware, BLEBRIDGE_SIM_TIMING="fast",
               PYTHONPATH=os.pathsep.join(filter(None, [str(HOST), os.environ.get("PYTHONPATH")])))
    ports = [f"sim:bench-test-{role}?air={air.socket_path}" for role in ("p", "c")]
    proc = subprocess.run(
        [sys.executable, "-m", "blebridge.micropython.bench", "--ports", *ports,
         "--count", str(COUNT), "--repeats", str(REPEATS), "--json"],
        capture_output=True, text=True, timeout=BENCH_TIMEOUT_S, env=env)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"

    report = json.loads(proc.stdout)
    assert report["ok"] is True
    assert [t["name"] for t in report["transfers"]] == TRANSFERS
    for transfer in report["transfers"]:
        for side in ("blebridge", "bare_bumble"):
            figure = transfer[side]
            assert figure["complete"] is True, (transfer["name"], side)
            assert figure["kbit_s"] > 0, (transfer["name"], side)
            assert len(figure["runs"]) == REPEATS, (transfer["name"], side)
            assert all(r["bytes"] == r["expected_bytes"] == COUNT * transfer["payload_bytes"]
                       for r in figure["runs"]), (transfer["name"], side)
        assert transfer["ratio"] > 0, transfer["name"]
