"""python -m blebridge.bench_scale on simulated boards: its --json report is complete.

Tiny windows: this checks what the scaling run reports, not how fast anything is.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from blebridge.sim.air import AirThread

HOST = Path(__file__).resolve().parents[2] / "host"
BOARDS = [1, 2]
REPEATS = 2
WINDOW_S = 0.2
#: Seconds the whole run may take (board start-up included).
BENCH_TIMEOUT_S = 120


def test_scaling_json_reports_every_board_count_with_each_boards_share(
        air: AirThread, sim_firmware: str) -> None:
    env = dict(os.environ, BLEBRIDGE_SIM_FIRMWARE=sim_firmware,
               PYTHONPATH=os.pathsep.join(filter(None, [str(HOST), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-m", "blebridge.bench_scale", "--air", str(air.socket_path),
         "--boards", *map(str, BOARDS), "--seconds", str(WINDOW_S), "--repeats", str(REPEATS),
         "--json"],
        capture_output=True, text=True, timeout=BENCH_TIMEOUT_S, env=env)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"

    report = json.loads(proc.stdout)
    assert report["out_of_order"] == 0
    assert [row["boards"] for row in report["rows"]] == BOARDS
    for row in report["rows"]:
        assert len(row["runs_aggregate"]) == REPEATS
        assert len(row["board_events_per_s"]) == row["boards"]
        assert all(rate > 0 for rate in row["board_events_per_s"])
        assert abs(sum(row["board_share"]) - 1.0) < 1e-6
    assert report["rows"][0]["ratio_to_single"] == 1.0
    assert set(report["targets"]) == {"aggregate_ratio", "min_share"}
