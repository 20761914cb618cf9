"""Fixtures of the aioble tests: aioble Radios on the boards hil.plugin gives (simulated in
`make test`)."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "host"
if str(HOST) not in sys.path:
    sys.path.insert(0, str(HOST))
sys.path.insert(0, str(Path(__file__).parent))



def pytest_configure(config):
    if not config.pluginmanager.has_plugin("hil.plugin"):
        config.pluginmanager.import_plugin("hil.plugin")


@pytest.fixture(autouse=True)
def private_bonds(tmp_path, monkeypatch):
    """Bonds go to this test's own store: board addresses are the same in every run."""
    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(tmp_path / "secrets"))


@pytest.fixture
def simulator(hil_rig):
    if not hil_rig.configured:
        pytest.importorskip("bumble")
        if not (os.environ.get("BLEBRIDGE_SIM_FIRMWARE") or (ROOT / "build" / "sim" / "bb_sim").exists()):
            pytest.skip("simulated board firmware not built (make firmware)")


@pytest.fixture
def radios(simulator, boards):
    """One aioble Radio per board of the `boards` fixture (mark the test boards(n))."""
    from blebridge import aioble
    made = [aioble.Radio(b) for b in boards]
    try:
        yield made
    finally:
        for r in made:
            r.close()


@pytest.fixture
def pair(radios):
    """(peripheral, central) Radios on two boards."""
    assert len(radios) == 2, "mark the test @pytest.mark.boards(2)"
    return tuple(radios)
