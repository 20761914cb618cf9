"""python -m blebridge.micropython.bench_radio: its report and its physical figures.

Tiny counts: this checks what the bench reports (and that the stacks negotiated what it asks
for), not how fast anything is.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from blebridge.micropython.bench_radio import spec_kbit_s

HOST = Path(__file__).resolve().parents[2] / "host"
#: Seconds the whole bench may take (board start-up included).
BENCH_TIMEOUT_S = 120


@pytest.mark.parametrize(("phy", "interval_ms", "packets"),
                         [("1M", 7.5, 3), ("1M", 50.0, 20), ("2M", 7.5, 5), ("2M", 50.0, 35)])
def test_physical_figure_counts_the_full_packet_pairs_that_fit_an_event(phy, interval_ms, packets):
    kbit_s, per_event = spec_kbit_s(phy, interval_ms)
    assert per_event == packets
    assert kbit_s == pytest.approx(packets * 244 * 8 / interval_ms)


def test_bench_radio_json_reports_throughput_and_round_trip_on_the_negotiated_link(sim_firmware):
    env = dict(os.environ, BLEBRIDGE_SIM_FIRMWARE=sim_firmware,
               PYTHONPATH=os.pathsep.join(filter(None, [str(HOST), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-m", "blebridge.micropython.bench_radio", "--phy", "2M",
         "--interval", "7.5", "--count", "20", "--writes", "2", "--json"],
        capture_output=True, text=True, timeout=BENCH_TIMEOUT_S, env=env)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    (row,) = report["rows"]
    assert (row["phy"], row["interval_ms"], row["att_mtu"]) == ("2M", 7.5, 247)
    assert row["link"]["phy"] == [2, 2] and row["link"]["data_length"] == [251, 251]
    for key in ("notify", "write_without_response"):
        assert row[key]["complete"] is True and row[key]["bytes"] == 20 * 244
        assert row[key]["kbit_s"] > 0 and row[key]["ratio"] > 0
    assert row["write_rtt_ms"]["median"] > 0
