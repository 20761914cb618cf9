"""Fixtures for simulated boards: an isolated air per test and boards opened on it."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

_HOST = Path(__file__).resolve().parents[2] / "host"
if str(_HOST) not in sys.path:
    sys.path.insert(0, str(_HOST))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from blebridge.sim import launcher  # noqa: E402
from blebridge.sim.air import AirThread  # noqa: E402

#: Seconds any single wait for an event may take before the test fails.
EVENT_TIMEOUT_S = 5.0


@pytest.fixture
def air_dir() -> Iterator[str]:
    # Short path: a Unix socket path must fit in 108 bytes.
    path = tempfile.mkdtemp(prefix="bbair-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def air(request: pytest.FixtureRequest, air_dir: str) -> Iterator[AirThread]:
    """An air of this test only, in-process, so the test can add Bumble peers to its link.

    Its timing is the default (env BLEBRIDGE_SIM_TIMING, else real); a test parametrizes it
    indirectly for another: ``@pytest.mark.parametrize("air", ["fast"], indirect=True)``.
    """
    thread = AirThread.start(os.path.join(air_dir, "air.sock"),
                             timing=getattr(request, "param", None))
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def sim_firmware() -> str:
    try:
        return launcher.firmware_path(launcher.default_stack())
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


class EventLog:
    """Collects a board's events; wait() blocks until a matching one arrives."""

    def __init__(self, board: Any) -> None:
        self.board = board
        self.events: list[Any] = []
        self.cond = threading.Condition()
        board.add_event_listener(self._on_event)

    def _on_event(self, ev: Any) -> None:
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def wait(self, name: str, match: Optional[Callable[[tuple], bool]] = None,
             timeout: float = EVENT_TIMEOUT_S) -> tuple:
        """Fields of the first event NAME (matching) not yet taken; it is taken."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, ev in enumerate(self.events):
                    if ev.name == name and (match is None or match(ev.fields)):
                        del self.events[i]
                        return ev.fields
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = [e.name for e in self.events]
                    raise AssertionError(f"no {name} event within {timeout} s; pending: {names}")
                self.cond.wait(remaining)

    def board_events(self, name: str) -> list[Any]:
        """Every collected event NAME (not taken)."""
        with self.cond:
            return [e for e in self.events if e.name == name]

    def names(self) -> list[str]:
        with self.cond:
            return [e.name for e in self.events]


@pytest.fixture
def open_sim(air: AirThread, sim_firmware: str) -> Iterator[Callable[[str], tuple[Any, EventLog]]]:
    """open_sim(NAME) -> (board, events): a sim board on this test's air, closed at the end."""
    from blebridge import open_board

    opened: list[Any] = []

    def open_(name: str) -> tuple[Any, EventLog]:
        board = open_board(f"sim:{name}?air={air.socket_path}")
        opened.append(board)
        return board, EventLog(board)

    yield open_
    for board in opened:
        board.close()
