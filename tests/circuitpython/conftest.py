"""Fixtures of the CircuitPython tests: the boards of hil.plugin (simulated in `make test`)."""
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
