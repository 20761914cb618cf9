"""A labgrid lab on localhost (tests/labgrid/lab.py): three simulated boards behind a coordinator
and an exporter. Skipped when labgrid, ser2net or the simulator is missing."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

BOARDS = 3


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    pytest.importorskip("labgrid", reason="labgrid not installed: pip install 'blebridge[labgrid]'")
    pytest.importorskip("bumble")
    if shutil.which("ser2net") is None and not os.path.exists("/usr/sbin/ser2net"):
        pytest.skip("ser2net not installed (apt install ser2net)")
    if not (os.environ.get("BLEBRIDGE_SIM_FIRMWARE") or (_REPO / "build" / "sim" / "bb_sim").exists()):
        pytest.skip("simulated board firmware not built (make firmware)")
    from blebridge.sim import launcher
    from lab import start_lab

    workdir = tmp_path_factory.mktemp("lab")
    air = str(workdir / "air.sock")
    boards = []
    try:
        for i in range(BOARDS):
            boards.append(launcher.start_board(f"lab-{i}", air=air))
        lab = start_lab(workdir, [b.pty for b in boards], prefix="bb")
        try:
            yield lab
        finally:
            lab.stop()
    finally:
        for b in boards:
            b.stop()


@pytest.fixture
def free_lab(lab):
    """The lab with every place free before and after the test."""
    from lab import release_all
    release_all(lab)
    yield lab
    release_all(lab)
