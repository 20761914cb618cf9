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


@pytest.fixture(autouse=True)
def runtime_settled_after_each_test():
    """Each test starts with no IRQ handler or scheduled function pending: whatever a test
    scheduled or delivered has run before the next test begins (micropython.schedule's queue and
    the handler activity are process-wide, as on a board)."""
    from blebridge.micropython import runtime
    assert runtime.ACTIVITY.settle(10), "handlers of an earlier test are still running"
    yield
    assert runtime.ACTIVITY.settle(10), "this test left handlers or scheduled functions running"


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
