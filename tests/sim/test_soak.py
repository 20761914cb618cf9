"""python -m blebridge.soak, very short, on simulated boards: the soak program passes its own checks.

`make soak` runs it for 10 minutes; this keeps the program from rotting. The window is as short
as the program allows (each central still completes a full cycle in the warm-up and in the
window, however loaded the machine is), so RSS growth here is start-up growth, not a leak:
the RSS limit is relaxed; threads and descriptors must not grow at all, as in the long run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from blebridge.sim.air import AirThread

HOST = Path(__file__).resolve().parents[2] / "host"
#: Seconds the soak may take, board start-up included (it needs a few on an idle machine).
SOAK_TIMEOUT_S = 110
#: RSS growth allowed in a seconds-long window (percent): start-up allocations, not leaks.
SHORT_RSS_LIMIT_PCT = 100


def test_short_soak_passes_its_integrity_loss_and_leak_checks(air: AirThread, sim_firmware: str) -> None:
    env = dict(os.environ, BLEBRIDGE_SIM_FIRMWARE=sim_firmware,
               PYTHONPATH=os.pathsep.join(filter(None, [str(HOST), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-m", "blebridge.soak", "--minutes", "0.02", "--warmup", "0",
         "--boards", "4", "--air", air.socket_path, "--rss-limit", str(SHORT_RSS_LIMIT_PCT),
         "--json"],
        capture_output=True, text=True, timeout=SOAK_TIMEOUT_S, env=env)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"

    report = json.loads(proc.stdout)
    assert report["ok"] is True and report["reasons"] == [], report["reasons"]
    assert report["failures"] == []
    # Every central went through every step, and every kind of churn happened, in the window.
    assert sorted(report["cycles_in_window"]) == ["churn_mid_flood", "churn_peer", "churn_quick",
                                                  "soak-c0", "soak-c1"]
    assert all(n >= 1 for n in report["cycles_in_window"].values())
    assert set(report["loss_counters_whole_run"].values()) == {0}
    assert report["events_lost_host"] == 0
    resources = report["resources"]
    assert resources["threads"][1] <= resources["threads"][0]
    assert resources["fds"][1] <= resources["fds"][0]
