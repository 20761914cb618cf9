"""Long steps say what they do as they go: `blebridge flash` streams PlatformIO's output,
`blebridge bench` prints each figure when it is measured, make says what it installs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from blebridge import flash
from cli_helpers import blebridge, board_name

ROOT = Path(__file__).resolve().parents[2]
#: Seconds the stand-in for PlatformIO waits to be told its first line arrived.
RELEASE_TIMEOUT_S = 60

# A stand-in for `pio run -t upload`: prints a line the way a Python program does (no flush),
# then goes on only once the caller has seen that line, as a progress line must be seen while
# the upload still runs. Exit status 3 if it was never released.
_FAKE_PIO = f"""
import os, sys, time
print("Writing at 0x00010000... (50 %)")
deadline = time.monotonic() + {RELEASE_TIMEOUT_S}
while not os.path.exists(sys.argv[1]):
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.01)
print("Writing at 0x00020000... (100 %)\\r", end="")
print("done")
"""


def test_flash_shows_platformio_output_while_it_runs(tmp_path):
    release = tmp_path / "seen"
    lines = []

    def out(line):
        lines.append(line)
        if "(50 %)" in line:
            release.touch()

    code, _tail = flash.run_streaming([sys.executable, "-c", _FAKE_PIO, str(release)], out)
    assert code == 0
    assert lines == ["Writing at 0x00010000... (50 %)", "Writing at 0x00020000... (100 %)", "done"]


def test_bench_prints_each_figure_before_the_report():
    r = blebridge("bench", "--port", f"sim:{board_name('bench')}", "--count", "200", "--echo-count", "50")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    report = next(i for i, line in enumerate(lines) if line.startswith("blebridge bench on"))
    measured = [line for line in lines[:report] if line.strip().startswith("measured:")]
    assert [m.split(":")[1].split(",")[0].strip() for m in measured] == [
        "raw frame round trip on this port", "link echo round trip", "RPC round trip (board.call)",
        "events", "events"]


def test_make_says_what_it_installs_before_pip_starts():
    r = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), "venv"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    first_pip = next(i for i, line in enumerate(lines) if "pip install" in line)
    assert any(line.startswith("echo") and "installing" in line and "bumble" in " ".join(lines[:first_pip])
               for line in lines[:first_pip])
