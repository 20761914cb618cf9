"""Fixtures of the _bleio tests: Adapters on the boards hil.plugin gives (simulated in
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
def adapters(simulator, boards):
    """One _bleio Adapter per board of the `boards` fixture (mark the test boards(n))."""
    from blebridge.circuitpython import adapter_for
    made = [adapter_for(b) for b in boards]
    try:
        yield made
    finally:
        for a in made:
            a.close()


@pytest.fixture
def adapter(adapters):
    """The Adapter of the first board."""
    return adapters[0]


@pytest.fixture
def pair(adapters):
    """(peripheral, central) Adapters on two boards."""
    assert len(adapters) == 2, "mark the test @pytest.mark.boards(2)"
    return tuple(adapters)
