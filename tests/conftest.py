"""Process-wide test isolation.

Every simulated board a test opens without naming an air would otherwise join the user's default
air (``$XDG_RUNTIME_DIR/blebridge/air.sock``): the suite gets its own, in a temporary directory,
so a run never touches a user's boards and two runs (two checkouts, CI jobs) never meet. Bonds
likewise go to a store of the run's own, not the user's (~/.local/state/blebridge/secrets): a
bond one run left would change how a later run's pairing goes.
"""
from __future__ import annotations

import os
import tempfile

_AIR_DIR = tempfile.mkdtemp(prefix="blebridge-test-air-")
os.environ["BLEBRIDGE_AIR"] = os.path.join(_AIR_DIR, "air.sock")
os.environ["BLEBRIDGE_SECRETS_DIR"] = os.path.join(_AIR_DIR, "secrets")
# A connect that names no interval runs at 7.5 ms on the suite's airs instead of a NimBLE
# board's 50 ms (docs/simulator.md): the tests that depend on the radio's pace name their
# intervals or start airs of their own (tests/sim/test_linklayer.py), and the rest then take
# about the time they took on a zero-latency air.
os.environ.setdefault("BLEBRIDGE_SIM_CONN_INTERVAL_MS", "7.5")


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 (pytest hook signature)
    """Stop the detached boards left on the suite's air; the air exits by itself once idle."""
    try:
        from blebridge.sim import launcher
        launcher.stop_all(os.environ["BLEBRIDGE_AIR"])
    except Exception:   # bumble or the firmware missing: nothing was started
        pass
