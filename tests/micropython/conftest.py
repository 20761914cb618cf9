import os
import sys

import pytest

HOST = os.path.join(os.path.dirname(__file__), "..", "..", "host")
if os.path.abspath(HOST) not in [os.path.abspath(p) for p in sys.path]:
    sys.path.insert(0, os.path.abspath(HOST))
sys.path.insert(0, os.path.dirname(__file__))

from fakeboard import FakeBoard  # noqa: E402


def pytest_configure(config):
    # The end-to-end tests take their boards from hil.plugin (pyproject loads it with -p; this
    # covers runs that override addopts).
    if not config.pluginmanager.has_plugin("hil.plugin"):
        config.pluginmanager.import_plugin("hil.plugin")


@pytest.fixture
def board():
    return FakeBoard()


@pytest.fixture
def ble(board, tmp_path, monkeypatch):
    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(tmp_path / "secrets"))
    from blebridge.micropython import BLE
    obj = BLE(board)
    board.active = True
    yield obj
    obj.close()
